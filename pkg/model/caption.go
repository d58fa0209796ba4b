package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// HeadCaption is the autoregressive caption head (NetworkConfig.Head): a
// liquid (CfC) decoder conditioned on the fused representation, trained
// with teacher forcing on the label token sequence; see CaptionConfig.
const HeadCaption = "caption"

// Defaults of CaptionConfig.
const (
	DefaultCaptionEmbedDim = 64
	DefaultCaptionUnits    = 128
	// DefaultCaptionBOS and DefaultCaptionEOS are the <bos> and <eos> ids
	// of the vocabularies pkg/data builds from the data.
	DefaultCaptionBOS = 2
	DefaultCaptionEOS = 3
)

// CaptionConfig sizes the caption head (NetworkConfig.Caption). With the
// fused representation z [B, Dim] (the fusion's output), label tokens
// y [B, L] (TokenLen L: <bos> w_1 … <eos> <pad>…) and vocabulary V
// (OutputDim), the head computes, under the scope "head":
//
//	h_0 = tanh(init(z))                       init: Linear(Dim → Units)
//	c   = ctx(z)                              ctx:  Linear(Dim → EmbedDim)
//	x_t = embed(y_t) + c                      embed: nn.Embedding(V, EmbedDim)
//	h_t = CfC(x_t, h_{t−1})                   cfc: CfCConfig{EmbedDim → Units}
//	logits_t = out(h_t)                       out: Linear(Units → V)
//
// for t = 0 … L−2 (teacher forcing: the input at t is the label token t,
// the target is token t+1), so the output is [B, L−1, V] and the loss is
// the cross entropy of logits_t against y_{t+1}, ignoring IgnoreIndex
// (padding). Generation (NewGenerator) runs the same step from <bos>,
// feeding back its own tokens. The head is the same in training and
// evaluation graphs (no dropout).
type CaptionConfig struct {
	// EmbedDim is the token embedding width; 0 means 64.
	EmbedDim int
	// Units is the decoder's CfC state width; 0 means 128.
	Units int
	// BackboneUnits is the CfC backbone width; 0 means Units.
	BackboneUnits int
	// Mode is the CfC mode (default, no_gate, pure); "" means default.
	Mode string
	// BOS and EOS are the ids that start and end a caption; 0 means 2 and
	// 3 (pkg/data's built vocabularies). GPT-2's are both 50256.
	BOS, EOS int
	// MaxLen is the longest caption generation produces, in tokens after
	// <bos> (<eos> included); 0 means TokenLen − 1.
	MaxLen int
	// BeamSize is the beam width evaluation and prediction use unless told
	// otherwise; 0 means 1 (greedy).
	BeamSize int
}

// withDefaults fills the zero fields of a caption head for token length
// tokenLen.
func (cc CaptionConfig) withDefaults(tokenLen int) CaptionConfig {
	if cc.EmbedDim == 0 {
		cc.EmbedDim = DefaultCaptionEmbedDim
	}
	if cc.Units == 0 {
		cc.Units = DefaultCaptionUnits
	}
	if cc.BackboneUnits == 0 {
		cc.BackboneUnits = cc.Units
	}
	if cc.Mode == "" {
		cc.Mode = CfCDefault
	}
	if cc.BOS == 0 {
		cc.BOS = DefaultCaptionBOS
	}
	if cc.EOS == 0 {
		cc.EOS = DefaultCaptionEOS
	}
	if cc.MaxLen == 0 {
		cc.MaxLen = tokenLen - 1
	}
	if cc.BeamSize == 0 {
		cc.BeamSize = 1
	}
	return cc
}

// validateCaption fills the caption defaults of cfg (Head caption) and
// checks them.
func validateCaption(cfg *NetworkConfig) error {
	if cfg.TokenLen < 2 {
		return fmt.Errorf("network: head %q needs token_len ≥ 2 (<bos> plus at least one predicted token), got %d", HeadCaption, cfg.TokenLen)
	}
	if cfg.Fusion.Strategy == fusion.Late {
		return fmt.Errorf("network: head %q decodes from one fused representation, which late fusion does not form: use early, hybrid or hierarchical", HeadCaption)
	}
	cc := cfg.Caption.withDefaults(cfg.TokenLen)
	for _, f := range []struct {
		key string
		v   int
	}{{"embed_dim", cc.EmbedDim}, {"units", cc.Units}, {"backbone_units", cc.BackboneUnits}, {"max_len", cc.MaxLen}, {"beam_size", cc.BeamSize}} {
		if f.v < 1 {
			return fmt.Errorf("network: caption %s must be ≥ 1, got %d", f.key, f.v)
		}
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"bos", cc.BOS}, {"eos", cc.EOS}} {
		if f.v < 0 || f.v >= cfg.OutputDim {
			return fmt.Errorf("network: caption %s id %d is outside the vocabulary [0, %d) (output_dim)", f.key, f.v, cfg.OutputDim)
		}
	}
	if _, err := NewCfC(cc.cfcConfig()); err != nil {
		return fmt.Errorf("network: caption decoder: %w", err)
	}
	cfg.Caption = cc
	return nil
}

func (cc CaptionConfig) cfcConfig() CfCConfig {
	return CfCConfig{InputSize: cc.EmbedDim, Units: cc.Units, BackboneUnits: cc.BackboneUnits, Mode: cc.Mode}
}

// CaptionState is the caption decoder's conditioning on the fused
// representation: Init is h_0 [B, Units] and Context is c [B, EmbedDim].
type CaptionState struct {
	Init, Context *G.Node
}

// captionDecoder builds the caption head's pieces under its scope.
type captionDecoder struct {
	cfg   CaptionConfig
	vocab int
	cell  *CfC
}

func (n *Network) captionDecoder() (*captionDecoder, error) {
	cell, err := NewCfC(n.cfg.Caption.cfcConfig())
	if err != nil {
		return nil, err
	}
	return &captionDecoder{cfg: n.cfg.Caption, vocab: n.cfg.OutputDim, cell: cell}, nil
}

// condition computes h_0 and c from the fused representation z [B, Dim].
func (d *captionDecoder) condition(c *nn.Ctx, z *G.Node) (*CaptionState, error) {
	dim := z.Shape()[1]
	h0, err := nn.Linear{In: dim, Out: d.cfg.Units}.Forward(c.Sub("init"), z)
	if err != nil {
		return nil, err
	}
	if h0, err = nn.Tanh(h0); err != nil {
		return nil, c.Errorf("caption init: %v", err)
	}
	ctx, err := nn.Linear{In: dim, Out: d.cfg.EmbedDim}.Forward(c.Sub("ctx"), z)
	if err != nil {
		return nil, err
	}
	return &CaptionState{Init: h0, Context: ctx}, nil
}

// embed looks up token ids (Int, any shape) → [..., EmbedDim].
func (d *captionDecoder) embed(c *nn.Ctx, ids *G.Node) (*G.Node, error) {
	return nn.Embedding{Num: d.vocab, Dim: d.cfg.EmbedDim}.Forward(c.Sub("embed"), ids)
}

// step is one decoder update from the embedded token e [B, EmbedDim]:
// h' = CfC(e + ctx, h).
func (d *captionDecoder) step(c *nn.Ctx, e, ctx, h *G.Node) (*G.Node, error) {
	x, err := nn.Add(e, ctx)
	if err != nil {
		return nil, c.Errorf("caption step: %v", err)
	}
	return d.cell.Step(c.Sub("cfc"), x, h)
}

// logits projects states [..., Units] to token logits [..., V].
func (d *captionDecoder) logits(c *nn.Ctx, h *G.Node) (*G.Node, error) {
	return nn.Linear{In: d.cfg.Units, Out: d.vocab}.Forward(c.Sub("out"), h)
}

// teacherForced decodes the L−1 input tokens labels[:, :L−1] from st and
// returns the logits [B, L−1, V].
func (d *captionDecoder) teacherForced(c *nn.Ctx, st *CaptionState, labels *G.Node) (*G.Node, error) {
	b, l := labels.Shape()[0], labels.Shape()[1]
	in, err := shiftTokens(labels, 0, l-1)
	if err != nil {
		return nil, c.Errorf("caption inputs: %v", err)
	}
	emb, err := d.embed(c, in) // [B, L−1, E]
	if err != nil {
		return nil, err
	}
	steps, err := splitSteps(emb)
	if err != nil {
		return nil, c.Errorf("caption inputs: %v", err)
	}
	h := st.Init
	states := make([]*G.Node, len(steps))
	for t, e := range steps {
		if h, err = d.step(c, e, st.Context, h); err != nil {
			return nil, fmt.Errorf("%w (caption position %d)", err, t+1)
		}
		if states[t], err = nn.Reshape(h, b, 1, d.cfg.Units); err != nil {
			return nil, c.Errorf("caption states: %v", err)
		}
	}
	hs, err := nn.Concat(1, states...)
	if err != nil {
		return nil, c.Errorf("caption states: %v", err)
	}
	return d.logits(c, hs)
}

// captionHead is the fusion head of a caption network: it conditions the
// decoder on x and, when g has labels, decodes them with teacher forcing
// (logits [B, L−1, V]); an encode-only graph (generation) returns h_0.
func (n *Network) captionHead(c *nn.Ctx, x *G.Node, g *Graph) (*G.Node, error) {
	d, err := n.captionDecoder()
	if err != nil {
		return nil, c.Errorf("caption head: %v", err)
	}
	st, err := d.condition(c, x)
	if err != nil {
		return nil, err
	}
	g.Caption = st
	if g.encodeOnly {
		return st.Init, nil
	}
	return d.teacherForced(c, st, g.Labels)
}

// captionLoss is the cross entropy of the teacher-forced logits against
// labels[:, 1:], ignoring IgnoreIndex.
func (n *Network) captionLoss(g *Graph) (*G.Node, error) {
	l := g.Labels.Shape()[1]
	target, err := shiftTokens(g.Labels, 1, l)
	if err != nil {
		return nil, err
	}
	return nn.CrossEntropySeq(g.Output, target, n.cfg.IgnoreIndex)
}

// shiftTokens returns ids[:, from:to] of an Int [B, L] node as a new Int
// node (no gradient: token ids).
func shiftTokens(ids *G.Node, from, to int) (*G.Node, error) {
	s := ids.Shape()
	if ids.Dtype() != tensor.Int || s.Dims() != 2 || from < 0 || to > s[1] || from >= to {
		return nil, fmt.Errorf("token slice [%d:%d] of %v %v", from, to, ids.Dtype(), s)
	}
	b, l, w := s[0], s[1], to-from
	k := &nn.Kernel{Name: fmt.Sprintf("TokenSlice{%d:%d of %d}", from, to, l)}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{b, w}, nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		src := in[0]
		if !src.IsNativelyAccessible() || src.RequiresIterator() {
			src = src.Materialize().(*tensor.Dense)
		}
		x, ok := src.Data().([]int)
		if !ok {
			return nil, fmt.Errorf("token ids have dtype %v, want int", src.Dtype())
		}
		out := make([]int, b*w)
		for i := 0; i < b; i++ {
			copy(out[i*w:(i+1)*w], x[i*l+from:i*l+to])
		}
		return tensor.New(tensor.WithShape(b, w), tensor.WithBacking(out)), nil
	}
	return nn.Apply(k, ids)
}
