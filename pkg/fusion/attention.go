package fusion

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// SelfAttention is a post-norm self-attention block over modality tokens:
//
//	y = LayerNorm(x + MHA(x, x, x))      x, y [B, L, Dim]
//
// It returns y and the attention weights [B, Heads, L, L] (query axis
// first). Parameters: "attn.{q,k,v,out}_proj" and "norm.{weight,bias}"
// under the caller's scope. Dropout is the attention-weight dropout, active
// in training only.
type SelfAttention struct {
	Dim, Heads int
	Dropout    float64
}

// Forward adds the block to c's graph.
func (a SelfAttention) Forward(c *nn.Ctx, x *G.Node) (y, weights *G.Node, err error) {
	att, w, err := nn.MultiHeadAttention{Dim: a.Dim, Heads: a.Heads, Dropout: a.Dropout}.Forward(c.Sub("attn"), x, x, nil)
	if err != nil {
		return nil, nil, err
	}
	y, err = residualNorm(c, x, att, a.Dim)
	return y, w, err
}

// CrossModalAttention lets each modality attend to the others: for modality
// i (names in sorted order) the query is its token t_i [B,1,D] and the keys
// and values are the other modalities' tokens [B,M−1,D] (sorted order,
// i left out):
//
//	c_i = LayerNorm(t_i + MHA_i(q = t_i, kv = [t_j, j ≠ i]))      c_i [B, D]
//
// Each query modality has its own MHA and LayerNorm, under "<name>.attn"
// and "<name>.norm" of the caller's scope. The attention map of modality i
// is [B, Heads, 1, M−1]: how much of each other modality it takes.
//
// With two modalities every query has a single key, so its softmax weight
// is exactly 1 and c_i reduces to a learned map of the other modality's
// value plus the residual: the maps become informative from three
// modalities on. It needs at least two modalities.
type CrossModalAttention struct {
	Dim, Heads int
	Dropout    float64
}

// Forward adds the block; tokens[i] is modality names[i]'s feature [B, Dim].
// It returns the attended tokens (same order) and the maps keyed by the
// query modality's name.
func (a CrossModalAttention) Forward(c *nn.Ctx, names []string, tokens []*G.Node) ([]*G.Node, map[string]*G.Node, error) {
	if len(tokens) < 2 || len(tokens) != len(names) {
		return nil, nil, c.Errorf("cross-modal attention needs at least two modalities, got %d", len(tokens))
	}
	seq := make([]*G.Node, len(tokens))
	for i, t := range tokens {
		s, err := asSequence(t)
		if err != nil {
			return nil, nil, c.Errorf("modality %q: %v", names[i], err)
		}
		seq[i] = s
	}
	out := make([]*G.Node, len(tokens))
	maps := make(map[string]*G.Node, len(tokens))
	for i, name := range names {
		mc := c.Sub(name)
		others := make([]*G.Node, 0, len(seq)-1)
		for j := range seq {
			if j != i {
				others = append(others, seq[j])
			}
		}
		kv, err := nn.Concat(1, others...)
		if err != nil {
			return nil, nil, mc.Errorf("keys/values: %v", err)
		}
		att, w, err := nn.MultiHeadAttention{Dim: a.Dim, Heads: a.Heads, Dropout: a.Dropout}.Forward(mc.Sub("attn"), seq[i], kv, nil)
		if err != nil {
			return nil, nil, err
		}
		y, err := residualNorm(mc, seq[i], att, a.Dim)
		if err != nil {
			return nil, nil, err
		}
		if out[i], err = nn.Reshape(y, y.Shape()[0], a.Dim); err != nil {
			return nil, nil, mc.Errorf("reshape: %v", err)
		}
		maps[name] = w
	}
	return out, maps, nil
}

// residualNorm returns LayerNorm(x + att) with the norm under c's "norm".
func residualNorm(c *nn.Ctx, x, att *G.Node, dim int) (*G.Node, error) {
	sum, err := nn.Add(x, att)
	if err != nil {
		return nil, c.Errorf("residual: %v", err)
	}
	return nn.LayerNorm{Features: dim}.Forward(c.Sub("norm"), sum)
}

// asSequence reshapes a feature [B,D] into a one-token sequence [B,1,D].
func asSequence(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() != 2 {
		return nil, fmt.Errorf("token must be [batch, dim], got %v", s)
	}
	return nn.Reshape(x, s[0], 1, s[1])
}

// stackTokens turns M features [B,D] into the token sequence [B,M,D].
func stackTokens(feats []*G.Node) (*G.Node, error) {
	seq := make([]*G.Node, len(feats))
	for i, f := range feats {
		s, err := asSequence(f)
		if err != nil {
			return nil, err
		}
		seq[i] = s
	}
	return nn.Concat(1, seq...)
}
