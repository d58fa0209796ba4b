package nn_test

import (
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

func TestLinearAndConcatGradients(t *testing.T) {
	// The same node feeds two concats and one concat twice: the case where
	// Gorgonia's own Concat gives wrong gradients (DESIGN.md fact 2). Sizes
	// are above the ~1k elements where that bug appears.
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		x := G.NewTensor(c.Graph(), c.Dtype(), 2, G.WithShape(16, 40), G.WithName("x"), G.WithValue(nntest.RandInput(3, 1, 16, 40)))
		h, err := nn.Linear{In: 40, Out: 48}.Forward(c.Sub("a"), x)
		if err != nil {
			return nil, nil, err
		}
		cat1, err := nn.Concat(1, h, h, x)
		if err != nil {
			return nil, nil, err
		}
		cat2, err := nn.Concat(0, h, h)
		if err != nil {
			return nil, nil, err
		}
		y1, err := nn.Linear{In: 136, Out: 8}.Forward(c.Sub("b"), cat1)
		if err != nil {
			return nil, nil, err
		}
		l1, err := nntest.WeightedSum(y1, 5)
		if err != nil {
			return nil, nil, err
		}
		l2, err := nntest.WeightedSum(cat2, 6)
		if err != nil {
			return nil, nil, err
		}
		loss, err := G.Add(l1, l2)
		return loss, G.Nodes{x}, err
	}, nntest.Options{MinChecked: 5})
}
