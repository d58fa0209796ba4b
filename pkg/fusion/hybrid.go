package fusion

import (
	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// hybrid is bench-small's fusion: the M features become tokens [B,M,D];
// s = LayerNorm(T + MHA(T,T,T)) (under "attn", "norm"); p = mean of s over
// tokens [B,D]; fused = Dropout(ReLU(Linear((M+1)·D → Dim)([p, f_1, …,
// f_M]))) (under "proj"). Attention map "self" [B,Heads,M,M].
func (f *Fusion) hybrid(c *nn.Ctx, feats []*G.Node, maps map[string]*G.Node) (*G.Node, error) {
	d := f.dims[0]
	tok, err := stackTokens(feats)
	if err != nil {
		return nil, c.Errorf("tokens: %v", err)
	}
	s, w, err := SelfAttention{Dim: d, Heads: f.cfg.Heads, Dropout: f.cfg.Dropout}.Forward(c, tok)
	if err != nil {
		return nil, err
	}
	maps["self"] = w
	return f.poolAndProject(c, s, feats)
}

// poolAndProject averages the tokens s [B,L,D] and projects the average
// concatenated with the features: Dropout(ReLU(Linear([mean_L s, f_1, …,
// f_M]))).
func (f *Fusion) poolAndProject(c *nn.Ctx, s *G.Node, feats []*G.Node) (*G.Node, error) {
	p, err := nn.MeanAxis(s, 1)
	if err != nil {
		return nil, c.Errorf("mean over tokens: %v", err)
	}
	cat, err := nn.Concat(1, append([]*G.Node{p}, feats...)...)
	if err != nil {
		return nil, c.Errorf("concatenate pooled tokens and features: %v", err)
	}
	return f.project(c, cat)
}
