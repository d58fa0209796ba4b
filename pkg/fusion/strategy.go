package fusion

import (
	"fmt"
	"sort"
	"strings"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Strategy names (Config.Strategy).
const (
	Early        = "early"
	Late         = "late"
	Hybrid       = "hybrid"
	Hierarchical = "hierarchical"
)

// Strategies lists the valid strategy names.
var Strategies = []string{Early, Late, Hybrid, Hierarchical}

// Config selects and sizes a fusion strategy (see the package doc for what
// each computes).
type Config struct {
	// Strategy is early | late | hybrid | hierarchical; "" means hybrid.
	Strategy string
	// Dim is fusion_dim: the width of the fused representation [B, Dim]
	// handed to the head (per-modality width for late). Must be positive.
	Dim int
	// Heads is the number of attention heads (hybrid, hierarchical); it must
	// divide the modalities' common encoder dim. 0 means 1.
	Heads int
	// Dropout is the attention-weight dropout and the dropout after the
	// fusion projection, in [0, 1); active in training only.
	Dropout float64
	// ModalityWeights adds learnable modality weights w = softmax(logits),
	// logits [M] starting at 0 (uniform). Features are scaled by M·w_m
	// (early, hybrid, hierarchical) or predictions combined with w_m
	// (late). Off, the weights are fixed at 1/M. Read them with
	// ModalityWeights.
	ModalityWeights bool
	// ModalityDropout maps a modality name to its probability, in [0, 1), of
	// being replaced by its learned missing embedding for a training sample
	// (per sample, redrawn every step; at least one present modality is
	// always kept). Any positive rate implies MissingEmbedding.
	ModalityDropout map[string]float64
	// MissingEmbedding gives every modality a learned "missing" embedding
	// and a presence input [B] (1 present, 0 missing), so a model can run
	// with a modality absent for some or all samples.
	MissingEmbedding bool
}

// Modality describes one fused input: its name and feature width D_m
// (the encoder_dim).
type Modality struct {
	Name string
	Dim  int
}

// Fusion is a validated fusion configuration for a fixed, sorted set of
// modalities. It holds no parameters: Forward creates or reuses them in the
// store behind the nn.Ctx.
type Fusion struct {
	cfg   Config
	names []string
	dims  []int
}

// New validates cfg against the modalities (any order; they are sorted by
// name) and returns the fusion. Errors name the field and say how to fix it.
func New(cfg Config, mods []Modality) (*Fusion, error) {
	if cfg.Strategy == "" {
		cfg.Strategy = Hybrid
	}
	if cfg.Heads == 0 {
		cfg.Heads = 1
	}
	ms := append([]Modality(nil), mods...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	f := &Fusion{cfg: cfg}
	for i, m := range ms {
		if m.Name == "" {
			return nil, fmt.Errorf("fusion: modality %d has an empty name", i)
		}
		if i > 0 && ms[i-1].Name == m.Name {
			return nil, fmt.Errorf("fusion: modality %q listed twice", m.Name)
		}
		if m.Dim <= 0 {
			return nil, fmt.Errorf("fusion: modality %q: feature dim (encoder_dim) must be positive, got %d", m.Name, m.Dim)
		}
		f.names = append(f.names, m.Name)
		f.dims = append(f.dims, m.Dim)
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	if len(cfg.ModalityDropout) > 0 {
		for _, r := range cfg.ModalityDropout {
			if r > 0 {
				f.cfg.MissingEmbedding = true
			}
		}
	}
	return f, nil
}

func (f *Fusion) validate() error {
	cfg := f.cfg
	if len(f.names) == 0 {
		return fmt.Errorf("fusion: no modalities")
	}
	switch cfg.Strategy {
	case Early, Late, Hybrid, Hierarchical:
	default:
		return fmt.Errorf("fusion: unknown strategy %q (want one of %s)", cfg.Strategy, strings.Join(Strategies, ", "))
	}
	if cfg.Dim <= 0 {
		return fmt.Errorf("fusion: dim (fusion_dim) must be positive, got %d", cfg.Dim)
	}
	if cfg.Heads < 0 {
		return fmt.Errorf("fusion: heads must be positive, got %d", cfg.Heads)
	}
	if cfg.Dropout < 0 || cfg.Dropout >= 1 {
		return fmt.Errorf("fusion: dropout must be in [0, 1), got %g", cfg.Dropout)
	}
	for name, r := range cfg.ModalityDropout {
		if !f.has(name) {
			return fmt.Errorf("fusion: modality_dropout names modality %q, which is not one of %v", name, f.names)
		}
		if r < 0 || r >= 1 {
			return fmt.Errorf("fusion: modality_dropout of %q must be in [0, 1), got %g", name, r)
		}
	}
	if cfg.Strategy == Hybrid || cfg.Strategy == Hierarchical {
		if cfg.Strategy == Hierarchical && len(f.names) < 2 {
			return fmt.Errorf("fusion: the hierarchical strategy needs at least two modalities, got %v (use early or late)", f.names)
		}
		for i := range f.names {
			if f.dims[i] != f.dims[0] {
				return fmt.Errorf("fusion: modality %q has encoder_dim %d but %q has %d: the %s strategy treats modality features as tokens of one width, "+
					"so set the same encoder_dim for every modality (or use the early or late strategy, which accept different widths)",
					f.names[i], f.dims[i], f.names[0], f.dims[0], cfg.Strategy)
			}
		}
		if f.dims[0]%cfg.Heads != 0 {
			return fmt.Errorf("fusion: heads=%d does not divide the modalities' encoder_dim %d: choose heads that divide it", cfg.Heads, f.dims[0])
		}
	}
	return nil
}

func (f *Fusion) has(name string) bool {
	for _, n := range f.names {
		if n == name {
			return true
		}
	}
	return false
}

// Config returns the configuration with defaults applied.
func (f *Fusion) Config() Config { return f.cfg }

// Names returns the modality names in the sorted order every per-modality
// list (weights, masks, tokens) uses.
func (f *Fusion) Names() []string { return append([]string(nil), f.names...) }

// HandlesMissing reports whether the fusion has missing embeddings and
// presence inputs (Config.MissingEmbedding, or a positive modality dropout).
func (f *Fusion) HandlesMissing() bool { return f.cfg.MissingEmbedding }

// Head builds a prediction from a fused representation x [B, Dim]. The
// fusion calls it once with modality "" (early, hybrid, hierarchical) or
// once per modality with that modality's name (late: per-modality heads);
// the caller chooses the parameter scope for each.
type Head func(modality string, x *G.Node) (*G.Node, error)

// Inputs are the per-modality tensors fused by Forward.
type Inputs struct {
	// Features maps every modality to its feature [B, D_m].
	Features map[string]*G.Node
	// Present maps modalities to presence vectors [B] (1 present, 0
	// missing). Required for every modality when HandlesMissing; must be
	// empty otherwise.
	Present map[string]*G.Node
}

// Output is what Forward built.
type Output struct {
	// Output is the prediction (the head's output, or the weighted sum of
	// the per-modality heads' outputs for late fusion).
	Output *G.Node
	// Fused is the fused representation [B, Dim] given to the head; nil for
	// late fusion.
	Fused *G.Node
	// Features are the modality features after missing-embedding
	// substitution and weighting: what the strategy fused.
	Features map[string]*G.Node
	// Attention holds the attention maps: "self" [B, Heads, M, M] (hybrid),
	// "cross.<name>" [B, Heads, 1, M−1] and "self" [B, Heads, M, M]
	// (hierarchical). Empty for early and late.
	Attention map[string]*G.Node
	// Keep is the keep mask [B, M] actually applied (presence × training
	// drop, sorted modality order); nil without missing handling.
	Keep *G.Node
	// Weights are the weight logits [M] (nil without ModalityWeights).
	Weights *G.Node
}

// Forward adds the fusion to c's graph (parameters under c's scope).
func (f *Fusion) Forward(c *nn.Ctx, in Inputs, head Head) (*Output, error) {
	if head == nil {
		return nil, c.Errorf("fusion: no head")
	}
	feats := make([]*G.Node, len(f.names))
	batch := -1
	for i, name := range f.names {
		x, ok := in.Features[name]
		if !ok || x == nil {
			return nil, c.Errorf("modality %q: no feature given to the fusion", name)
		}
		s := x.Shape()
		if s.Dims() != 2 || s[1] != f.dims[i] {
			return nil, c.Errorf("modality %q: feature has shape %v, want [batch, %d]", name, s, f.dims[i])
		}
		if batch >= 0 && s[0] != batch {
			return nil, c.Errorf("modality %q: batch %d differs from %q's %d", name, s[0], f.names[0], batch)
		}
		batch = s[0]
		feats[i] = x
	}
	for name := range in.Features {
		if !f.has(name) {
			return nil, c.Errorf("feature for unknown modality %q (fusion modalities: %v)", name, f.names)
		}
	}
	out := &Output{Attention: map[string]*G.Node{}}
	if f.cfg.MissingEmbedding {
		pres := make([]*G.Node, len(f.names))
		rates := make([]float64, len(f.names))
		for i, name := range f.names {
			p, ok := in.Present[name]
			if !ok || p == nil {
				return nil, c.Errorf("modality %q: no presence input (required with missing embeddings)", name)
			}
			pres[i] = p
			rates[i] = f.cfg.ModalityDropout[name]
		}
		keep, err := keepMask(c, f.names, rates, pres)
		if err != nil {
			return nil, c.Errorf("modality dropout: %v", err)
		}
		if feats, err = applyMissing(c, f.names, f.dims, feats, keep); err != nil {
			return nil, err
		}
		out.Keep = keep
	} else if len(in.Present) > 0 {
		return nil, c.Errorf("presence inputs given but the fusion has no missing embeddings (set missing_embedding or a modality_dropout rate)")
	}
	if f.cfg.ModalityWeights {
		logits, err := c.Param(WeightsParam, []int{len(f.names)}, nn.Zeros())
		if err != nil {
			return nil, err
		}
		out.Weights = logits
		if f.cfg.Strategy != Late {
			for i := range feats {
				if feats[i], err = weighted(feats[i], logits, i, float64(len(feats))); err != nil {
					return nil, c.Errorf("modality %q: weighting: %v", f.names[i], err)
				}
			}
		}
	}
	out.Features = make(map[string]*G.Node, len(feats))
	for i, name := range f.names {
		out.Features[name] = feats[i]
	}
	var err error
	switch f.cfg.Strategy {
	case Early:
		out.Fused, err = f.early(c.Sub(Early), feats)
	case Late:
		out.Output, err = f.late(c.Sub(Late), feats, out.Weights, head)
		return out, err
	case Hybrid:
		out.Fused, err = f.hybrid(c, feats, out.Attention)
	case Hierarchical:
		out.Fused, err = f.hierarchical(c, feats, out.Attention)
	}
	if err != nil {
		return nil, err
	}
	if out.Output, err = head("", out.Fused); err != nil {
		return nil, err
	}
	return out, nil
}

// project is the fusion layer every strategy ends with:
// Dropout(ReLU(Linear(x))) from x [B, In] to [B, Dim], under c's "proj".
func (f *Fusion) project(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	in := x.Shape()[x.Shape().Dims()-1]
	y, err := nn.Linear{In: in, Out: f.cfg.Dim}.Forward(c.Sub("proj"), x)
	if err != nil {
		return nil, err
	}
	if y, err = nn.ReLU(y); err != nil {
		return nil, c.Errorf("fusion projection: %v", err)
	}
	return nn.Dropout{P: f.cfg.Dropout}.Forward(c.Sub("proj_dropout"), y)
}
