package fusion

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// This file holds the small custom ops the strategies share: a constant
// scale and the row-masking ops behind modality dropout. They are nn.Kernels
// with hand-written backward passes (DESIGN.md fact 5) so that no Gorgonia
// broadcasting quirk (fact 6) is on the gradient path.

// floats returns the row-major backing of a float tensor as []T, copying a
// view first so that kernels never read a strided tensor as contiguous.
func floats[T nn.Float](t *tensor.Dense) []T {
	if t.RequiresIterator() || !t.IsNativelyAccessible() {
		t = t.Materialize().(*tensor.Dense)
	}
	return t.Data().([]T)
}

// newLike returns a zero tensor of t's dtype with the given shape: dst when
// it fits (see nn.Output).
func newLike(dst, t *tensor.Dense, shape ...int) *tensor.Dense {
	return nn.Output(dst, t.Dtype(), shape)
}

// byDtype runs the float32 or float64 instantiation of a kernel body on the
// dtype of in[0].
func byDtype(in []*tensor.Dense, dst *tensor.Dense, f32, f64 func([]*tensor.Dense, *tensor.Dense) (*tensor.Dense, error)) (*tensor.Dense, error) {
	switch in[0].Dtype() {
	case tensor.Float32:
		return f32(in, dst)
	case tensor.Float64:
		return f64(in, dst)
	}
	return nil, fmt.Errorf("unsupported dtype %v (want float32 or float64)", in[0].Dtype())
}

func sameShape(in []tensor.Shape) (tensor.Shape, error) { return in[0].Clone(), nil }

// scale returns s·x for a constant s, for any shape of x.
func scale(x *G.Node, s float64) (*G.Node, error) {
	k := &nn.Kernel{Name: fmt.Sprintf("fusion.Scale{%g}", s), Shape: sameShape}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return byDtype(in, dst, scaleFwd[float32](s), scaleFwd[float64](s))
	}
	k.Backward = func(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		g, err := scale(grad, s)
		return G.Nodes{g}, err
	}
	return nn.Apply(k, x)
}

func scaleFwd[T nn.Float](s float64) func([]*tensor.Dense, *tensor.Dense) (*tensor.Dense, error) {
	return func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		x := floats[T](in[0])
		out := newLike(dst, in[0], in[0].Shape()...)
		o := nn.Slice[T](out)
		for i, v := range x {
			o[i] = T(s) * v
		}
		return out, nil
	}
}

// substitute returns, for feature f [B,D], missing embedding e [D] and the
// keep mask [B,M] (0/1), the rows out[b] = mask[b,col]·f[b] +
// (1−mask[b,col])·e. Gradients: f gets g·mask, e gets Σ_b (1−mask[b,col])·g[b];
// the mask gets none.
func substitute(f, e, mask *G.Node, col int) (*G.Node, error) {
	k := &nn.Kernel{
		Name:   fmt.Sprintf("fusion.Substitute{col=%d}", col),
		NoGrad: []bool{false, false, true},
	}
	k.Shape = func(in []tensor.Shape) (tensor.Shape, error) {
		f, e, m := in[0], in[1], in[2]
		if f.Dims() != 2 || e.Dims() != 1 || e[0] != f[1] || m.Dims() != 2 || m[0] != f[0] || col >= m[1] {
			return nil, fmt.Errorf("want feature [B,D], embedding [D], mask [B,>%d]; got %v, %v, %v", col, f, e, m)
		}
		return f.Clone(), nil
	}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return byDtype(in, dst, substituteFwd[float32](col), substituteFwd[float64](col))
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		gf, err := maskRows(grad, in[2], col)
		if err != nil {
			return nil, err
		}
		ge, err := missingGrad(grad, in[2], col)
		if err != nil {
			return nil, err
		}
		return G.Nodes{gf, ge, nil}, nil
	}
	return nn.Apply(k, f, e, mask)
}

func substituteFwd[T nn.Float](col int) func([]*tensor.Dense, *tensor.Dense) (*tensor.Dense, error) {
	return func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		s := in[0].Shape()
		b, d := s[0], s[1]
		f, e, m := floats[T](in[0]), floats[T](in[1]), floats[T](in[2])
		cols := in[2].Shape()[1]
		out := newLike(dst, in[0], b, d)
		o := nn.Slice[T](out)
		for i := 0; i < b; i++ {
			keep := m[i*cols+col]
			for j := 0; j < d; j++ {
				o[i*d+j] = keep*f[i*d+j] + (1-keep)*e[j]
			}
		}
		return out, nil
	}
}

// maskRows returns g[b]·mask[b,col] for g [B,D] (the feature gradient of
// substitute). It is only used on gradient paths, so it has no backward.
func maskRows(g, mask *G.Node, col int) (*G.Node, error) {
	k := &nn.Kernel{Name: fmt.Sprintf("fusion.MaskRows{col=%d}", col), Shape: sameShape}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return byDtype(in, dst, maskRowsFwd[float32](col), maskRowsFwd[float64](col))
	}
	return nn.Apply(k, g, mask)
}

func maskRowsFwd[T nn.Float](col int) func([]*tensor.Dense, *tensor.Dense) (*tensor.Dense, error) {
	return func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		s := in[0].Shape()
		b, d := s[0], s[1]
		g, m := floats[T](in[0]), floats[T](in[1])
		cols := in[1].Shape()[1]
		out := newLike(dst, in[0], b, d)
		o := nn.Slice[T](out)
		for i := 0; i < b; i++ {
			keep := m[i*cols+col]
			for j := 0; j < d; j++ {
				o[i*d+j] = keep * g[i*d+j]
			}
		}
		return out, nil
	}
}

// missingGrad returns Σ_b (1−mask[b,col])·g[b] for g [B,D] (the gradient of
// the missing embedding in substitute).
func missingGrad(g, mask *G.Node, col int) (*G.Node, error) {
	k := &nn.Kernel{Name: fmt.Sprintf("fusion.MissingGrad{col=%d}", col)}
	k.Shape = func(in []tensor.Shape) (tensor.Shape, error) { return tensor.Shape{in[0][1]}, nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return byDtype(in, dst, missingGradFwd[float32](col), missingGradFwd[float64](col))
	}
	return nn.Apply(k, g, mask)
}

func missingGradFwd[T nn.Float](col int) func([]*tensor.Dense, *tensor.Dense) (*tensor.Dense, error) {
	return func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		s := in[0].Shape()
		b, d := s[0], s[1]
		g, m := floats[T](in[0]), floats[T](in[1])
		cols := in[1].Shape()[1]
		out := newLike(dst, in[0], d)
		o := nn.Slice[T](out)
		for i := 0; i < b; i++ {
			drop := 1 - m[i*cols+col]
			if drop == 0 {
				continue
			}
			for j := 0; j < d; j++ {
				o[j] += drop * g[i*d+j]
			}
		}
		return out, nil
	}
}
