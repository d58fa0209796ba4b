package nntest_test

import (
	"fmt"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }
func (r *recorder) Helper()                           {}

// square is x² with a backward scaled by k: k = 2 is correct, others wrong.
func square(x *G.Node, k float64) (*G.Node, error) {
	kern := &nn.Kernel{Name: fmt.Sprintf("TestSquare{%g}", k)}
	kern.Shape = func(in []tensor.Shape) (tensor.Shape, error) { return in[0].Clone(), nil }
	apply := func(in []*tensor.Dense, f func(v float64) float64) (*tensor.Dense, error) {
		vals, err := nn.ToFloat64(in[0])
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			vals[i] = f(v)
		}
		return nn.NewDense(in[0].Dtype(), in[0].Shape(), vals), nil
	}
	kern.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return apply(in, func(v float64) float64 { return v * v })
	}
	kern.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		d, err := G.HadamardProd(in[0], grad)
		if err != nil {
			return nil, err
		}
		g, err := G.Mul(d, G.NewConstant(k))
		return G.Nodes{g}, err
	}
	return nn.Apply(kern, x)
}

func TestCheckCatchesWrongBackward(t *testing.T) {
	for _, tc := range []struct {
		k     float64
		fails bool
	}{{2, false}, {2.01, true}, {0, true}} {
		rec := &recorder{TB: t}
		res := nntest.Check(rec, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
			x := G.NewTensor(c.Graph(), c.Dtype(), 2, G.WithShape(3, 4), G.WithName("x"), G.WithValue(nntest.RandInput(1, 1, 3, 4)))
			h, err := nn.Linear{In: 4, Out: 5}.Forward(c, x)
			if err != nil {
				return nil, nil, err
			}
			y, err := square(h, tc.k)
			if err != nil {
				return nil, nil, err
			}
			loss, err := nntest.WeightedSum(y, 2)
			return loss, G.Nodes{x}, err
		}, nntest.Options{MinChecked: 3})
		if got := len(rec.errors) > 0; got != tc.fails {
			t.Errorf("backward scale %g: check failed = %v (%v), want %v", tc.k, got, rec.errors, tc.fails)
		}
		if res.Checked != 3 || res.Entries == 0 {
			t.Errorf("backward scale %g: checked %d tensors, %d entries", tc.k, res.Checked, res.Entries)
		}
	}
}
