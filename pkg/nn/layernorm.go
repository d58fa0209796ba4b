package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LayerNorm normalises the last axis of its input (Ba et al. 2016), as
// torch.nn.LayerNorm(Features, eps=Eps):
//
//	y = (x − mean(x)) / √(var(x) + Eps) · weight + bias
//
// with the biased variance over the last axis. It behaves the same in
// training and evaluation. Parameters under the scope: "weight" [Features]
// (init ones) and "bias" [Features] (init zeros).
type LayerNorm struct {
	// Features is the size of the normalised (last) axis; must be positive.
	Features int
	// Eps is added to the variance; 0 means 1e-5 (PyTorch's default).
	// Negative values are errors.
	Eps float64
}

// Forward normalises x of shape [..., Features] (any rank ≥ 1) and returns
// the same shape. The whole layer is one fused kernel; its backward is
// three kernels (dx, dweight, dbias) that recompute the row statistics.
func (l LayerNorm) Forward(c *Ctx, x *G.Node) (*G.Node, error) {
	if l.Features <= 0 {
		return nil, c.Errorf("layer norm: Features must be positive, got %d", l.Features)
	}
	if l.Eps < 0 || math.IsNaN(l.Eps) {
		return nil, c.Errorf("layer norm: Eps must be ≥ 0, got %g", l.Eps)
	}
	if err := checkFloatNode("layer norm", x); err != nil {
		return nil, c.Errorf("%v", err)
	}
	if s := x.Shape(); s[s.Dims()-1] != l.Features {
		return nil, c.Errorf("layer norm expects input [..., %d], got %v", l.Features, s)
	}
	if x.Dtype() != c.Dtype() {
		return nil, c.Errorf("layer norm: input dtype %v, parameters %v", x.Dtype(), c.Dtype())
	}
	eps := l.Eps
	if eps == 0 {
		eps = 1e-5
	}
	w, err := c.Param("weight", []int{l.Features}, Ones())
	if err != nil {
		return nil, err
	}
	b, err := c.Param("bias", []int{l.Features}, Zeros())
	if err != nil {
		return nil, err
	}
	f := l.Features
	name := fmt.Sprintf("LayerNorm{F=%d,eps=%v}", f, eps)
	k := &Kernel{Name: name, Shape: sameShapeAsFirst}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(in[0].Shape().Clone(), in, dst,
			func(in [][]float64, out []float64) { lnForward(in[0], in[1], in[2], out, f, eps) },
			func(in [][]float32, out []float32) { lnForward(in[0], in[1], in[2], out, f, eps) })
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		dx := &Kernel{Name: name + "/dx", Shape: sameShapeAsFirst}
		dx.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return floatKernel(in[0].Shape().Clone(), in, dst,
				func(in [][]float64, out []float64) { lnGradX(in[0], in[1], in[2], out, f, eps) },
				func(in [][]float32, out []float32) { lnGradX(in[0], in[1], in[2], out, f, eps) })
		}
		perFeature := func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{f}, nil }
		dw := &Kernel{Name: name + "/dweight", Shape: perFeature}
		dw.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return floatKernel(tensor.Shape{f}, in, dst,
				func(in [][]float64, out []float64) { lnGradW(in[0], in[1], out, f, eps) },
				func(in [][]float32, out []float32) { lnGradW(in[0], in[1], out, f, eps) })
		}
		db := &Kernel{Name: fmt.Sprintf("SumLeading{F=%d}", f), Shape: perFeature}
		db.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return floatKernel(tensor.Shape{f}, in, dst,
				func(in [][]float64, out []float64) { sumRowsInto(in[0], out) },
				func(in [][]float32, out []float32) { sumRowsInto(in[0], out) })
		}
		gx, err := Apply(dx, in[0], in[1], grad)
		if err != nil {
			return nil, err
		}
		gw, err := Apply(dw, in[0], grad)
		if err != nil {
			return nil, err
		}
		gb, err := Apply(db, grad)
		return G.Nodes{gx, gw, gb}, err
	}
	y, err := Apply(k, x, w, b)
	if err != nil {
		return nil, c.Errorf("layer norm: %v", err)
	}
	return y, nil
}

// lnStats returns the mean and 1/√(var+eps) of row, in float64.
func lnStats[T Float](row []T, eps float64) (mean, rstd float64) {
	for _, v := range row {
		mean += float64(v)
	}
	mean /= float64(len(row))
	var v2 float64
	for _, v := range row {
		d := float64(v) - mean
		v2 += d * d
	}
	return mean, 1 / math.Sqrt(v2/float64(len(row))+eps)
}

func lnForward[T Float](x, w, b, y []T, f int, eps float64) {
	for r := 0; r < len(x); r += f {
		mean, rstd := lnStats(x[r:r+f], eps)
		for j := 0; j < f; j++ {
			y[r+j] = T((float64(x[r+j])-mean)*rstd)*w[j] + b[j]
		}
	}
}

// lnGradX: with x̂ = (x−μ)·rstd and h = g⊙w,
// dx = rstd·(h − mean(h) − x̂·mean(h⊙x̂)) per row.
func lnGradX[T Float](x, w, g, dx []T, f int, eps float64) {
	for r := 0; r < len(x); r += f {
		mean, rstd := lnStats(x[r:r+f], eps)
		var m1, m2 float64
		for j := 0; j < f; j++ {
			h := float64(g[r+j]) * float64(w[j])
			m1 += h
			m2 += h * (float64(x[r+j]) - mean) * rstd
		}
		m1 /= float64(f)
		m2 /= float64(f)
		for j := 0; j < f; j++ {
			xh := (float64(x[r+j]) - mean) * rstd
			h := float64(g[r+j]) * float64(w[j])
			dx[r+j] = T(rstd * (h - m1 - xh*m2))
		}
	}
}

// lnGradW: dweight = Σ_rows g⊙x̂.
func lnGradW[T Float](x, g, dw []T, f int, eps float64) {
	acc := make([]float64, f)
	for r := 0; r < len(x); r += f {
		mean, rstd := lnStats(x[r:r+f], eps)
		for j := 0; j < f; j++ {
			acc[j] += float64(g[r+j]) * (float64(x[r+j]) - mean) * rstd
		}
	}
	for j, v := range acc {
		dw[j] = T(v)
	}
}

// sumRowsInto sets out (length f) to the sum of the len(x)/f rows of x.
func sumRowsInto[T Float](x, out []T) {
	f := len(out)
	acc := make([]float64, f)
	for r := 0; r < len(x); r += f {
		for j := 0; j < f; j++ {
			acc[j] += float64(x[r+j])
		}
	}
	for j, v := range acc {
		out[j] = T(v)
	}
}
