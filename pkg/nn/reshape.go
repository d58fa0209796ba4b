package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Reshape returns x with a new shape of the same size, as a copy.
//
// Use it instead of G.Reshape. Gorgonia's reshape returns a view that
// shares x's memory, and its register allocator does not know about the
// alias: an elementwise op that reads x last (a residual G.Add, say) may then
// compute in place in x's buffer while the backward pass still reads the
// view, which gives silently wrong gradients (found by gradient checks of a
// residual after a rank-3 Linear). A copying reshape has no alias to break.
func Reshape(x *G.Node, shape ...int) (*G.Node, error) {
	from := x.Shape().Clone()
	if prod(shape) != from.TotalSize() {
		return nil, fmt.Errorf("reshape: cannot reshape %v (%d elements) to %v", from, from.TotalSize(), shape)
	}
	to := append([]int(nil), shape...)
	k := &Kernel{Name: fmt.Sprintf("Reshape{%v->%v}", from, to)}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape(to).Clone(), nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		out := Output(dst, in[0].Dtype(), to)
		switch out.Dtype() {
		case tensor.Float64:
			copy(Slice[float64](out), Slice[float64](rowMajor(in[0])))
		case tensor.Float32:
			copy(Slice[float32](out), Slice[float32](rowMajor(in[0])))
		case tensor.Int:
			d := out.Data().([]int)
			copy(d, in[0].Data().([]int))
		default:
			return nil, fmt.Errorf("reshape: unsupported dtype %v", in[0].Dtype())
		}
		return out, nil
	}
	k.Backward = func(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		g, err := Reshape(grad, from...)
		return G.Nodes{g}, err
	}
	return Apply(k, x)
}
