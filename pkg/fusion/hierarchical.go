package fusion

import (
	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// hierarchical fuses in two levels. Level 1: cross-modal attention, each
// modality attending to the others (CrossModalAttention under
// "cross.<name>"), giving M cross-attended tokens c_i. Level 2:
// self-attention over those tokens, s = LayerNorm(C + MHA(C,C,C)) (under
// "attn", "norm"). Then as hybrid: fused = Dropout(ReLU(Linear([mean s,
// f_1, …, f_M]))) (under "proj"). Maps "cross.<name>" [B,Heads,1,M−1] and
// "self" [B,Heads,M,M].
func (f *Fusion) hierarchical(c *nn.Ctx, feats []*G.Node, maps map[string]*G.Node) (*G.Node, error) {
	d := f.dims[0]
	cross, cm, err := CrossModalAttention{Dim: d, Heads: f.cfg.Heads, Dropout: f.cfg.Dropout}.Forward(c.Sub("cross"), f.names, feats)
	if err != nil {
		return nil, err
	}
	for name, w := range cm {
		maps["cross."+name] = w
	}
	tok, err := stackTokens(cross)
	if err != nil {
		return nil, c.Errorf("level-2 tokens: %v", err)
	}
	s, w, err := SelfAttention{Dim: d, Heads: f.cfg.Heads, Dropout: f.cfg.Dropout}.Forward(c, tok)
	if err != nil {
		return nil, err
	}
	maps["self"] = w
	return f.poolAndProject(c, s, feats)
}
