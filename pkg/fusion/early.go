package fusion

import (
	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// early concatenates the (weighted) modality features and projects them:
// fused = Dropout(ReLU(Linear(ΣD_m → Dim)([f_1, …, f_M]))). Parameters
// under "early.proj". Widths may differ between modalities.
func (f *Fusion) early(c *nn.Ctx, feats []*G.Node) (*G.Node, error) {
	cat, err := nn.Concat(1, feats...)
	if err != nil {
		return nil, c.Errorf("concatenate features: %v", err)
	}
	return f.project(c, cat)
}
