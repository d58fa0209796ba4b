package modality

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// TextConfig shapes the text preprocessor (Config.Text).
type TextConfig struct {
	// VocabSize is the number of token ids; ids must lie in
	// [0, VocabSize). Required (no default).
	VocabSize int `mapstructure:"vocab_size" yaml:"vocab_size"`
	// SeqLen is the number of tokens per sample InputShape returns and
	// the size of the learned position table; Forward accepts any length
	// up to SeqLen (any length with sinusoidal or no positions). 0 means
	// 128.
	SeqLen int `mapstructure:"seq_len" yaml:"seq_len"`
	// EmbedDim is the token and position embedding size E. 0 means 128.
	EmbedDim int `mapstructure:"embed_dim" yaml:"embed_dim"`
	// Positions: "learned" (a trained table "pos.weight" [SeqLen, E],
	// N(0,1) init like nn.Embedding), "sinusoidal" (fixed,
	// PE[p,2i] = sin(p/10000^(2i/E)), PE[p,2i+1] = cos(p/10000^(2i/E)),
	// Vaswani et al. 2017) or "none". "" means learned.
	Positions string `mapstructure:"positions" yaml:"positions"`
	// PadID is the padding token: positions holding it are left out of
	// the mean and max pooling and get mask 0 in ForwardSequence. 0 means
	// token 0 pads; -1 (any negative value) means there is no padding and
	// every position counts (bench-small's plain mean).
	PadID int `mapstructure:"pad_id" yaml:"pad_id"`
	// Pooling reduces the tokens to one vector: "mean" (over non-padding
	// tokens), "first" (the first token, a CLS token), "max" (elementwise
	// over non-padding tokens). A row that is all padding pools to 0.
	// "" means mean.
	Pooling string `mapstructure:"pooling" yaml:"pooling"`
	// Dropout probability applied to the summed embeddings while
	// training, in [0, 1). 0 disables it.
	Dropout float64 `mapstructure:"dropout" yaml:"dropout"`
}

func (t TextConfig) withDefaults() TextConfig {
	t.SeqLen = orInt(t.SeqLen, 128)
	t.EmbedDim = orInt(t.EmbedDim, 128)
	t.Positions = orString(t.Positions, "learned")
	t.Pooling = orString(t.Pooling, "mean")
	if t.PadID < 0 {
		t.PadID = -1
	}
	return t
}

func (t TextConfig) validate(v *validator) {
	if t.VocabSize <= 0 {
		v.add("vocab_size", "must be positive (the tokenizer's vocabulary size), got %d", t.VocabSize)
	}
	v.positive("seq_len", t.SeqLen)
	v.positive("embed_dim", t.EmbedDim)
	v.oneOf("positions", t.Positions, "learned", "sinusoidal", "none")
	v.oneOf("pooling", t.Pooling, "mean", "first", "max")
	if t.VocabSize > 0 && t.PadID >= t.VocabSize {
		v.add("pad_id", "%d is outside the vocabulary [0, %d)", t.PadID, t.VocabSize)
	}
	v.probability("dropout", t.Dropout)
}

// Text is the token preprocessor: ids [B, L] (integers) → [B, OutputDim].
//
//	x      = tok(ids) + pos[:L]            [B, L, E]  (tok: nn.Embedding "tok")
//	x      = dropout(x)                    (training only)
//	Forward          = fc(pool(x))         [B, OutputDim]
//	ForwardSequence  = fc(x), mask         [B, L, OutputDim], [B, L]
//
// fc is Linear(E, OutputDim). Since fc is affine and the mean's weights sum
// to 1, mean-pooling ForwardSequence's output with its mask gives Forward's
// result. With vocab 1000, embed 64, seq_len 16, learned positions, pad_id
// -1 and mean pooling it is bench-small's TextStem exactly (parameters
// tok, pos, fc).
type Text struct {
	cfg TextConfig
	out int
}

func newText(cfg TextConfig, out int) *Text { return &Text{cfg: cfg, out: out} }

// Kind returns "text".
func (t *Text) Kind() string { return KindText }

// InputShape returns [batch, SeqLen].
func (t *Text) InputShape(batch int) []int { return []int{batch, t.cfg.SeqLen} }

// IntInput returns true: the input holds token ids.
func (t *Text) IntInput() bool { return true }

// OutputDim returns the feature size.
func (t *Text) OutputDim() int { return t.out }

// Forward maps token ids [B, L] to pooled features [B, OutputDim].
func (t *Text) Forward(c *nn.Ctx, ids *G.Node) (*G.Node, error) {
	return guard(c, KindText, func() (*G.Node, error) { return t.forward(c, ids) })
}

func (t *Text) forward(c *nn.Ctx, ids *G.Node) (*G.Node, error) {
	x, err := t.embed(c, ids)
	if err != nil {
		return nil, err
	}
	var pooled *G.Node
	switch t.cfg.Pooling {
	case "mean":
		w, err := tokenWeights(ids, x, t.cfg.PadID, true)
		if err != nil {
			return nil, scopedErr(c, err)
		}
		pooled, err = weightedSumL(x, w)
		if err != nil {
			return nil, scopedErr(c, err)
		}
	case "first":
		s := x.Shape()
		first, err := nn.SliceAxis(x, 1, 0, 1)
		if err != nil {
			return nil, scopedErr(c, err)
		}
		if pooled, err = reshape(c, first, s[0], s[2]); err != nil {
			return nil, err
		}
	case "max":
		mask, err := tokenWeights(ids, x, t.cfg.PadID, false)
		if err != nil {
			return nil, scopedErr(c, err)
		}
		if pooled, err = maskedMaxL(x, mask); err != nil {
			return nil, scopedErr(c, err)
		}
	default:
		return nil, c.Errorf("text.pooling: unknown %q", t.cfg.Pooling)
	}
	return nn.Linear{In: t.cfg.EmbedDim, Out: t.out}.Forward(c.Sub("fc"), pooled)
}

// ForwardSequence maps token ids [B, L] to per-token features
// [B, L, OutputDim] and the padding mask [B, L] (1 real token, 0 padding;
// all ones when PadID < 0).
func (t *Text) ForwardSequence(c *nn.Ctx, ids *G.Node) (seq, mask *G.Node, err error) {
	seq, err = guard(c, KindText, func() (*G.Node, error) {
		var err error
		seq, mask, err = t.forwardSequence(c, ids)
		return seq, err
	})
	if err != nil {
		return nil, nil, err
	}
	return seq, mask, nil
}

func (t *Text) forwardSequence(c *nn.Ctx, ids *G.Node) (seq, mask *G.Node, err error) {
	x, err := t.embed(c, ids)
	if err != nil {
		return nil, nil, err
	}
	if mask, err = tokenWeights(ids, x, t.cfg.PadID, false); err != nil {
		return nil, nil, scopedErr(c, err)
	}
	seq, err = nn.Linear{In: t.cfg.EmbedDim, Out: t.out}.Forward(c.Sub("fc"), x)
	return seq, mask, err
}

// embed returns tok(ids) + positions, after dropout: [B, L, E].
func (t *Text) embed(c *nn.Ctx, ids *G.Node) (*G.Node, error) {
	if err := checkInput(c, ids, KindText, true, []int{0, 0}, []string{"batch", "tokens"}); err != nil {
		return nil, err
	}
	l, e := ids.Shape()[1], t.cfg.EmbedDim
	if t.cfg.Positions == "learned" && l > t.cfg.SeqLen {
		return nil, c.Errorf("text preprocessor: %d tokens exceed seq_len %d (the learned position table's size)", l, t.cfg.SeqLen)
	}
	x, err := nn.Embedding{Num: t.cfg.VocabSize, Dim: e}.Forward(c.Sub("tok"), ids)
	if err != nil {
		return nil, err
	}
	var pos *G.Node
	switch t.cfg.Positions {
	case "learned":
		if pos, err = c.Sub("pos").Param("weight", []int{t.cfg.SeqLen, e}, nn.Normal(0, 1)); err != nil {
			return nil, err
		}
		if l < t.cfg.SeqLen {
			if pos, err = nn.SliceAxis(pos, 0, 0, l); err != nil {
				return nil, scopedErr(c, err)
			}
		}
		if pos, err = reshape(c, pos, 1, l, e); err != nil {
			return nil, err
		}
	case "sinusoidal":
		pos = constNode(c, fmt.Sprintf("modality.sinusoidal{len=%d,dim=%d,%v}", l, e, c.Dtype()), []int{1, l, e}, SinusoidalPositions(l, e))
	}
	if pos != nil {
		if x, err = G.BroadcastAdd(x, pos, nil, []byte{0}); err != nil {
			return nil, c.Errorf("add positions %v + %v: %v", x.Shape(), pos.Shape(), err)
		}
	}
	return nn.Dropout{P: t.cfg.Dropout}.Forward(c.Sub("dropout"), x)
}

// SinusoidalPositions returns the fixed transformer position table
// [length, dim] (row-major): PE[p, 2i] = sin(p·ω_i), PE[p, 2i+1] =
// cos(p·ω_i), ω_i = 10000^(−2i/dim).
func SinusoidalPositions(length, dim int) []float64 {
	pe := make([]float64, length*dim)
	for p := 0; p < length; p++ {
		for j := 0; j < dim; j++ {
			i2 := j - j%2
			a := float64(p) * math.Pow(10000, -float64(i2)/float64(dim))
			if j%2 == 0 {
				pe[p*dim+j] = math.Sin(a)
			} else {
				pe[p*dim+j] = math.Cos(a)
			}
		}
	}
	return pe
}
