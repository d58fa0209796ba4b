package fusion

import (
	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// late is decision-level fusion: every modality gets its own projection
// z_m = Dropout(ReLU(Linear(D_m → Dim)(f_m))) (under "late.<name>.proj")
// and its own head y_m = head(name, z_m); the output is Σ_m w_m·y_m with
// the normalised modality weights (w_m = 1/M when weights are off).
func (f *Fusion) late(c *nn.Ctx, feats []*G.Node, logits *G.Node, head Head) (*G.Node, error) {
	var sum *G.Node
	for i, name := range f.names {
		z, err := f.project(c.Sub(name), feats[i])
		if err != nil {
			return nil, err
		}
		y, err := head(name, z)
		if err != nil {
			return nil, err
		}
		if logits != nil {
			y, err = weighted(y, logits, i, 1)
		} else {
			y, err = scale(y, 1/float64(len(feats)))
		}
		if err != nil {
			return nil, c.Errorf("modality %q: weighting its prediction: %v", name, err)
		}
		if sum == nil {
			sum = y
		} else if sum, err = nn.Add(sum, y); err != nil {
			return nil, c.Errorf("sum of predictions: %v", err)
		}
	}
	return sum, nil
}
