package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BatchNorm is batch normalisation over the channel axis 1 (Ioffe & Szegedy
// 2015; PyTorch nn.BatchNorm1d/2d/3d):
//
//	y[n,c,s] = γ[c] · (x[n,c,s] − μ[c]) / √(σ²[c] + Eps) + β[c]
//
// for x of shape [B, C], [B, C, L], [B, C, H, W] or [B, C, D, H, W] with
// C = Features; the output has x's shape.
//
// Training (c.Train()): μ and σ² are the batch statistics of each channel
// over its N = B·(spatial size) values, σ² biased (÷N). The forward pass also
// updates the running buffers in place:
// running_mean ← (1−Momentum)·running_mean + Momentum·μ and
// running_var ← (1−Momentum)·running_var + Momentum·σ²·N/(N−1) (unbiased),
// as PyTorch. Training needs N > 1.
//
// Evaluation: μ and σ² are running_mean and running_var; nothing is updated.
//
// Parameters under c's scope: "weight" γ [C] (ones) and "bias" β [C]
// (zeros); buffers "running_mean" [C] (zeros) and "running_var" [C] (ones).
// The layer is one fused kernel with a hand-written backward (the standard
// batch-norm gradient through the batch statistics in training).
type BatchNorm struct {
	// Features is the channel count C (> 0).
	Features int
	// Momentum is the running-statistics update rate in (0, 1]; 0 means
	// 0.1 (PyTorch's default).
	Momentum float64
	// Eps is added to the variance; 0 means 1e-5 (PyTorch's default).
	Eps float64
}

// Forward normalises x [B, Features, spatial...] (rank 2 to 5).
func (l BatchNorm) Forward(c *Ctx, x *G.Node) (*G.Node, error) {
	if l.Momentum == 0 {
		l.Momentum = 0.1
	}
	if l.Eps == 0 {
		l.Eps = 1e-5
	}
	s := x.Shape()
	switch {
	case l.Features <= 0:
		return nil, c.Errorf("batchnorm: features must be positive, got %d", l.Features)
	case l.Momentum < 0 || l.Momentum > 1:
		return nil, c.Errorf("batchnorm: momentum must be in (0, 1], got %g", l.Momentum)
	case l.Eps < 0:
		return nil, c.Errorf("batchnorm: eps must be positive, got %g", l.Eps)
	case s.Dims() < 2 || s.Dims() > 5 || s[1] != l.Features:
		return nil, c.Errorf("batchnorm expects [B,%d] or [B,%d,spatial...] (rank 2 to 5), got %s", l.Features, l.Features, shapeString(s))
	case x.Dtype() != c.Dtype():
		return nil, c.Errorf("batchnorm: input has dtype %v, the model computes in %v", x.Dtype(), c.Dtype())
	}
	sp := &bnSpec{shape: s.Clone(), b: s[0], c: s[1], s: prod(s[2:]), train: c.Train(), eps: l.Eps, momentum: l.Momentum}
	if sp.train && sp.b*sp.s < 2 {
		return nil, c.Errorf("batchnorm: training needs more than one value per channel, got input %s", shapeString(s))
	}
	f := []int{l.Features}
	w, err := c.Param("weight", f, Ones())
	if err != nil {
		return nil, err
	}
	b, err := c.Param("bias", f, Zeros())
	if err != nil {
		return nil, err
	}
	rm, err := c.Buffer("running_mean", f, Zeros())
	if err != nil {
		return nil, err
	}
	rv, err := c.Buffer("running_var", f, Ones())
	if err != nil {
		return nil, err
	}
	y, err := Apply(bnKernel(sp), w, x, b, rm, rv)
	if err != nil {
		return nil, c.Errorf("batchnorm: %v", err)
	}
	return y, nil
}

// bnSpec is the geometry and mode of one batch-norm node: x viewed as
// [b, c, s].
type bnSpec struct {
	shape         tensor.Shape
	b, c, s       int
	train         bool
	eps, momentum float64
}

func (sp *bnSpec) String() string {
	return fmt.Sprintf("train=%v,eps=%g,momentum=%g", sp.train, sp.eps, sp.momentum)
}

// bnKernel is the fused batch norm over (γ, x, β, running_mean,
// running_var). Gradients flow to x, γ and β through three
// non-differentiable kernels; the buffers get none. Input 1 is x because
// Gorgonia infers a kernel node's type by unifying with the type of input 1
// (see op.go): the input in that slot must have the output's rank.
func bnKernel(sp *bnSpec) *Kernel {
	ch := tensor.Shape{sp.c}
	k := &Kernel{Name: fmt.Sprintf("BatchNorm{%v}", sp), NoGrad: []bool{false, false, false, true, true}}
	k.Shape = func(s []tensor.Shape) (tensor.Shape, error) {
		return sp.shape.Clone(), checkShapes(s, ch, sp.shape, ch, ch, ch)
	}
	k.Forward = func(t []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(sp.shape, t, dst,
			func(a [][]float64, y []float64) { bnForward(sp, a[1], a[0], a[2], a[3], a[4], y) },
			func(a [][]float32, y []float32) { bnForward(sp, a[1], a[0], a[2], a[3], a[4], y) })
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		gamma, x, rm, rv := in[0], in[1], in[3], in[4]
		dx, err := Apply(bnInputGradKernel(sp), x, grad, gamma, rm, rv)
		if err != nil {
			return nil, err
		}
		dg, err := Apply(bnWeightGradKernel(sp), x, rm, rv, grad)
		if err != nil {
			return nil, err
		}
		db, err := channelSum(grad)
		if err != nil {
			return nil, err
		}
		return G.Nodes{dg, dx, db, nil, nil}, nil
	}
	return k
}

// bnInputGradKernel computes dL/dx from (x, dy, γ, running_mean,
// running_var).
func bnInputGradKernel(sp *bnSpec) *Kernel {
	ch := tensor.Shape{sp.c}
	k := &Kernel{Name: fmt.Sprintf("BatchNormInputGrad{%v}", sp)}
	k.Shape = func(s []tensor.Shape) (tensor.Shape, error) {
		return sp.shape.Clone(), checkShapes(s, sp.shape, sp.shape, ch, ch, ch)
	}
	k.Forward = func(t []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(sp.shape, t, dst,
			func(a [][]float64, dx []float64) { bnInputGrad(sp, a[0], a[1], a[2], a[3], a[4], dx) },
			func(a [][]float32, dx []float32) { bnInputGrad(sp, a[0], a[1], a[2], a[3], a[4], dx) })
	}
	return k
}

// bnWeightGradKernel computes dL/dγ from (x, running_mean, running_var, dy).
func bnWeightGradKernel(sp *bnSpec) *Kernel {
	ch := tensor.Shape{sp.c}
	k := &Kernel{Name: fmt.Sprintf("BatchNormWeightGrad{%v}", sp)}
	k.Shape = func(s []tensor.Shape) (tensor.Shape, error) {
		return ch.Clone(), checkShapes(s, sp.shape, ch, ch, sp.shape)
	}
	k.Forward = func(t []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(ch, t, dst,
			func(a [][]float64, dg []float64) { bnWeightGrad(sp, a[0], a[1], a[2], a[3], dg) },
			func(a [][]float32, dg []float32) { bnWeightGrad(sp, a[0], a[1], a[2], a[3], dg) })
	}
	return k
}

// bnStats returns per-channel mean and 1/√(var+eps): batch statistics
// (biased variance, two passes in float64) in training, the running
// buffers in evaluation. It also returns the biased batch variance (nil in
// evaluation) for the running-statistics update.
func bnStats[T Float](sp *bnSpec, x, rm, rv []T) (mean, istd, batchVar []float64) {
	mean, istd = make([]float64, sp.c), make([]float64, sp.c)
	if !sp.train {
		for c := range mean {
			mean[c] = float64(rm[c])
			istd[c] = 1 / math.Sqrt(float64(rv[c])+sp.eps)
		}
		return mean, istd, nil
	}
	batchVar = make([]float64, sp.c)
	n := float64(sp.b * sp.s)
	for c := 0; c < sp.c; c++ {
		var s float64
		for b := 0; b < sp.b; b++ {
			for _, v := range x[(b*sp.c+c)*sp.s : (b*sp.c+c+1)*sp.s] {
				s += float64(v)
			}
		}
		m := s / n
		var q float64
		for b := 0; b < sp.b; b++ {
			for _, v := range x[(b*sp.c+c)*sp.s : (b*sp.c+c+1)*sp.s] {
				d := float64(v) - m
				q += d * d
			}
		}
		mean[c], batchVar[c] = m, q/n
		istd[c] = 1 / math.Sqrt(q/n+sp.eps)
	}
	return mean, istd, batchVar
}

// bnForward computes y and, in training, updates the running buffers rm
// and rv in place.
func bnForward[T Float](sp *bnSpec, x, gamma, beta, rm, rv, y []T) {
	mean, istd, batchVar := bnStats(sp, x, rm, rv)
	if sp.train {
		m, n := sp.momentum, float64(sp.b*sp.s)
		for c := range rm {
			rm[c] = T((1-m)*float64(rm[c]) + m*mean[c])
			rv[c] = T((1-m)*float64(rv[c]) + m*batchVar[c]*n/(n-1))
		}
	}
	for c := 0; c < sp.c; c++ {
		scale := float64(gamma[c]) * istd[c]
		shift := float64(beta[c]) - mean[c]*scale
		for b := 0; b < sp.b; b++ {
			off := (b*sp.c + c) * sp.s
			for i, v := range x[off : off+sp.s] {
				y[off+i] = T(float64(v)*scale + shift)
			}
		}
	}
}

// bnInputGrad computes dx. Training: dx = γ·istd·(dy − mean(dy) −
// x̂·mean(dy·x̂)) per channel, with x̂ = (x−μ)·istd and the means over the
// channel's N values; evaluation: dx = γ·istd·dy.
func bnInputGrad[T Float](sp *bnSpec, x, dy, gamma, rm, rv, dx []T) {
	mean, istd, _ := bnStats(sp, x, rm, rv)
	n := float64(sp.b * sp.s)
	for c := 0; c < sp.c; c++ {
		var sumDy, sumDyXh float64
		if sp.train {
			for b := 0; b < sp.b; b++ {
				off := (b*sp.c + c) * sp.s
				for i, v := range x[off : off+sp.s] {
					g := float64(dy[off+i])
					sumDy += g
					sumDyXh += g * (float64(v) - mean[c]) * istd[c]
				}
			}
		}
		k := float64(gamma[c]) * istd[c]
		mDy, mDyXh := sumDy/n, sumDyXh/n
		for b := 0; b < sp.b; b++ {
			off := (b*sp.c + c) * sp.s
			for i, v := range x[off : off+sp.s] {
				xh := (float64(v) - mean[c]) * istd[c]
				dx[off+i] = T(k * (float64(dy[off+i]) - mDy - xh*mDyXh))
			}
		}
	}
}

// bnWeightGrad computes dγ[c] = Σ dy·x̂, x̂ normalised with the statistics
// of the mode.
func bnWeightGrad[T Float](sp *bnSpec, x, rm, rv, dy, dg []T) {
	mean, istd, _ := bnStats(sp, x, rm, rv)
	for c := 0; c < sp.c; c++ {
		var s float64
		for b := 0; b < sp.b; b++ {
			off := (b*sp.c + c) * sp.s
			for i, v := range x[off : off+sp.s] {
				s += float64(dy[off+i]) * (float64(v) - mean[c]) * istd[c]
			}
		}
		dg[c] = T(s)
	}
}
