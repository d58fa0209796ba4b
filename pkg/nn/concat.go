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
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		outShape, _ := k.Shape(shapesOf(in))
		out := Output(dst, in[0].Dtype(), outShape)
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
	return SliceAxisAs(x, axis, start, end, nil)
}

// SliceAxisAs is SliceAxis with the result given shape as (same number of
// elements, row-major; nil keeps the sliced shape): a slice and a copying
// reshape in one node.
func SliceAxisAs(x *G.Node, axis, start, end int, as []int) (*G.Node, error) {
	shape := x.Shape()
	if axis < 0 || axis >= shape.Dims() || start < 0 || end > shape[axis] || start >= end {
		return nil, fmt.Errorf("slice: [%d:%d] on axis %d invalid for shape %v", start, end, axis, shape)
	}
	sliced := shape.Clone()
	sliced[axis] = end - start
	out := sliced
	if as != nil {
		if prod(as) != sliced.TotalSize() {
			return nil, fmt.Errorf("slice: cannot give the %v slice shape %v", sliced, as)
		}
		out = tensor.Shape(as).Clone()
	}
	full := shape[axis]
	k := &Kernel{Name: fmt.Sprintf("SliceAxis{axis=%d,%d:%d,as=%v}", axis, start, end, out)}
	k.Shape = func(in []tensor.Shape) (tensor.Shape, error) { return out.Clone(), nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		o := Output(dst, in[0].Dtype(), out)
		outer, inner := splitAt(in[0].Shape(), axis)
		extractBlock(o, in[0], outer, inner*full, inner*(end-start), inner*start)
		return o, nil
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		g, err := padAxis(grad, axis, start, end-start, shape)
		return G.Nodes{g}, err
	}
	return Apply(k, x)
}

// padAxis places x, read as a slice of n along axis of a tensor of shape
// full (x may have any shape of that many elements), at [start:start+n] of
// a zero tensor of shape full; the adjoint of SliceAxisAs.
func padAxis(x *G.Node, axis, start, n int, full tensor.Shape) (*G.Node, error) {
	full = full.Clone()
	xShape := x.Shape()
	k := &Kernel{Name: fmt.Sprintf("PadAxis{axis=%d,at=%d,n=%d,full=%v}", axis, start, n, full)}
	k.Shape = func(in []tensor.Shape) (tensor.Shape, error) { return full.Clone(), nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		out := Output(dst, in[0].Dtype(), full)
		outer, inner := splitAt(full, axis)
		copyBlock(out, in[0], outer, inner*full[axis], inner*n, inner*start)
		return out, nil
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		g, err := SliceAxisAs(grad, axis, start, start+n, xShape)
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
	copyStrided(dst, src, outer, w, dstStride, off, w, 0)
}

// extractBlock is the inverse of copyBlock: dst gets w-wide blocks of src
// rows of stride srcStride starting at off.
func extractBlock(dst, src *tensor.Dense, outer, srcStride, w, off int) {
	copyStrided(dst, src, outer, w, w, 0, srcStride, off)
}

// copyStrided copies outer rows of w elements from src (row stride
// sStride, starting at sOff) to dst (row stride dStride, starting at dOff).
func copyStrided(dst, src *tensor.Dense, outer, w, dStride, dOff, sStride, sOff int) {
	switch dst.Dtype() {
	case tensor.Float64:
		copyRows(Slice[float64](dst), Slice[float64](src), outer, w, dStride, dOff, sStride, sOff)
	case tensor.Float32:
		copyRows(Slice[float32](dst), Slice[float32](src), outer, w, dStride, dOff, sStride, sOff)
	}
}

func copyRows[T Float](d, s []T, outer, w, dStride, dOff, sStride, sOff int) {
	for o := 0; o < outer; o++ {
		copy(d[o*dStride+dOff:o*dStride+dOff+w], s[o*sStride+sOff:o*sStride+sOff+w])
	}
}
