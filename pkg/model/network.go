package model

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Head kinds (NetworkConfig.Head).
const (
	// HeadClassification: logits [B, OutputDim], labels Int [B],
	// cross-entropy loss.
	HeadClassification = "classification"
	// HeadRegression: values [B, OutputDim], float targets [B, OutputDim],
	// mean squared error.
	HeadRegression = "regression"
	// HeadTokens: token logits [B, TokenLen, OutputDim] (OutputDim is the
	// vocabulary), labels Int [B, TokenLen], cross-entropy over positions
	// ignoring IgnoreIndex.
	HeadTokens = "tokens"
)

// ModalityConfig is one modality of a network: its preprocessor (raw input
// → [B, input_dim]) and its liquid-spiking encoder ([B, input_dim] →
// [B, encoder_dim]).
type ModalityConfig struct {
	Preprocessor modality.Config
	// Encoder configures the modality's encoder. InputDim 0 takes the
	// preprocessor's output dim; a different non-zero value is an error.
	// Name "" takes the modality's name.
	Encoder EncoderConfig
}

// NetworkConfig describes a MultiModalFusionNetwork: the seed's
// modality_configs, fusion_strategy, fusion_dim, num_attention_heads and
// output_dim, plus the head.
type NetworkConfig struct {
	// Modalities maps a modality name (used in parameter names, inputs and
	// errors) to its config. At least one. Every per-modality list iterates
	// in sorted-name order.
	Modalities map[string]ModalityConfig
	// Fusion is the fusion strategy and its sizes (pkg/fusion).
	Fusion fusion.Config
	// OutputDim is the number of classes, regression targets, or the token
	// vocabulary. Must be positive.
	OutputDim int
	// Head is classification | regression | tokens; "" means
	// classification.
	Head string
	// HeadHidden, when positive, inserts a hidden layer:
	// Linear(Dim, HeadHidden)-ReLU-Linear(HeadHidden, OutputDim); 0 is a
	// single Linear(Dim, OutputDim).
	HeadHidden int
	// TokenLen is the number of predicted positions L of the tokens head
	// (required there, ignored otherwise).
	TokenLen int
	// IgnoreIndex is the label id the tokens loss skips (padding).
	IgnoreIndex int
	// Caption sizes the caption head (Head "caption", see CaptionConfig);
	// for it TokenLen is the label length L (<bos> … <eos> <pad>…) and the
	// head predicts L−1 positions. Ignored by the other heads.
	Caption CaptionConfig
	// Align lists the temporally aligned modalities (the seed's
	// TemporalAligner, see TemporalResample): their per-step preprocessor
	// features are resampled to their common num_spike_steps and drive the
	// spiking encoder one step at a time. Empty: every modality uses direct
	// coding.
	Align []string
}

// modalityName is what a modality may be called: names become parameter
// scopes ("vision.encoder.proj.weight"), where a dot would split a level.
var modalityName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// Network is a validated multimodal fusion network. It holds no tensors:
// Build creates or reuses the parameters in the store behind an nn.Ctx, so
// the same Network builds training and evaluation graphs over the same
// weights.
type Network struct {
	cfg   NetworkConfig
	names []string
	pre   map[string]modality.Preprocessor
	enc   map[string]*ModalityEncoder
	fus   *fusion.Fusion
}

// NewNetwork validates cfg and builds the network description. Errors
// name the modality and the field, and say how to fix it.
func NewNetwork(cfg NetworkConfig) (*Network, error) {
	if len(cfg.Modalities) == 0 {
		return nil, fmt.Errorf("network: no modalities configured")
	}
	if cfg.Head == "" {
		cfg.Head = HeadClassification
	}
	switch cfg.Head {
	case HeadClassification, HeadRegression:
	case HeadTokens:
		if cfg.TokenLen <= 0 {
			return nil, fmt.Errorf("network: head %q needs token_len > 0 (the number of predicted positions), got %d", cfg.Head, cfg.TokenLen)
		}
	case HeadCaption:
	default:
		return nil, fmt.Errorf("network: unknown head %q (want %s, %s, %s or %s)", cfg.Head, HeadClassification, HeadRegression, HeadTokens, HeadCaption)
	}
	if cfg.OutputDim <= 0 {
		return nil, fmt.Errorf("network: output_dim must be positive, got %d", cfg.OutputDim)
	}
	if cfg.Head == HeadCaption {
		if err := validateCaption(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.HeadHidden < 0 {
		return nil, fmt.Errorf("network: head_hidden must not be negative, got %d", cfg.HeadHidden)
	}
	n := &Network{cfg: cfg, pre: map[string]modality.Preprocessor{}, enc: map[string]*ModalityEncoder{}}
	for name := range cfg.Modalities {
		if !modalityName.MatchString(name) {
			return nil, fmt.Errorf("network: modality name %q: use a letter followed by letters, digits or _ (it becomes a parameter scope and an input name)", name)
		}
		n.names = append(n.names, name)
	}
	sort.Strings(n.names)
	mods := make([]fusion.Modality, 0, len(n.names))
	for _, name := range n.names {
		mc := cfg.Modalities[name]
		p, err := modality.New(withTemporalCell(mc.Preprocessor))
		if err != nil {
			return nil, fmt.Errorf("modality %q: preprocessor: %w", name, err)
		}
		ec := mc.Encoder
		if ec.Name == "" {
			ec.Name = name
		}
		switch {
		case ec.InputDim == 0:
			ec.InputDim = p.OutputDim()
		case ec.InputDim != p.OutputDim():
			return nil, fmt.Errorf("modality %q: encoder input_dim %d differs from the preprocessor's output_dim %d: set them equal (or leave input_dim 0 to take it from the preprocessor)",
				name, ec.InputDim, p.OutputDim())
		}
		e, err := NewModalityEncoder(ec) // its errors name the modality
		if err != nil {
			return nil, err
		}
		n.pre[name] = p
		n.enc[name] = e
		mods = append(mods, fusion.Modality{Name: name, Dim: e.Config().EncoderDim})
	}
	f, err := fusion.New(cfg.Fusion, mods)
	if err != nil {
		return nil, err
	}
	n.fus = f
	if err := n.validateAlign(); err != nil {
		return nil, err
	}
	return n, nil
}

// Encoder returns the liquid-spiking encoder of modality name (its Config
// has every default resolved), or nil.
func (n *Network) Encoder(name string) *ModalityEncoder { return n.enc[name] }

// Config returns the configuration the network was built from.
func (n *Network) Config() NetworkConfig { return n.cfg }

// Names returns the modality names in sorted order.
func (n *Network) Names() []string { return append([]string(nil), n.names...) }

// Preprocessor returns the named modality's preprocessor (nil if unknown).
func (n *Network) Preprocessor(name string) modality.Preprocessor { return n.pre[name] }

// Fusion returns the network's fusion.
func (n *Network) Fusion() *fusion.Fusion { return n.fus }

// FusionScope is the scope path of the fusion's parameters.
const FusionScope = "fusion"

// Graph is one built network: input and output nodes of a static graph
// for a fixed batch size and mode. Bind a batch with Bind (or G.Let on
// the input nodes), then run a machine over the graph.
type Graph struct {
	// Batch is the batch size B the graph was built for.
	Batch int
	// Inputs maps each modality to its input placeholder, named
	// "input.<name>", of the preprocessor's InputShape (Int for text ids).
	Inputs map[string]*G.Node
	// Present maps each modality to its presence input [B] named
	// "present.<name>" (1 present, 0 missing; initial value all ones). Empty
	// when the fusion has no missing embeddings.
	Present map[string]*G.Node
	// Output is the head's output: logits [B, OutputDim], regression values
	// [B, OutputDim], token logits [B, TokenLen, OutputDim], or the caption
	// head's teacher-forced logits [B, TokenLen−1, OutputDim].
	Output *G.Node
	// Fused is the fused representation [B, fusion Dim] (nil for late).
	Fused *G.Node
	// Features maps each modality to its encoder feature [B, encoder_dim]
	// (the seed's return_modality_features), before missing-embedding
	// substitution and weighting.
	Features map[string]*G.Node
	// Attention holds the fusion's attention maps (the seed's
	// return_attention_maps); see fusion.Output.
	Attention map[string]*G.Node
	// Encoders holds each modality's encoder output (spikes, rates).
	Encoders map[string]*EncoderOutput
	// Keep is the fusion's applied keep mask [B, M] (nil without missing
	// handling).
	Keep *G.Node
	// Labels is the label placeholder "labels": Int [B] (classification),
	// float [B, OutputDim] (regression), Int [B, TokenLen] (tokens,
	// caption).
	Labels *G.Node
	// Loss is the scalar mean loss of Output against Labels.
	Loss *G.Node
	// Caption is the caption head's conditioning (nil for other heads).
	Caption *CaptionState

	// encodeOnly marks a generation encoder graph: no labels, no loss, and
	// a caption head that stops at its conditioning.
	encodeOnly bool
}

// Build adds the whole network for batch size batch to c's graph:
// per modality (sorted order) input → preprocessor (scope "<name>.pre") →
// encoder ("<name>.encoder"), then fusion ("fusion") and head ("head", or
// "head.<name>" per modality for late fusion), labels and loss. Training
// behaviour (dropout, batch statistics, modality dropout) follows
// c.Train(). No panic escapes: Gorgonia's are returned as errors naming
// the scope.
func (n *Network) Build(c *nn.Ctx, batch int) (*Graph, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("network: batch size must be positive, got %d", batch)
	}
	var g *Graph
	err := nn.Catch("network", func() error {
		var err error
		g, err = n.build(c, batch, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func (n *Network) build(c *nn.Ctx, batch int, encodeOnly bool) (*Graph, error) {
	g := &Graph{
		Batch:      batch,
		Inputs:     map[string]*G.Node{},
		Present:    map[string]*G.Node{},
		Features:   map[string]*G.Node{},
		Encoders:   map[string]*EncoderOutput{},
		encodeOnly: encodeOnly,
	}
	if n.cfg.Head == HeadCaption && !encodeOnly {
		g.Labels = c.IntInput("labels", batch, n.cfg.TokenLen) // the decoder reads it (teacher forcing)
	}
	for _, name := range n.names {
		err := nn.Catch(fmt.Sprintf("modality %q", name), func() error { return n.buildModality(c, name, g) })
		if err != nil {
			return nil, err
		}
	}
	fo, err := n.fus.Forward(c.Sub(FusionScope), fusion.Inputs{Features: g.Features, Present: g.Present}, n.head(c, g))
	if err != nil {
		return nil, err
	}
	g.Output, g.Fused, g.Attention, g.Keep = fo.Output, fo.Fused, fo.Attention, fo.Keep
	if encodeOnly {
		return g, nil
	}
	if err := n.loss(c, g); err != nil {
		return nil, err
	}
	return g, nil
}

// buildModality adds one modality's input, preprocessor, encoder and
// presence input to g.
func (n *Network) buildModality(c *nn.Ctx, name string, g *Graph) error {
	batch := g.Batch
	mc := c.Sub(name)
	p := n.pre[name]
	shape := p.InputShape(batch)
	var x *G.Node
	if p.IntInput() {
		x = c.IntInput("input."+name, shape...)
	} else {
		x = c.Input("input."+name, shape...)
	}
	g.Inputs[name] = x
	var out *EncoderOutput
	if n.aligned(name) {
		var err error
		if out, err = n.encodeAligned(mc, name, x); err != nil {
			return err
		}
	} else {
		h, err := p.Forward(mc.Sub("pre"), x)
		if err != nil {
			return err
		}
		if s := h.Shape(); s.Dims() != 2 || s[0] != batch || s[1] != p.OutputDim() {
			return mc.Errorf("preprocessor returned %v, want [%d, %d]", s, batch, p.OutputDim())
		}
		if out, err = n.enc[name].Forward(mc.Sub("encoder"), h); err != nil {
			return err
		}
	}
	g.Encoders[name] = out
	g.Features[name] = out.Feature
	if n.fus.HandlesMissing() {
		ones := make([]float64, batch)
		for i := range ones {
			ones[i] = 1
		}
		g.Present[name] = G.NewTensor(c.Graph(), c.Dtype(), 1, G.WithShape(batch), G.WithName("present."+name),
			G.WithValue(nn.NewDense(c.Dtype(), []int{batch}, ones)))
	}
	return nil
}

// head returns the fusion's head builder: scope "head" for the shared
// head, "head.<modality>" for late fusion's per-modality heads.
//
// classification / regression: x [B, Dim] → Linear(Dim, OutputDim), or
// Linear(Dim, HeadHidden)-ReLU-Linear(HeadHidden, OutputDim).
// tokens: h[b,l] = ReLU(x[b] + pos[l]) with learned positions pos
// [TokenLen, Dim] ("head.pos"), then the same layers per position, giving
// [B, TokenLen, OutputDim].
// caption: the liquid decoder of CaptionConfig, reading g's labels.
func (n *Network) head(c *nn.Ctx, g *Graph) fusion.Head {
	return func(mod string, x *G.Node) (*G.Node, error) {
		hc := c.Sub("head")
		if mod != "" {
			hc = hc.Sub(mod)
		}
		if n.cfg.Head == HeadCaption {
			return n.captionHead(hc, x, g)
		}
		dim := x.Shape()[1]
		var err error
		if n.cfg.Head == HeadTokens {
			if x, err = n.tokenExpand(hc, x); err != nil {
				return nil, err
			}
		}
		in := dim
		if n.cfg.HeadHidden > 0 {
			if x, err = (nn.Linear{In: dim, Out: n.cfg.HeadHidden}).Forward(hc.Sub("hidden"), x); err != nil {
				return nil, err
			}
			if x, err = nn.ReLU(x); err != nil {
				return nil, hc.Errorf("%v", err)
			}
			in = n.cfg.HeadHidden
		}
		return nn.Linear{In: in, Out: n.cfg.OutputDim}.Forward(hc.Sub("out"), x)
	}
}

// tokenExpand turns x [B, Dim] into ReLU(x[b] + pos[l]) [B, L, Dim].
func (n *Network) tokenExpand(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	b, d, l := x.Shape()[0], x.Shape()[1], n.cfg.TokenLen
	pos, err := c.Param("pos", []int{1, l, d}, nn.Normal(0, 0.02))
	if err != nil {
		return nil, err
	}
	x3, err := nn.Reshape(x, b, 1, d)
	if err != nil {
		return nil, c.Errorf("tokens head: %v", err)
	}
	reps := make([]*G.Node, l)
	for i := range reps {
		reps[i] = x3
	}
	xs, err := nn.Concat(1, reps...)
	if err != nil {
		return nil, c.Errorf("tokens head: %v", err)
	}
	preps := make([]*G.Node, b)
	for i := range preps {
		preps[i] = pos
	}
	ps, err := nn.Concat(0, preps...)
	if err != nil {
		return nil, c.Errorf("tokens head: %v", err)
	}
	h, err := nn.Add(xs, ps)
	if err != nil {
		return nil, c.Errorf("tokens head: %v", err)
	}
	return nn.ReLU(h)
}

// loss adds the labels placeholder and the loss for the head kind.
func (n *Network) loss(c *nn.Ctx, g *Graph) error {
	var err error
	switch n.cfg.Head {
	case HeadClassification:
		g.Labels = c.IntInput("labels", g.Batch)
		g.Loss, err = nn.CrossEntropy(g.Output, g.Labels)
	case HeadRegression:
		g.Labels = c.Input("labels", g.Batch, n.cfg.OutputDim)
		g.Loss, err = nn.MSE(g.Output, g.Labels)
	case HeadTokens:
		g.Labels = c.IntInput("labels", g.Batch, n.cfg.TokenLen)
		g.Loss, err = nn.CrossEntropySeq(g.Output, g.Labels, n.cfg.IgnoreIndex)
	case HeadCaption:
		g.Loss, err = n.captionLoss(g) // labels were made before the head
	}
	if err != nil {
		return fmt.Errorf("network: %s loss: %w", n.cfg.Head, err)
	}
	return nil
}

// Feed is one batch for a Graph: raw inputs per modality (float32/float64
// of the preprocessor's InputShape, or tensor.Int ids for text), optional
// presence vectors [B] (1 present, 0 missing), and labels.
type Feed struct {
	Inputs  map[string]*tensor.Dense
	Present map[string]*tensor.Dense
	// Labels may be nil for inference: zeros are bound and Loss is then
	// meaningless.
	Labels *tensor.Dense
}

// Bind binds a batch to the graph's placeholders. A modality without an
// input is an error naming it, unless the network has missing embeddings:
// then the modality is marked absent for every sample (zeros are bound to
// its input) and the fusion uses its learned missing embedding. Shapes
// and dtypes are checked against the placeholders.
func (g *Graph) Bind(f Feed) error {
	names := make([]string, 0, len(g.Inputs))
	for name := range g.Inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	for name := range f.Inputs {
		if g.Inputs[name] == nil {
			return fmt.Errorf("input for unknown modality %q (network modalities: %s)", name, strings.Join(names, ", "))
		}
	}
	for name := range f.Present {
		if g.Present[name] == nil {
			if g.Inputs[name] == nil {
				return fmt.Errorf("presence for unknown modality %q (network modalities: %s)", name, strings.Join(names, ", "))
			}
			return fmt.Errorf("modality %q: presence given but the network has no missing embeddings (set fusion missing_embedding or a modality_dropout rate)", name)
		}
	}
	for _, name := range names {
		node := g.Inputs[name]
		x, ok := f.Inputs[name]
		pres := f.Present[name]
		if !ok || x == nil {
			if g.Present[name] == nil {
				return fmt.Errorf("modality %q: no input given, and this network cannot run without it (it has no missing-modality embedding: set fusion missing_embedding or a modality_dropout rate when building it)", name)
			}
			x = tensor.New(tensor.Of(node.Dtype()), tensor.WithShape(node.Shape().Clone()...))
			pres = tensor.New(tensor.Of(g.Present[name].Dtype()), tensor.WithShape(g.Batch))
		}
		if err := bindChecked(node, x, "modality "+fmt.Sprintf("%q", name)+" input"); err != nil {
			return err
		}
		if p := g.Present[name]; p != nil {
			if pres == nil {
				ones := make([]float64, g.Batch)
				for i := range ones {
					ones[i] = 1
				}
				pres = nn.NewDense(p.Dtype(), []int{g.Batch}, ones)
			}
			if err := bindChecked(p, pres, fmt.Sprintf("modality %q presence", name)); err != nil {
				return err
			}
		}
	}
	if g.Labels == nil {
		return nil // a generation encoder graph has no labels
	}
	lab := f.Labels
	if lab == nil {
		lab = tensor.New(tensor.Of(g.Labels.Dtype()), tensor.WithShape(g.Labels.Shape().Clone()...))
	}
	return bindChecked(g.Labels, lab, "labels")
}

func bindChecked(n *G.Node, v *tensor.Dense, what string) error {
	if !v.Shape().Eq(n.Shape()) {
		return fmt.Errorf("%s has shape %v, want %v", what, v.Shape(), n.Shape())
	}
	if v.Dtype() != n.Dtype() {
		return fmt.Errorf("%s has dtype %v, want %v", what, v.Dtype(), n.Dtype())
	}
	if err := G.Let(n, v); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// NumParams builds the network on a scratch float32 store and returns its
// number of trainable parameters (PyTorch's sum of numel()).
func (n *Network) NumParams() (int, error) {
	store, err := nn.NewStore(tensor.Float32, 1)
	if err != nil {
		return 0, err
	}
	if _, err := n.Build(nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}), 1); err != nil {
		return 0, err
	}
	return store.NumParams(), nil
}

// ModalityWeights returns the normalised modality weights read from store
// (1/M each when the fusion has no learnable weights), for reports.
func (n *Network) ModalityWeights(store *nn.Store) (map[string]float64, error) {
	return fusion.ModalityWeights(store, FusionScope, n.names)
}
