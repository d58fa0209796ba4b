package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Add returns a + b for equal shapes as a new tensor (residual connections).
//
// Use it instead of G.Add where an operand may be read again: Gorgonia may
// run its elementwise ops in place over an operand's buffer, which breaks
// any view that shares that buffer (see Reshape). The backward hands grad to
// a and a copy to b, so the two gradient paths never share a buffer either.
func Add(a, b *G.Node) (*G.Node, error) {
	shape := a.Shape().Clone()
	if !shape.Eq(b.Shape()) {
		return nil, fmt.Errorf("add: shapes %v and %v differ", a.Shape(), b.Shape())
	}
	k := &Kernel{Name: "Add"}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return shape.Clone(), nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(shape, in, dst,
			func(x [][]float64, y []float64) { addInto(x[0], x[1], y) },
			func(x [][]float32, y []float32) { addInto(x[0], x[1], y) })
	}
	k.Backward = func(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		gb, err := Reshape(grad, shape...)
		return G.Nodes{grad, gb}, err
	}
	return Apply(k, a, b)
}

func addInto[T Float](a, b, y []T) {
	for i := range y {
		y[i] = a[i] + b[i]
	}
}
