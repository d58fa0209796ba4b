package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Conv1d is a 1-d convolution (PyTorch nn.Conv1d, cross-correlation):
//
//	y[n,o,l] = b[o] + Σ_{c<InC/G} Σ_{j<K} w[o,c,j] · x[n, g(o)·InC/G + c, l·Stride + j·Dilation − Padding]
//
// with g(o) = o / (OutC/G) the group of output channel o, and zero for input
// positions outside [0, L) (zero padding). Input x is [B, InC, L], output
// [B, OutC, L'] with L' = floor((L + 2·Padding − Dilation·(K−1) − 1)/Stride) + 1.
// Parameters under c's scope: "weight" [OutC, InC/Groups, K] initialised
// kaiming_uniform(a=√5) and "bias" [OutC] from U(±1/√fanIn), fanIn =
// InC/Groups·K (PyTorch's defaults and layout). Same in training and
// evaluation.
type Conv1d struct {
	// InC and OutC are the input and output channels; both must be
	// divisible by Groups.
	InC, OutC int
	// Kernel is the kernel length (> 0).
	Kernel int
	// Stride is the step between output positions; 0 means 1.
	Stride int
	// Padding is the number of zeros added at both ends (≥ 0).
	Padding int
	// Dilation is the spacing between kernel taps; 0 means 1.
	Dilation int
	// Groups splits the channels into independent convolutions; 0 means 1,
	// Groups == InC is a depthwise convolution.
	Groups int
	// NoBias drops the bias.
	NoBias bool
}

// Forward applies the convolution to x [B, InC, L] and returns [B, OutC, L'].
func (l Conv1d) Forward(c *Ctx, x *G.Node) (*G.Node, error) {
	return convLayer{name: "conv1d", nd: 1, inC: l.InC, outC: l.OutC, kernel: l.Kernel, stride: l.Stride,
		padding: l.Padding, dilation: l.Dilation, groups: l.Groups, noBias: l.NoBias}.forward(c, x)
}

// Conv2d is a 2-d convolution with a square kernel (PyTorch nn.Conv2d):
//
//	y[n,o,i,j] = b[o] + Σ_{c<InC/G} Σ_{u,v<K} w[o,c,u,v] · x[n, g(o)·InC/G + c, i·S + u − P, j·S + v − P]
//
// with zero padding P and stride S on both spatial axes, g(o) = o/(OutC/G).
// Input x is [B, InC, H, W], output [B, OutC, H', W'] with
// H' = floor((H + 2P − K)/S) + 1 (W' alike). Parameters "weight"
// [OutC, InC/Groups, K, K] (kaiming_uniform(a=√5)) and "bias" [OutC]
// (U(±1/√fanIn), fanIn = InC/Groups·K²), PyTorch's defaults and layout.
// Same in training and evaluation.
type Conv2d struct {
	// InC and OutC are the input and output channels; both must be
	// divisible by Groups.
	InC, OutC int
	// Kernel is the side of the square kernel (> 0).
	Kernel int
	// Stride is the step between output positions; 0 means 1.
	Stride int
	// Padding is the number of zero rows/columns added on every side (≥ 0).
	Padding int
	// Groups splits the channels into independent convolutions; 0 means 1,
	// Groups == InC is a depthwise convolution.
	Groups int
	// NoBias drops the bias.
	NoBias bool
}

// Forward applies the convolution to x [B, InC, H, W] and returns
// [B, OutC, H', W'].
func (l Conv2d) Forward(c *Ctx, x *G.Node) (*G.Node, error) {
	return convLayer{name: "conv2d", nd: 2, inC: l.InC, outC: l.OutC, kernel: l.Kernel, stride: l.Stride,
		padding: l.Padding, groups: l.Groups, noBias: l.NoBias}.forward(c, x)
}

// Conv3d is a 3-d convolution with a cubic kernel (PyTorch nn.Conv3d):
//
//	y[n,o,d,i,j] = b[o] + Σ_{c<InC/G} Σ_{t,u,v<K} w[o,c,t,u,v] ·
//	               x[n, g(o)·InC/G + c, d·S + t·Q − P, i·S + u·Q − P, j·S + v·Q − P]
//
// with zero padding P, stride S and dilation Q on every axis, g(o) =
// o/(OutC/G). Input x is [B, InC, D, H, W], output [B, OutC, D', H', W']
// with D' = floor((D + 2P − Q·(K−1) − 1)/S) + 1 (H', W' alike).
// Parameters "weight" [OutC, InC/Groups, K, K, K] (kaiming_uniform(a=√5))
// and "bias" [OutC] (U(±1/√fanIn), fanIn = InC/Groups·K³). Same in
// training and evaluation.
type Conv3d struct {
	// InC and OutC are the input and output channels; both must be
	// divisible by Groups.
	InC, OutC int
	// Kernel is the side of the cubic kernel (> 0).
	Kernel int
	// Stride is the step between output positions; 0 means 1.
	Stride int
	// Padding is the number of zero planes added on every side (≥ 0).
	Padding int
	// Dilation is the spacing between kernel taps; 0 means 1.
	Dilation int
	// Groups splits the channels into independent convolutions; 0 means 1,
	// Groups == InC is a depthwise convolution.
	Groups int
	// NoBias drops the bias.
	NoBias bool
}

// Forward applies the convolution to x [B, InC, D, H, W] and returns
// [B, OutC, D', H', W'].
func (l Conv3d) Forward(c *Ctx, x *G.Node) (*G.Node, error) {
	return convLayer{name: "conv3d", nd: 3, inC: l.InC, outC: l.OutC, kernel: l.Kernel, stride: l.Stride,
		padding: l.Padding, dilation: l.Dilation, groups: l.Groups, noBias: l.NoBias}.forward(c, x)
}

// convLayer is the shared implementation of Conv1d/2d/3d: the same
// setting on every spatial axis, zero values replaced by defaults.
type convLayer struct {
	name                               string
	nd                                 int
	inC, outC, kernel, stride, padding int
	dilation, groups                   int
	noBias                             bool
}

func (l convLayer) forward(c *Ctx, x *G.Node) (*G.Node, error) {
	if l.stride == 0 {
		l.stride = 1
	}
	if l.dilation == 0 {
		l.dilation = 1
	}
	if l.groups == 0 {
		l.groups = 1
	}
	switch {
	case l.inC <= 0 || l.outC <= 0:
		return nil, c.Errorf("%s: channels must be positive, got in %d out %d", l.name, l.inC, l.outC)
	case l.groups < 0:
		return nil, c.Errorf("%s: groups must be positive, got %d", l.name, l.groups)
	case l.inC%l.groups != 0:
		return nil, c.Errorf("%s: in channels %d not divisible by groups %d", l.name, l.inC, l.groups)
	case l.outC%l.groups != 0:
		return nil, c.Errorf("%s: out channels %d not divisible by groups %d", l.name, l.outC, l.groups)
	case x.Dtype() != c.Dtype():
		return nil, c.Errorf("%s: input has dtype %v, the model computes in %v", l.name, x.Dtype(), c.Dtype())
	}
	rep := func(v int) []int { return repeatInt(v, l.nd) }
	k := rep(l.kernel)
	g, err := newConvGeom(l.name, l.nd, x.Shape(), l.inC, l.outC, l.groups, k, rep(l.stride), rep(l.padding), rep(l.dilation))
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	w, err := c.Param("weight", g.weightShape(), KaimingUniform(math.Sqrt(5)))
	if err != nil {
		return nil, err
	}
	in := G.Nodes{x, w}
	if !l.noBias {
		b, err := c.Param("bias", []int{l.outC}, BiasUniform(g.colRows()))
		if err != nil {
			return nil, err
		}
		in = append(in, b)
	}
	y, err := Apply(convKernel(g, !l.noBias), in...)
	if err != nil {
		return nil, c.Errorf("%s: %v", l.name, err)
	}
	return y, nil
}

func (g *convGeom) inputShape() tensor.Shape {
	return append(tensor.Shape{g.batch, g.inC}, g.spatial(g.in)...)
}

func (g *convGeom) outputShape() tensor.Shape {
	return append(tensor.Shape{g.batch, g.outC}, g.spatial(g.out)...)
}

func (g *convGeom) weightShape() tensor.Shape {
	return append(tensor.Shape{g.outC, g.inC / g.grp}, g.spatial(g.k)...)
}

// checkShapes compares the kernel's input shapes with the expected ones.
func checkShapes(in []tensor.Shape, want ...tensor.Shape) error {
	if len(in) != len(want) {
		return fmt.Errorf("%d inputs, want %d", len(in), len(want))
	}
	for i := range want {
		if !in[i].Eq(want[i]) {
			return fmt.Errorf("input %d has shape %s, want %s", i, shapeString(in[i]), shapeString(want[i]))
		}
	}
	return nil
}

// convKernel is the forward convolution over inputs (x, w[, b]). Its
// backward is three non-differentiable kernels: d/dx (transposed GEMM +
// col2im), d/dw (GEMM against the recomputed column matrix) and d/db
// (channelSum).
func convKernel(g *convGeom, bias bool) *Kernel {
	want := []tensor.Shape{g.inputShape(), g.weightShape()}
	if bias {
		want = append(want, tensor.Shape{g.outC})
	}
	k := geomKernel(fmt.Sprintf("Conv%dd{%v,bias=%v}", g.nd, g, bias), want, g.outputShape(),
		func(a [][]float64, y []float64) { convForward(g, a, y) },
		func(a [][]float32, y []float32) { convForward(g, a, y) })
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		dx, err := Apply(convInputGradKernel(g), in[1], grad)
		if err != nil {
			return nil, err
		}
		dw, err := Apply(convWeightGradKernel(g), in[0], grad)
		if err != nil {
			return nil, err
		}
		gs := G.Nodes{dx, dw}
		if bias {
			db, err := channelSum(grad)
			if err != nil {
				return nil, err
			}
			gs = append(gs, db)
		}
		return gs, nil
	}
	return k
}

// convInputGradKernel computes dL/dx from (w, dL/dy): per batch item and
// group, dcol = W_gᵀ·dY_g followed by col2im.
func convInputGradKernel(g *convGeom) *Kernel {
	return geomKernel(fmt.Sprintf("Conv%ddInputGrad{%v}", g.nd, g),
		[]tensor.Shape{g.weightShape(), g.outputShape()}, g.inputShape(),
		func(a [][]float64, dx []float64) { convInputGrad(g, a[0], a[1], dx) },
		func(a [][]float32, dx []float32) { convInputGrad(g, a[0], a[1], dx) })
}

// convWeightGradKernel computes dL/dw from (x, dL/dy): Σ_n dY_{n,g}·col_{n,g}ᵀ.
func convWeightGradKernel(g *convGeom) *Kernel {
	return geomKernel(fmt.Sprintf("Conv%ddWeightGrad{%v}", g.nd, g),
		[]tensor.Shape{g.inputShape(), g.outputShape()}, g.weightShape(),
		func(a [][]float64, dw []float64) { convWeightGrad(g, a[0], a[1], dw) },
		func(a [][]float32, dw []float32) { convWeightGrad(g, a[0], a[1], dw) })
}

// geomKernel is a kernel with fixed input shapes want (checked) and output
// shape out, computed by f64 or f32 on the backing slices.
func geomKernel(name string, want []tensor.Shape, out tensor.Shape,
	f64 func([][]float64, []float64), f32 func([][]float32, []float32)) *Kernel {
	return &Kernel{
		Name:  name,
		Shape: func(in []tensor.Shape) (tensor.Shape, error) { return out.Clone(), checkShapes(in, want...) },
		Forward: func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return floatKernel(out, in, dst, f64, f32)
		},
	}
}

// convDims returns the sizes the conv loops use: rows of a group's column
// matrix, output positions, input positions, and channels per group.
func (g *convGeom) convDims() (rows, outPos, inPos, cg, og int) {
	return g.colRows(), g.outSize(), g.inSize(), g.inC / g.grp, g.outC / g.grp
}

// convForward computes y = conv(x, w) + b for in = (x, w[, b]), y zeroed.
// Batch items are split across goroutines; each owns a column buffer.
func convForward[T Float](g *convGeom, in [][]T, y []T) {
	x, w := in[0], in[1]
	var b []T
	if len(in) > 2 {
		b = in[2]
	}
	R, L, S, cg, og := g.convDims()
	pw := g.pointwise()
	parallelFor(g.batch, func(_, lo, hi int) {
		var col []T
		if !pw {
			p := zeroedScratch[T](R * L)
			defer putScratch(p)
			col = *p
		}
		for n := lo; n < hi; n++ {
			yn := y[n*g.outC*L : (n+1)*g.outC*L]
			var beta T
			if b != nil {
				for o, bo := range b {
					row := yn[o*L : (o+1)*L]
					for i := range row {
						row[i] = bo
					}
				}
				beta = 1
			}
			for gi := 0; gi < g.grp; gi++ {
				src := x[(n*g.inC+gi*cg)*S : (n*g.inC+(gi+1)*cg)*S]
				if !pw {
					im2col(g, src, col)
					src = col
				}
				blasGemm(false, false, og, L, R, 1, w[gi*og*R:(gi+1)*og*R], R, src, L, beta, yn[gi*og*L:(gi+1)*og*L], L)
			}
		}
	})
}

// convInputGrad computes dx (zeroed on entry) from w and dy.
func convInputGrad[T Float](g *convGeom, w, dy, dx []T) {
	R, L, S, cg, og := g.convDims()
	pw := g.pointwise()
	parallelFor(g.batch, func(_, lo, hi int) {
		var col []T
		if !pw {
			p := zeroedScratch[T](R * L)
			defer putScratch(p)
			col = *p
		}
		for n := lo; n < hi; n++ {
			for gi := 0; gi < g.grp; gi++ {
				dxg := dx[(n*g.inC+gi*cg)*S : (n*g.inC+(gi+1)*cg)*S]
				dyg := dy[(n*g.outC+gi*og)*L : (n*g.outC+(gi+1)*og)*L]
				wg := w[gi*og*R : (gi+1)*og*R]
				if pw {
					blasGemm(true, false, R, L, og, 1, wg, R, dyg, L, 0, dxg, L)
					continue
				}
				blasGemm(true, false, R, L, og, 1, wg, R, dyg, L, 0, col, L)
				col2im(g, col, dxg)
			}
		}
	})
}

// convWeightGrad computes dw (zeroed on entry) from x and dy. Each worker
// accumulates into its own buffer (worker 0 into dw); the buffers are
// summed at the end.
func convWeightGrad[T Float](g *convGeom, x, dy, dw []T) {
	R, L, S, cg, og := g.convDims()
	pw := g.pointwise()
	acc := make([][]T, workersFor(g.batch))
	acc[0] = dw
	for wk := 1; wk < len(acc); wk++ {
		p := zeroedScratch[T](len(dw))
		defer putScratch(p) // after the sum below
		acc[wk] = *p
	}
	parallelFor(g.batch, func(wk, lo, hi int) {
		a := acc[wk]
		var col []T
		if !pw {
			p := zeroedScratch[T](R * L)
			defer putScratch(p)
			col = *p
		}
		for n := lo; n < hi; n++ {
			for gi := 0; gi < g.grp; gi++ {
				src := x[(n*g.inC+gi*cg)*S : (n*g.inC+(gi+1)*cg)*S]
				if !pw {
					im2col(g, src, col)
					src = col
				}
				dyg := dy[(n*g.outC+gi*og)*L : (n*g.outC+(gi+1)*og)*L]
				blasGemm(false, true, og, R, L, 1, dyg, L, src, L, 1, a[gi*og*R:(gi+1)*og*R], R)
			}
		}
	})
	for _, a := range acc[1:] {
		for i, v := range a {
			dw[i] += v
		}
	}
}

// zeroedScratch is getScratch with the contents cleared.
func zeroedScratch[T Float](n int) *[]T {
	p := getScratch[T](n)
	clear(*p)
	return p
}
