package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear is y = x·Wᵀ + b with W of shape [Out, In] (PyTorch layout, so
// checkpoints and golden vectors map one to one) and b of shape [Out].
// Default init is PyTorch's: kaiming_uniform(a=√5) for W, U(±1/√In) for b.
type Linear struct {
	In, Out int
	// NoBias drops b.
	NoBias bool
	// WeightInit overrides the weight initialiser (e.g. XavierUniform(1)
	// for CfC weights, as ncps does).
	WeightInit Init
}

// Forward applies the layer to x of shape [..., In] (rank ≥ 2; leading axes
// are batch-like) and returns [..., Out]. Parameters are "weight" and
// "bias" under c's scope. The layer is one fused kernel (GEMM + bias) with a
// hand-written backward; it never reshapes through Gorgonia views (see
// Reshape).
func (l Linear) Forward(c *Ctx, x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() < 2 || s[s.Dims()-1] != l.In {
		return nil, c.Errorf("linear expects input [batch, ..., %d], got %v", l.In, s)
	}
	winit := l.WeightInit
	if winit == nil {
		winit = KaimingUniform(math.Sqrt(5))
	}
	w, err := c.Param("weight", []int{l.Out, l.In}, winit)
	if err != nil {
		return nil, err
	}
	in := G.Nodes{x, w}
	if !l.NoBias {
		b, err := c.Param("bias", []int{l.Out}, BiasUniform(l.In))
		if err != nil {
			return nil, err
		}
		in = append(in, b)
	}
	y, err := Apply(linearKernel(s.Clone(), l.In, l.Out, !l.NoBias), in...)
	if err != nil {
		return nil, c.Errorf("linear: %v", err)
	}
	return y, nil
}

// MatMulT returns a·bᵀ for matrices a [M,K] and b [N,K] as one kernel.
func MatMulT(a, b *G.Node) (*G.Node, error) {
	as, bs := a.Shape(), b.Shape()
	if as.Dims() != 2 || bs.Dims() != 2 || as[1] != bs[1] {
		return nil, fmt.Errorf("matmulT: shapes %v and %v do not give a·bᵀ", as, bs)
	}
	return Apply(linearKernel(as.Clone(), as[1], bs[0], false), a, b)
}

// linearKernel computes y[m,:] = x[m,:]·Wᵀ (+ b) for x of shape xs whose last
// axis is in; inputs are (x, W[out,in]) or (x, W, b[out]).
func linearKernel(xs tensor.Shape, in, out int, bias bool) *Kernel {
	m := xs.TotalSize() / in
	ys := xs.Clone()
	ys[len(ys)-1] = out
	k := &Kernel{Name: fmt.Sprintf("Linear{%v,%d->%d,bias=%v}", xs, in, out, bias)}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return ys.Clone(), nil }
	k.Forward = func(t []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(ys, t, dst,
			func(a [][]float64, y []float64) { linearForward(a, y, m, in, out, bias) },
			func(a [][]float32, y []float32) { linearForward(a, y, m, in, out, bias) })
	}
	k.Backward = func(nodes G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		gs := make(G.Nodes, len(nodes))
		var err error
		// dx = g·W
		dx := &Kernel{Name: fmt.Sprintf("LinearDX{%v,%d->%d}", xs, in, out)}
		dx.Shape = func([]tensor.Shape) (tensor.Shape, error) { return xs.Clone(), nil }
		dx.Forward = func(t []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return floatKernel(xs, t, dst,
				func(a [][]float64, y []float64) { blasGemm(false, false, m, in, out, 1, a[0], out, a[1], in, 0, y, in) },
				func(a [][]float32, y []float32) { blasGemm(false, false, m, in, out, 1, a[0], out, a[1], in, 0, y, in) })
		}
		if gs[0], err = Apply(dx, grad, nodes[1]); err != nil {
			return nil, err
		}
		// dW = gᵀ·x
		dw := &Kernel{Name: fmt.Sprintf("LinearDW{%v,%d->%d}", xs, in, out)}
		ws := tensor.Shape{out, in}
		dw.Shape = func([]tensor.Shape) (tensor.Shape, error) { return ws.Clone(), nil }
		dw.Forward = func(t []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return floatKernel(ws, t, dst,
				func(a [][]float64, y []float64) { blasGemm(true, false, out, in, m, 1, a[0], out, a[1], in, 0, y, in) },
				func(a [][]float32, y []float32) { blasGemm(true, false, out, in, m, 1, a[0], out, a[1], in, 0, y, in) })
		}
		if gs[1], err = Apply(dw, grad, nodes[0]); err != nil {
			return nil, err
		}
		if bias {
			db := &Kernel{Name: fmt.Sprintf("LinearDB{%v,%d}", ys, out)}
			db.Shape = func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{out}, nil }
			db.Forward = func(t []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
				return floatKernel(tensor.Shape{out}, t, dst,
					func(a [][]float64, y []float64) { sumRows(a[0], y, m, out) },
					func(a [][]float32, y []float32) { sumRows(a[0], y, m, out) })
			}
			if gs[2], err = Apply(db, grad); err != nil {
				return nil, err
			}
		}
		return gs, nil
	}
	return k
}

func linearForward[T Float](a [][]T, y []T, m, in, out int, bias bool) {
	if bias {
		b := a[2]
		for r := 0; r < m; r++ {
			copy(y[r*out:(r+1)*out], b)
		}
		blasGemm(false, true, m, out, in, 1, a[0], in, a[1], in, 1, y, out)
		return
	}
	blasGemm(false, true, m, out, in, 1, a[0], in, a[1], in, 0, y, out)
}

// sumRows sets y[j] = Σ_r g[r,j] for g of shape [m, n].
func sumRows[T Float](g, y []T, m, n int) {
	acc := make([]float64, n)
	for r := 0; r < m; r++ {
		for j, v := range g[r*n : (r+1)*n] {
			acc[j] += float64(v)
		}
	}
	for j := range y {
		y[j] = T(acc[j])
	}
}
