package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MaxPool1d is PyTorch's nn.MaxPool1d (ceil_mode=False, dilation 1):
// y[n,c,l] = max_{j<Kernel} x[n, c, l·Stride + j − Padding], where padded
// positions count as −∞. Input [B, C, L], output [B, C, L'] with
// L' = floor((L + 2·Padding − Kernel)/Stride) + 1. The gradient flows to
// the first maximum of each window (a NaN in the window is the maximum, as
// in PyTorch). No parameters; same in training and evaluation.
type MaxPool1d struct {
	// Kernel is the window length (> 0).
	Kernel int
	// Stride is the step between windows; 0 means Kernel.
	Stride int
	// Padding is the −∞ padding on both ends, at most Kernel/2.
	Padding int
}

// Forward pools x [B, C, L] to [B, C, L'].
func (p MaxPool1d) Forward(c *Ctx, x *G.Node) (*G.Node, error) {
	return maxPool{name: "maxpool1d", nd: 1, kernel: p.Kernel, stride: p.Stride, padding: p.Padding}.forward(c, x)
}

// MaxPool2d is PyTorch's nn.MaxPool2d with a square window
// (ceil_mode=False, dilation 1): y[n,c,i,j] = max_{u,v<Kernel}
// x[n, c, i·Stride + u − Padding, j·Stride + v − Padding], padding −∞.
// Input [B, C, H, W], output [B, C, H', W'] with
// H' = floor((H + 2·Padding − Kernel)/Stride) + 1 (W' alike). The gradient
// flows to the first maximum of each window. No parameters; same in
// training and evaluation.
type MaxPool2d struct {
	// Kernel is the side of the square window (> 0).
	Kernel int
	// Stride is the step between windows; 0 means Kernel.
	Stride int
	// Padding is the −∞ padding on every side, at most Kernel/2.
	Padding int
}

// Forward pools x [B, C, H, W] to [B, C, H', W'].
func (p MaxPool2d) Forward(c *Ctx, x *G.Node) (*G.Node, error) {
	return maxPool{name: "maxpool2d", nd: 2, kernel: p.Kernel, stride: p.Stride, padding: p.Padding}.forward(c, x)
}

type maxPool struct {
	name                    string
	nd                      int
	kernel, stride, padding int
}

func (p maxPool) forward(c *Ctx, x *G.Node) (*G.Node, error) {
	if p.stride == 0 {
		p.stride = p.kernel
	}
	if p.kernel > 0 && 2*p.padding > p.kernel {
		return nil, c.Errorf("%s: padding %d must be at most half the kernel %d", p.name, p.padding, p.kernel)
	}
	if x.Dtype() != c.Dtype() {
		return nil, c.Errorf("%s: input has dtype %v, the model computes in %v", p.name, x.Dtype(), c.Dtype())
	}
	rep := func(v int) []int { return repeatInt(v, p.nd) }
	g, err := newConvGeom(p.name, p.nd, x.Shape(), 0, 0, 1, rep(p.kernel), rep(p.stride), rep(p.padding), rep(1))
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	y, err := Apply(maxPoolKernel(g), x)
	if err != nil {
		return nil, c.Errorf("%s: %v", p.name, err)
	}
	return y, nil
}

// maxPoolKernel pools every [D,H,W] plane of x; its backward is a
// non-differentiable kernel over (x, dy) that recomputes the argmax and
// routes dy there.
func maxPoolKernel(g *convGeom) *Kernel {
	in, out := g.inputShape(), g.outputShape()
	k := &Kernel{Name: fmt.Sprintf("MaxPool%dd{%v}", g.nd, g)}
	k.Shape = func(s []tensor.Shape) (tensor.Shape, error) { return out.Clone(), checkShapes(s, in) }
	k.Forward = func(t []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(out, t, dst,
			func(a [][]float64, y []float64) { maxPoolForward(g, a[0], y) },
			func(a [][]float32, y []float32) { maxPoolForward(g, a[0], y) })
	}
	k.Backward = func(n G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		bk := &Kernel{Name: fmt.Sprintf("MaxPool%ddGrad{%v}", g.nd, g)}
		bk.Shape = func(s []tensor.Shape) (tensor.Shape, error) { return in.Clone(), checkShapes(s, in, out) }
		bk.Forward = func(t []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return floatKernel(in, t, dst,
				func(a [][]float64, dx []float64) { maxPoolBackward(g, a[0], a[1], dx) },
				func(a [][]float32, dx []float32) { maxPoolBackward(g, a[0], a[1], dx) })
		}
		dx, err := Apply(bk, n[0], grad)
		return G.Nodes{dx}, err
	}
	return k
}

// poolArgMax calls visit(i, j) for every output position i of a plane xp
// (row-major over the output) with j the plane index of the window's
// maximum: the first one in scan order, or the last NaN. Padding is never
// chosen (padding ≤ kernel/2 leaves every window a real element).
func poolArgMax[T Float](g *convGeom, xp []T, visit func(i, j int)) {
	D, H, W := g.in[0], g.in[1], g.in[2]
	i := 0
	for od := 0; od < g.out[0]; od++ {
		d0 := od*g.stride[0] - g.pad[0]
		for oh := 0; oh < g.out[1]; oh++ {
			h0 := oh*g.stride[1] - g.pad[1]
			for ow := 0; ow < g.out[2]; ow++ {
				w0 := ow*g.stride[2] - g.pad[2]
				best, arg := T(math.Inf(-1)), -1
				for d := max(d0, 0); d < min(d0+g.k[0], D); d++ {
					for h := max(h0, 0); h < min(h0+g.k[1], H); h++ {
						row := (d*H + h) * W
						for w := max(w0, 0); w < min(w0+g.k[2], W); w++ {
							if v := xp[row+w]; arg < 0 || v > best || v != v {
								best, arg = v, row+w
							}
						}
					}
				}
				visit(i, arg)
				i++
			}
		}
	}
}

func maxPoolForward[T Float](g *convGeom, x, y []T) {
	S, L := g.inSize(), g.outSize()
	parallelFor(g.batch*g.inC, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			xp, yp := x[p*S:(p+1)*S], y[p*L:(p+1)*L]
			poolArgMax(g, xp, func(i, j int) { yp[i] = xp[j] })
		}
	})
}

func maxPoolBackward[T Float](g *convGeom, x, dy, dx []T) {
	S, L := g.inSize(), g.outSize()
	parallelFor(g.batch*g.inC, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			dyp, dxp := dy[p*L:(p+1)*L], dx[p*S:(p+1)*S]
			poolArgMax(g, x[p*S:(p+1)*S], func(i, j int) { dxp[j] += dyp[i] })
		}
	})
}

// GlobalAvgPool averages x [B, C, spatial...] (rank ≥ 3) over every spatial
// axis: y[n,c] = mean_s x[n,c,s], output [B, C]. Replaces Gorgonia's
// GlobalAveragePool2D, which has no gradient (DESIGN.md fact 3); the
// gradient is dL/dx[n,c,s] = dL/dy[n,c] / S. Same in training and
// evaluation.
func GlobalAvgPool(c *Ctx, x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() < 3 {
		return nil, c.Errorf("global average pool expects [B,C,spatial...] (rank at least 3), got %s", shapeString(s))
	}
	y, err := meanAxes(x, 2, s.Dims())
	if err != nil {
		return nil, c.Errorf("global average pool: %v", err)
	}
	return y, nil
}

// MeanAxis returns the mean of x over one axis, removing it: x of shape
// [a..., n, b...] gives [a..., b...]. x needs rank ≥ 2 (the result may not
// be a scalar; use G.Mean for that). Replaces Gorgonia's Mean over axes,
// whose gradients are wrong for several axes (DESIGN.md fact 3); the
// gradient is dL/dx = dL/dy broadcast along axis, divided by n.
func MeanAxis(x *G.Node, axis int) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() < 2 {
		return nil, fmt.Errorf("mean axis: input %s has rank %d, need at least 2 (use G.Mean for a scalar)", shapeString(s), s.Dims())
	}
	if axis < 0 || axis >= s.Dims() {
		return nil, fmt.Errorf("mean axis: axis %d out of range for shape %s", axis, shapeString(s))
	}
	return meanAxes(x, axis, axis+1)
}

// meanAxes averages x over the consecutive axes [from, to), viewing x as
// [outer, n, inner]. Its backward is the non-differentiable broadcastMean.
func meanAxes(x *G.Node, from, to int) (*G.Node, error) {
	xs := x.Shape().Clone()
	outer, n, inner := prod(xs[:from]), prod(xs[from:to]), prod(xs[to:])
	out := append(append(tensor.Shape{}, xs[:from]...), xs[to:]...)
	k := &Kernel{Name: fmt.Sprintf("MeanAxes{%d:%d}", from, to)}
	k.Shape = func(s []tensor.Shape) (tensor.Shape, error) { return out.Clone(), checkShapes(s, xs) }
	k.Forward = func(t []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(out, t, dst,
			func(a [][]float64, y []float64) { meanMiddle(a[0], y, outer, n, inner) },
			func(a [][]float32, y []float32) { meanMiddle(a[0], y, outer, n, inner) })
	}
	k.Backward = func(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		bk := &Kernel{Name: fmt.Sprintf("BroadcastMean{%d:%d,%v}", from, to, xs)}
		bk.Shape = func(s []tensor.Shape) (tensor.Shape, error) { return xs.Clone(), checkShapes(s, out) }
		bk.Forward = func(t []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return floatKernel(xs, t, dst,
				func(a [][]float64, dx []float64) { broadcastMiddle(a[0], dx, outer, n, inner) },
				func(a [][]float32, dx []float32) { broadcastMiddle(a[0], dx, outer, n, inner) })
		}
		dx, err := Apply(bk, grad)
		return G.Nodes{dx}, err
	}
	return Apply(k, x)
}

// meanMiddle sets y[o,i] = mean_j x[o,j,i] for x [outer,n,inner],
// accumulating in float64.
func meanMiddle[T Float](x, y []T, outer, n, inner int) {
	acc := make([]float64, inner)
	for o := 0; o < outer; o++ {
		clear(acc)
		for j := 0; j < n; j++ {
			row := x[(o*n+j)*inner : (o*n+j+1)*inner]
			for i, v := range row {
				acc[i] += float64(v)
			}
		}
		for i, v := range acc {
			y[o*inner+i] = T(v / float64(n))
		}
	}
}

// broadcastMiddle sets dx[o,j,i] = dy[o,i]/n: the adjoint of meanMiddle.
func broadcastMiddle[T Float](dy, dx []T, outer, n, inner int) {
	inv := 1 / T(n)
	for o := 0; o < outer; o++ {
		src := dy[o*inner : (o+1)*inner]
		for j := 0; j < n; j++ {
			row := dx[(o*n+j)*inner : (o*n+j+1)*inner]
			for i, v := range src {
				row[i] = v * inv
			}
		}
	}
}

// channelSum sums x [B, C, rest...] (rank ≥ 2) over every axis but the
// channel axis 1: y[c] = Σ_{n,s} x[n,c,s], shape [C]. It is the bias
// gradient of convolutions and batch norm; not differentiable.
func channelSum(x *G.Node) (*G.Node, error) {
	xs := x.Shape().Clone()
	if xs.Dims() < 2 {
		return nil, fmt.Errorf("channel sum: input %s has rank %d, need at least 2", shapeString(xs), xs.Dims())
	}
	B, C, S := xs[0], xs[1], prod(xs[2:])
	k := &Kernel{Name: "ChannelSum"}
	k.Shape = func(s []tensor.Shape) (tensor.Shape, error) { return tensor.Shape{C}, checkShapes(s, xs) }
	k.Forward = func(t []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(tensor.Shape{C}, t, dst,
			func(a [][]float64, y []float64) { sumChannels(a[0], y, B, C, S) },
			func(a [][]float32, y []float32) { sumChannels(a[0], y, B, C, S) })
	}
	return Apply(k, x)
}

func sumChannels[T Float](x, y []T, B, C, S int) {
	for c := 0; c < C; c++ {
		var s float64
		for n := 0; n < B; n++ {
			for _, v := range x[(n*C+c)*S : (n*C+c+1)*S] {
				s += float64(v)
			}
		}
		y[c] = T(s)
	}
}
