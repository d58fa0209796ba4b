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

func TestResidualAfterRank3LinearGradients(t *testing.T) {
	// tok + Linear(tok) with tok a kernel output read by a rank-3 Linear:
	// with Gorgonia's aliasing reshape inside Linear, the in-place residual
	// add corrupted the value the weight gradient reads (found by the
	// modality gradient checks). bench-small's hybrid fusion has this shape.
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		x := G.NewTensor(c.Graph(), c.Dtype(), 3, G.WithShape(4, 1, 24), G.WithName("x"), G.WithValue(nntest.RandInput(7, 1, 4, 1, 24)))
		y := G.NewTensor(c.Graph(), c.Dtype(), 3, G.WithShape(4, 1, 24), G.WithName("y"), G.WithValue(nntest.RandInput(8, 1, 4, 1, 24)))
		tok, err := nn.Concat(1, x, y)
		if err != nil {
			return nil, nil, err
		}
		f, err := nn.Linear{In: 24, Out: 24}.Forward(c.Sub("f"), tok)
		if err != nil {
			return nil, nil, err
		}
		r, err := G.Add(tok, f)
		if err != nil {
			return nil, nil, err
		}
		flat, err := nn.Reshape(r, 8, 24)
		if err != nil {
			return nil, nil, err
		}
		loss, err := nntest.WeightedSum(flat, 9)
		return loss, G.Nodes{x, y}, err
	}, nntest.Options{MinChecked: 4})
}

func TestReshapeRejectsSizeChange(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, G.Float64, G.WithShape(2, 3), G.WithName("x"))
	if _, err := nn.Reshape(x, 4, 2); err == nil {
		t.Fatal("reshape 6 → 8 elements accepted")
	}
}

func TestSliceAxisAsGradients(t *testing.T) {
	// Two slices of one node along the middle axis, each given another
	// shape (the fused encoders' packed outputs are read this way): the
	// backward pads a gradient of the new shape back into the sliced axis,
	// and both pads add into x's gradient.
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		x := G.NewTensor(c.Graph(), c.Dtype(), 3, G.WithShape(3, 10, 4), G.WithName("x"), G.WithValue(nntest.RandInput(11, 1, 3, 10, 4)))
		a, err := nn.SliceAxisAs(x, 1, 2, 5, []int{9, 4})
		if err != nil {
			return nil, nil, err
		}
		b, err := nn.SliceAxisAs(x, 1, 4, 10, []int{72})
		if err != nil {
			return nil, nil, err
		}
		y, err := nn.Linear{In: 4, Out: 5}.Forward(c.Sub("a"), a)
		if err != nil {
			return nil, nil, err
		}
		l1, err := nntest.WeightedSum(y, 12)
		if err != nil {
			return nil, nil, err
		}
		l2, err := nntest.WeightedSum(b, 13)
		if err != nil {
			return nil, nil, err
		}
		loss, err := G.Add(l1, l2)
		return loss, G.Nodes{x}, err
	}, nntest.Options{MinChecked: 3, Entries: 20})
}

func TestSliceAxisAsRejectsWrongSize(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, G.Float64, 2, G.WithShape(4, 6), G.WithName("x"))
	if _, err := nn.SliceAxisAs(x, 1, 0, 3, []int{5, 2}); err == nil {
		t.Fatal("a 4×3 slice given shape 5×2 was accepted")
	}
}
