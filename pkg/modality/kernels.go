package modality

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// This file holds the small custom ops the preprocessors need (as
// nn.Kernels with hand-written backward passes): an axis swap, the gather
// that cuts a waveform into frames and its scatter-add adjoint, token
// pooling weights from ids, weighted pooling over the sequence axis, and a
// masked max over the sequence axis.
//
// Input order matters: nn.Apply (pkg/nn/op.go) currently types a kernel as
// a → b → … → out, and Gorgonia's inference names the result type variable
// b too, so a kernel's node takes the type of its second input. Every
// kernel here with two or more inputs therefore has, second, an input of
// the output's dtype and rank (tokenWeights takes a zero constant for it).

// constNode returns a constant tensor of the graph's dtype holding vals,
// added to the graph (Gorgonia constants otherwise have no graph until an
// op uses them, and broadcasting or reshaping them fails). Constants with
// equal names are merged, so name must determine vals.
func constNode(c *nn.Ctx, name string, shape []int, vals []float64) *G.Node {
	n := G.NewConstant(nn.NewDense(c.Dtype(), shape, vals), G.WithName(name), G.In(c.Graph()))
	return c.Graph().AddNode(n)
}

// intBacking returns the []int backing of an integer tensor.
func intBacking(d *tensor.Dense) ([]int, error) {
	if !d.IsNativelyAccessible() || d.RequiresIterator() {
		d = d.Materialize().(*tensor.Dense)
	}
	s, ok := d.Data().([]int)
	if !ok {
		return nil, fmt.Errorf("token ids have dtype %v, want int", d.Dtype())
	}
	return s, nil
}

// floatDtype returns the dtype of the first float input.
func floatDtype(in []*tensor.Dense) tensor.Dtype {
	for _, d := range in {
		if d.Dtype() != tensor.Int {
			return d.Dtype()
		}
	}
	return in[0].Dtype()
}

// swap12 returns x of shape [d0, d1, d2, rest...] with axes 1 and 2
// exchanged: [d0, d2, d1, rest...] (e.g. [B,frames,D] → [B,D,frames], or
// [B,frames,C,H,W] → [B,C,frames,H,W]). Its gradient is swap12 of the
// incoming gradient.
func swap12(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() < 3 {
		return nil, fmt.Errorf("swap of axes 1 and 2 needs rank ≥ 3, got %v", s)
	}
	d0, d1, d2 := s[0], s[1], s[2]
	inner := 1
	for _, d := range s[3:] {
		inner *= d
	}
	out := s.Clone()
	out[1], out[2] = d2, d1
	k := &nn.Kernel{Name: fmt.Sprintf("modality.Swap12{%d,%d,%d,%d}", d0, d1, d2, inner)}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return out.Clone(), nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return nn.FloatKernel(in[0].Dtype(), out, in, dst,
			func(in [][]float64, o []float64) { swap12Body(in[0], o, d0, d1, d2, inner) },
			func(in [][]float32, o []float32) { swap12Body(in[0], o, d0, d1, d2, inner) })
	}
	k.Backward = func(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		g, err := swap12(grad)
		return G.Nodes{g}, err
	}
	return nn.Apply(k, x)
}

func swap12Body[T nn.Float](x, o []T, d0, d1, d2, inner int) {
	for a := 0; a < d0; a++ {
		for i := 0; i < d1; i++ {
			for j := 0; j < d2; j++ {
				src := ((a*d1+i)*d2 + j) * inner
				dst := ((a*d2+j)*d1 + i) * inner
				copy(o[dst:dst+inner], x[src:src+inner])
			}
		}
	}
}

// gatherLast returns out[b, j] = x[b, idx[j]] for x [B, n] (0 where
// idx[j] < 0), shaped [B, outShape...] (the product of outShape is
// len(idx)). name identifies idx (it must determine idx completely: equal
// names are merged by Gorgonia). Its gradient is the scatter-add adjoint.
func gatherLast(x *G.Node, name string, idx []int, outShape []int) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() != 2 {
		return nil, fmt.Errorf("%s: want [batch, n], got %v", name, s)
	}
	b, n := s[0], s[1]
	out := append(tensor.Shape{b}, outShape...)
	k := &nn.Kernel{Name: fmt.Sprintf("modality.Gather{%s,n=%d}", name, n)}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return out.Clone(), nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return nn.FloatKernel(in[0].Dtype(), out, in, dst,
			func(in [][]float64, o []float64) { gatherBody(in[0], o, idx, b, n) },
			func(in [][]float32, o []float32) { gatherBody(in[0], o, idx, b, n) })
	}
	k.Backward = func(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		g, err := scatterLast(grad, name, idx, n)
		return G.Nodes{g}, err
	}
	return nn.Apply(k, x)
}

// scatterLast is the adjoint of gatherLast: out[b, i] = Σ_{j: idx[j]=i} g[b, j]
// for g [B, ...] with len(idx) elements per row; out is [B, n].
func scatterLast(g *G.Node, name string, idx []int, n int) (*G.Node, error) {
	s := g.Shape()
	b := s[0]
	inShape := s.Clone()
	k := &nn.Kernel{Name: fmt.Sprintf("modality.Scatter{%s,n=%d}", name, n)}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{b, n}, nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return nn.FloatKernel(in[0].Dtype(), tensor.Shape{b, n}, in, dst,
			func(in [][]float64, o []float64) { scatterBody(in[0], o, idx, b, n) },
			func(in [][]float32, o []float32) { scatterBody(in[0], o, idx, b, n) })
	}
	k.Backward = func(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		gg, err := gatherLast(grad, name, idx, inShape[1:])
		return G.Nodes{gg}, err
	}
	return nn.Apply(k, g)
}

func gatherBody[T nn.Float](x, o []T, idx []int, b, n int) {
	m := len(idx)
	for r := 0; r < b; r++ {
		xr, or := x[r*n:(r+1)*n], o[r*m:(r+1)*m]
		for j, i := range idx {
			if i >= 0 {
				or[j] = xr[i]
			}
		}
	}
}

func scatterBody[T nn.Float](g, o []T, idx []int, b, n int) {
	m := len(idx)
	for r := 0; r < b; r++ {
		gr, or := g[r*m:(r+1)*m], o[r*n:(r+1)*n]
		for j, i := range idx {
			if i >= 0 {
				or[i] += gr[j]
			}
		}
	}
}

// tokenWeights returns, for token ids [B, L] (Int), a float tensor [B, L]
// in ref's dtype: with mean true, w[b,l] = keep[b,l] / Σ_l keep[b,l] (the
// weights of a masked mean; a row that is all padding gets zeros), else
// the mask keep[b,l] itself, where keep = 1 unless ids[b,l] == padID
// (padID < 0 keeps every token). ref only supplies the dtype; the op has no
// gradient (ids are not differentiable).
func tokenWeights(ids, ref *G.Node, padID int, mean bool) (*G.Node, error) {
	s := ids.Shape()
	b, l := s[0], s[1]
	// The second input carries the output type (see the file comment).
	typeRef := G.NewConstant(nn.NewDense(ref.Dtype(), []int{b, l}, nil), G.WithName(fmt.Sprintf("modality.zeros{%d,%d,%v}", b, l, ref.Dtype())), G.In(ref.Graph()))
	typeRef = ref.Graph().AddNode(typeRef)
	k := &nn.Kernel{Name: fmt.Sprintf("modality.TokenWeights{pad=%d,mean=%v}", padID, mean), NoGrad: []bool{true, true}}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{b, l}, nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		id, err := intBacking(in[0])
		if err != nil {
			return nil, err
		}
		return nn.FloatKernel(floatDtype(in), tensor.Shape{b, l}, in, dst,
			func(_ [][]float64, o []float64) { tokenWeightsBody(id, o, b, l, padID, mean) },
			func(_ [][]float32, o []float32) { tokenWeightsBody(id, o, b, l, padID, mean) })
	}
	return nn.Apply(k, ids, typeRef)
}

func tokenWeightsBody[T nn.Float](ids []int, o []T, b, l, padID int, mean bool) {
	for r := 0; r < b; r++ {
		kept := 0
		for j := 0; j < l; j++ {
			if ids[r*l+j] != padID {
				o[r*l+j] = 1
				kept++
			}
		}
		if mean && kept > 0 {
			inv := 1 / T(kept)
			for j := 0; j < l; j++ {
				o[r*l+j] *= inv
			}
		}
	}
}

// weightedSumL returns out[b,d] = Σ_l w[b,l]·x[b,l,d] for x [B,L,D] and
// fixed weights w [B,L] (no gradient to w).
func weightedSumL(x, w *G.Node) (*G.Node, error) {
	s := x.Shape()
	b, l, d := s[0], s[1], s[2]
	k := &nn.Kernel{Name: "modality.WeightedSumL", NoGrad: []bool{false, true}}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{b, d}, nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return nn.FloatKernel(in[0].Dtype(), tensor.Shape{b, d}, in, dst,
			func(in [][]float64, o []float64) { weightedSumBody(in[0], in[1], o, b, l, d) },
			func(in [][]float32, o []float32) { weightedSumBody(in[0], in[1], o, b, l, d) })
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		g, err := spreadL(in[1], in[0], grad)
		return G.Nodes{g, nil}, err
	}
	return nn.Apply(k, x, w)
}

// spreadL is the adjoint of weightedSumL: out[b,l,d] = w[b,l]·g[b,d] for
// w [B,L] and g [B,D]; x [B,L,D] (the forward input) only types the output.
func spreadL(w, x, g *G.Node) (*G.Node, error) {
	out := x.Shape().Clone()
	b, l, d := out[0], out[1], out[2]
	k := &nn.Kernel{Name: "modality.SpreadL", NoGrad: []bool{true, true, false}}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return out.Clone(), nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return nn.FloatKernel(in[2].Dtype(), out, in, dst,
			func(in [][]float64, o []float64) { spreadBody(in[2], in[0], o, b, l, d) },
			func(in [][]float32, o []float32) { spreadBody(in[2], in[0], o, b, l, d) })
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		gg, err := weightedSumL(grad, in[0])
		return G.Nodes{nil, nil, gg}, err
	}
	return nn.Apply(k, w, x, g)
}

func weightedSumBody[T nn.Float](x, w, o []T, b, l, d int) {
	for r := 0; r < b; r++ {
		or := o[r*d : (r+1)*d]
		for j := 0; j < l; j++ {
			wj := w[r*l+j]
			if wj == 0 {
				continue
			}
			xr := x[(r*l+j)*d : (r*l+j+1)*d]
			for i, v := range xr {
				or[i] += wj * v
			}
		}
	}
}

func spreadBody[T nn.Float](g, w, o []T, b, l, d int) {
	for r := 0; r < b; r++ {
		gr := g[r*d : (r+1)*d]
		for j := 0; j < l; j++ {
			wj := w[r*l+j]
			or := o[(r*l+j)*d : (r*l+j+1)*d]
			for i, v := range gr {
				or[i] = wj * v
			}
		}
	}
}

// maskedMaxL returns out[b,d] = max over l with mask[b,l] ≠ 0 of x[b,l,d]
// for x [B,L,D] (0 for a row whose mask is all zero). The gradient goes to
// the first position attaining the maximum.
func maskedMaxL(x, mask *G.Node) (*G.Node, error) {
	s := x.Shape()
	b, l, d := s[0], s[1], s[2]
	k := &nn.Kernel{Name: "modality.MaskedMaxL", NoGrad: []bool{false, true}}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{b, d}, nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return nn.FloatKernel(in[0].Dtype(), tensor.Shape{b, d}, in, dst,
			func(in [][]float64, o []float64) { maskedMaxBody(in[0], in[1], nil, o, b, l, d) },
			func(in [][]float32, o []float32) { maskedMaxBody(in[0], in[1], nil, o, b, l, d) })
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		g, err := maskedMaxGrad(in[1], in[0], grad)
		return G.Nodes{g, nil}, err
	}
	return nn.Apply(k, x, mask)
}

// maskedMaxGrad routes g [B,D] to the arg-max positions of maskedMaxL(x,
// mask): the result is [B,L,D]. It is not itself differentiable.
func maskedMaxGrad(mask, x, g *G.Node) (*G.Node, error) {
	s := x.Shape()
	b, l, d := s[0], s[1], s[2]
	k := &nn.Kernel{Name: "modality.MaskedMaxLGrad"}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{b, l, d}, nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return nn.FloatKernel(in[0].Dtype(), tensor.Shape{b, l, d}, in, dst,
			func(in [][]float64, o []float64) { maskedMaxBody(in[1], in[0], in[2], o, b, l, d) },
			func(in [][]float32, o []float32) { maskedMaxBody(in[1], in[0], in[2], o, b, l, d) })
	}
	return nn.Apply(k, mask, x, g)
}

// maskedMaxBody computes the masked max into o [B,D] when g is nil, or
// scatters g [B,D] to the arg-max positions of o [B,L,D] otherwise.
func maskedMaxBody[T nn.Float](x, mask, g, o []T, b, l, d int) {
	for r := 0; r < b; r++ {
		for i := 0; i < d; i++ {
			best, arg := T(math.Inf(-1)), -1
			for j := 0; j < l; j++ {
				if mask[r*l+j] == 0 {
					continue
				}
				if v := x[(r*l+j)*d+i]; arg < 0 || v > best {
					best, arg = v, j
				}
			}
			if arg < 0 {
				continue
			}
			if g == nil {
				o[r*d+i] = best
			} else {
				o[(r*l+arg)*d+i] = g[r*d+i]
			}
		}
	}
}
