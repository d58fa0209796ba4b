package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Concat joins nodes along axis. It replaces Gorgonia's Concat, whose
// gradients are silently wrong when a node feeds it twice or feeds two
// concats (DESIGN.md fact 2). The backward of each input is a slice of the
// incoming gradient, computed by a separate SliceAxis kernel.
func Concat(axis int, xs ...*G.Node) (*G.Node, error) {
	if len(xs) == 0 {
		return nil, fmt.Errorf("concat: no inputs")
	}
	if len(xs) == 1 {
		return xs[0], nil
	}
	rank := xs[0].Shape().Dims()
	if axis < 0 || axis >= rank {
		return nil, fmt.Errorf("concat: axis %d out of range for rank %d", axis, rank)
	}
	sizes := make([]int, len(xs))
	k := &Kernel{Name: fmt.Sprintf("Concat{axis=%d,n=%d}", axis, len(xs))}
	k.Shape = func(in []tensor.Shape) (tensor.Shape, error) {
		out := in[0].Clone()
		out[axis] = 0
		for i, s := range in {
			if s.Dims() != rank {
				return nil, fmt.Errorf("input %d has shape %v, input 0 has %v", i, s, in[0])
			}
			for d := 0; d < rank; d++ {
				if d != axis && s[d] != in[0][d] {
					return nil, fmt.Errorf("input %d has shape %v, incompatible with %v outside axis %d", i, s, in[0], axis)
				}
			}
			sizes[i] = s[axis]
			out[axis] += s[axis]
		}
		return out, nil
	}
	k.Forward = func(in []*tensor.Dense) (*tensor.Dense, error) {
		outShape, _ := k.Shape(shapesOf(in))
		out := tensor.New(tensor.Of(in[0].Dtype()), tensor.WithShape(outShape...))
		outer, inner := splitAt(outShape, axis)
		off := 0
		for i, t := range in {
			copyBlock(out, t, outer, inner*outShape[axis], inner*sizes[i], inner*off)
			off += sizes[i]
		}
		return out, nil
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		gs := make(G.Nodes, len(in))
		off := 0
		for i := range in {
			g, err := SliceAxis(grad, axis, off, off+sizes[i])
			if err != nil {
				return nil, err
			}
			gs[i] = g
			off += sizes[i]
		}
		return gs, nil
	}
	return Apply(k, xs...)
}

// SliceAxis returns x[..., start:end, ...] along axis as a new tensor. Its
// gradient scatters into zeros (a differentiable pad).
func SliceAxis(x *G.Node, axis, start, end int) (*G.Node, error) {
	shape := x.Shape()
	if axis < 0 || axis >= shape.Dims() || start < 0 || end > shape[axis] || start >= end {
		return nil, fmt.Errorf("slice: [%d:%d] on axis %d invalid for shape %v", start, end, axis, shape)
	}
	full := shape[axis]
	k := &Kernel{Name: fmt.Sprintf("SliceAxis{axis=%d,%d:%d}", axis, start, end)}
	k.Shape = func(in []tensor.Shape) (tensor.Shape, error) {
		s := in[0].Clone()
		s[axis] = end - start
		return s, nil
	}
	k.Forward = func(in []*tensor.Dense) (*tensor.Dense, error) {
		s := in[0].Shape().Clone()
		s[axis] = end - start
		out := tensor.New(tensor.Of(in[0].Dtype()), tensor.WithShape(s...))
		outer, inner := splitAt(in[0].Shape(), axis)
		extractBlock(out, in[0], outer, inner*full, inner*(end-start), inner*start)
		return out, nil
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		g, err := padAxis(grad, axis, start, full)
		return G.Nodes{g}, err
	}
	return Apply(k, x)
}

// padAxis places x at [start:start+n] of a zero tensor whose axis has size
// full; the adjoint of SliceAxis.
func padAxis(x *G.Node, axis, start, full int) (*G.Node, error) {
	n := x.Shape()[axis]
	k := &Kernel{Name: fmt.Sprintf("PadAxis{axis=%d,at=%d,full=%d}", axis, start, full)}
	k.Shape = func(in []tensor.Shape) (tensor.Shape, error) {
		s := in[0].Clone()
		s[axis] = full
		return s, nil
	}
	k.Forward = func(in []*tensor.Dense) (*tensor.Dense, error) {
		s := in[0].Shape().Clone()
		s[axis] = full
		out := tensor.New(tensor.Of(in[0].Dtype()), tensor.WithShape(s...))
		outer, inner := splitAt(s, axis)
		copyBlock(out, in[0], outer, inner*full, inner*n, inner*start)
		return out, nil
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		g, err := SliceAxis(grad, axis, start, start+n)
		return G.Nodes{g}, err
	}
	return Apply(k, x)
}

func shapesOf(in []*tensor.Dense) []tensor.Shape {
	s := make([]tensor.Shape, len(in))
	for i, t := range in {
		s[i] = t.Shape()
	}
	return s
}

// splitAt returns the product of dims before axis and after axis.
func splitAt(shape tensor.Shape, axis int) (outer, inner int) {
	outer, inner = 1, 1
	for i, d := range shape {
		if i < axis {
			outer *= d
		} else if i > axis {
			inner *= d
		}
	}
	return outer, inner
}

// copyBlock copies src (outer blocks of width w) into dst rows of stride
// dstStride at offset off.
func copyBlock(dst, src *tensor.Dense, outer, dstStride, w, off int) {
	switch d := dst.Data().(type) {
	case []float64:
		s := src.Data().([]float64)
		for o := 0; o < outer; o++ {
			copy(d[o*dstStride+off:o*dstStride+off+w], s[o*w:(o+1)*w])
		}
	case []float32:
		s := src.Data().([]float32)
		for o := 0; o < outer; o++ {
			copy(d[o*dstStride+off:o*dstStride+off+w], s[o*w:(o+1)*w])
		}
	}
}

// extractBlock is the inverse of copyBlock: dst gets w-wide blocks of src
// rows of stride srcStride starting at off.
func extractBlock(dst, src *tensor.Dense, outer, srcStride, w, off int) {
	switch d := dst.Data().(type) {
	case []float64:
		s := src.Data().([]float64)
		for o := 0; o < outer; o++ {
			copy(d[o*w:(o+1)*w], s[o*srcStride+off:o*srcStride+off+w])
		}
	case []float32:
		s := src.Data().([]float32)
		for o := 0; o < outer; o++ {
			copy(d[o*w:(o+1)*w], s[o*srcStride+off:o*srcStride+off+w])
		}
	}
}
