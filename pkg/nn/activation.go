package nn

import (
	"fmt"
	"math"
	"sort"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The elementwise activations below are single Pointwise kernels (one node
// forward, one node backward) with hand-written derivatives; each is
// checked against finite differences in activation_test.go. They accept a
// float32 or float64 node of any non-scalar shape and return the same shape.

// ReLU returns max(x, 0) elementwise. Its derivative at x = 0 is taken as 0,
// as in PyTorch.
//
// Unlike the other activations it runs typed loops split over the cores
// rather than a float64 callback per element: the conv stems apply it to
// every feature map, where the callback cost ~15 % of a bench-small step.
// Its op names ("ReLU", "ReLU/grad") are those of Pointwise.
func ReLU(x *G.Node) (*G.Node, error) {
	if err := checkPointwiseInput(x, "ReLU"); err != nil {
		return nil, err
	}
	k := &Kernel{Name: "ReLU", Shape: sameShapeAsFirst}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(in[0].Shape(), in, dst,
			func(in [][]float64, out []float64) {
				ParallelRange(len(out), func(lo, hi int) { reluForward(in[0][lo:hi], out[lo:hi]) })
			},
			func(in [][]float32, out []float32) {
				ParallelRange(len(out), func(lo, hi int) { reluForward(in[0][lo:hi], out[lo:hi]) })
			})
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		bk := &Kernel{Name: "ReLU/grad", Shape: sameShapeAsFirst}
		bk.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			if !in[0].Shape().Eq(in[1].Shape()) {
				return nil, fmt.Errorf("gradient shape %v, input %v", in[1].Shape(), in[0].Shape())
			}
			return floatKernel(in[0].Shape(), in, dst,
				func(in [][]float64, out []float64) {
					ParallelRange(len(out), func(lo, hi int) { reluBackward(in[0][lo:hi], in[1][lo:hi], out[lo:hi]) })
				},
				func(in [][]float32, out []float32) {
					ParallelRange(len(out), func(lo, hi int) { reluBackward(in[0][lo:hi], in[1][lo:hi], out[lo:hi]) })
				})
		}
		g, err := Apply(bk, in[0], grad)
		return G.Nodes{g}, err
	}
	return Apply(k, x)
}

// reluForward writes max(x, 0) to y.
func reluForward[T Float](x, y []T) {
	y = y[:len(x)]
	for i, v := range x {
		if v > 0 {
			y[i] = v
		} else {
			y[i] = 0
		}
	}
}

// reluBackward writes g where x > 0 and 0 elsewhere to dx.
func reluBackward[T Float](x, g, dx []T) {
	g, dx = g[:len(x)], dx[:len(x)]
	for i, v := range x {
		if v > 0 {
			dx[i] = g[i]
		} else {
			dx[i] = 0
		}
	}
}

// GELU returns the exact Gaussian error linear unit x·Φ(x) =
// ½·x·(1 + erf(x/√2)) elementwise (PyTorch's default, approximate="none";
// Hendrycks & Gimpel 2016). Derivative: Φ(x) + x·φ(x).
func GELU(x *G.Node) (*G.Node, error) {
	return Pointwise(x, "GELU", actGELU, actGELUGrad)
}

// SiLU returns x·σ(x) elementwise (swish; Elfwing et al. 2018). Derivative:
// σ(x)·(1 + x·(1 − σ(x))).
func SiLU(x *G.Node) (*G.Node, error) {
	return Pointwise(x, "SiLU", actSiLU, actSiLUGrad)
}

// Tanh returns tanh(x) elementwise. Derivative: 1 − tanh²(x).
func Tanh(x *G.Node) (*G.Node, error) {
	return Pointwise(x, "Tanh", math.Tanh, actTanhGrad)
}

// Sigmoid returns σ(x) = 1/(1+e^(−x)) elementwise, computed in a form that
// neither overflows nor loses precision for large |x| (e^(−|x|) is the only
// exponential taken). Derivative: σ(x)·(1 − σ(x)).
func Sigmoid(x *G.Node) (*G.Node, error) {
	return Pointwise(x, "Sigmoid", stableSigmoid, actSigmoidGrad)
}

// LeCunTanh returns 1.7159·tanh(0.666·x) elementwise, the scaled tanh of
// LeCun et al. (1998) that ncps' CfC uses as its backbone activation.
func LeCunTanh(x *G.Node) (*G.Node, error) {
	return Pointwise(x, "LeCunTanh", actLeCunTanh, actLeCunTanhGrad)
}

// Identity returns x unchanged (the "identity" activation).
func Identity(x *G.Node) (*G.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("identity: nil input")
	}
	return x, nil
}

// ActivationByName returns the activation called name: "relu", "gelu",
// "silu", "tanh", "sigmoid", "lecun_tanh" or "identity" (case-insensitive).
// An unknown name is an error that lists the valid ones.
func ActivationByName(name string) (func(*G.Node) (*G.Node, error), error) {
	acts := map[string]func(*G.Node) (*G.Node, error){
		"relu": ReLU, "gelu": GELU, "silu": SiLU, "tanh": Tanh,
		"sigmoid": Sigmoid, "lecun_tanh": LeCunTanh, "identity": Identity,
	}
	if f, ok := acts[strings.ToLower(strings.TrimSpace(name))]; ok {
		return f, nil
	}
	names := make([]string, 0, len(acts))
	for n := range acts {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("unknown activation %q (valid: %s)", name, strings.Join(names, ", "))
}

func actGELU(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

func actGELUGrad(x float64) float64 {
	cdf := 0.5 * (1 + math.Erf(x/math.Sqrt2))
	pdf := math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi)
	return cdf + x*pdf
}

func actSiLU(x float64) float64 { return x * stableSigmoid(x) }

func actSiLUGrad(x float64) float64 {
	s := stableSigmoid(x)
	return s * (1 + x*(1-s))
}

func actTanhGrad(x float64) float64 {
	t := math.Tanh(x)
	return 1 - t*t
}

func actSigmoidGrad(x float64) float64 {
	s := stableSigmoid(x)
	return s * (1 - s)
}

// LeCun's constants: 1.7159·tanh(0.666·x), the values ncps uses.
const (
	lecunScale = 1.7159
	lecunSlope = 0.666
)

func actLeCunTanh(x float64) float64 { return lecunScale * math.Tanh(lecunSlope*x) }

func actLeCunTanhGrad(x float64) float64 {
	t := math.Tanh(lecunSlope * x)
	return lecunScale * lecunSlope * (1 - t*t)
}

// Softmax returns exp(x)/Σexp(x) over the last axis of x (any rank ≥ 1,
// float32 or float64), computed stably (the row maximum is subtracted
// first). Backward: dx = y ⊙ (g − Σ g⊙y) per row.
func Softmax(x *G.Node) (*G.Node, error) {
	return lastAxisKernel(x, "Softmax", softmaxRows[float64], softmaxRows[float32], "SoftmaxGrad", softmaxGradRows[float64], softmaxGradRows[float32])
}

// LogSoftmax returns x − log Σexp(x) over the last axis of x (any rank ≥ 1),
// computed stably. Backward: dx = g − softmax(x)·Σg per row.
func LogSoftmax(x *G.Node) (*G.Node, error) {
	return lastAxisKernel(x, "LogSoftmax", logSoftmaxRows[float64], logSoftmaxRows[float32], "LogSoftmaxGrad", logSoftmaxGradRows[float64], logSoftmaxGradRows[float32])
}

// lastAxisKernel builds a row-wise kernel over the last axis of x whose
// backward is a second row-wise kernel of (output, grad). Row bodies get
// the flat data and the row length.
func lastAxisKernel(x *G.Node, name string, f64 func(x, y []float64, n int), f32 func(x, y []float32, n int),
	gradName string, g64 func(y, g, dx []float64, n int), g32 func(y, g, dx []float32, n int)) (*G.Node, error) {
	if err := checkFloatNode(name, x); err != nil {
		return nil, err
	}
	k := &Kernel{Name: name, Shape: sameShapeAsFirst}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		n := lastDim(in[0].Shape())
		return floatKernel(in[0].Shape().Clone(), in, dst,
			func(in [][]float64, out []float64) { f64(in[0], out, n) },
			func(in [][]float32, out []float32) { f32(in[0], out, n) })
	}
	k.Backward = func(_ G.Nodes, out, grad *G.Node) (G.Nodes, error) {
		bk := &Kernel{Name: gradName, Shape: sameShapeAsFirst}
		bk.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			n := lastDim(in[0].Shape())
			return floatKernel(in[0].Shape().Clone(), in, dst,
				func(in [][]float64, out []float64) { g64(in[0], in[1], out, n) },
				func(in [][]float32, out []float32) { g32(in[0], in[1], out, n) })
		}
		dx, err := Apply(bk, out, grad)
		return G.Nodes{dx}, err
	}
	return Apply(k, x)
}

func lastDim(s tensor.Shape) int { return s[len(s)-1] }

// softmaxRow writes the softmax of x into y (same length) and returns the
// log of the normaliser, log Σ exp(x). Work is done in float64.
func softmaxRow[T Float](x, y []T) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var s float64
	for j, v := range x {
		e := math.Exp(float64(v) - m)
		y[j] = T(e)
		s += e
	}
	inv := 1 / s
	for j := range y {
		y[j] = T(float64(y[j]) * inv)
	}
	return m + math.Log(s)
}

func softmaxRows[T Float](x, y []T, n int) {
	for r := 0; r < len(x); r += n {
		softmaxRow(x[r:r+n], y[r:r+n])
	}
}

func softmaxGradRows[T Float](y, g, dx []T, n int) {
	for r := 0; r < len(y); r += n {
		var dot float64
		for j := r; j < r+n; j++ {
			dot += float64(g[j]) * float64(y[j])
		}
		for j := r; j < r+n; j++ {
			dx[j] = T(float64(y[j]) * (float64(g[j]) - dot))
		}
	}
}

// logSumExp returns log Σ exp(x), stably.
func logSumExp[T Float](x []T) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	if math.IsInf(m, 0) {
		return m
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

func logSoftmaxRows[T Float](x, y []T, n int) {
	for r := 0; r < len(x); r += n {
		lse := logSumExp(x[r : r+n])
		for j := r; j < r+n; j++ {
			y[j] = T(float64(x[j]) - lse)
		}
	}
}

func logSoftmaxGradRows[T Float](y, g, dx []T, n int) {
	for r := 0; r < len(y); r += n {
		var s float64
		for j := r; j < r+n; j++ {
			s += float64(g[j])
		}
		for j := r; j < r+n; j++ {
			dx[j] = T(float64(g[j]) - math.Exp(float64(y[j]))*s)
		}
	}
}

// checkFloatNode validates that x is a non-scalar float32/float64 node.
func checkFloatNode(what string, x *G.Node) error {
	if x == nil {
		return fmt.Errorf("%s: nil input", what)
	}
	if dt := x.Dtype(); dt != tensor.Float64 && dt != tensor.Float32 {
		return fmt.Errorf("%s: input dtype %v, want float32 or float64", what, dt)
	}
	if x.Shape().Dims() == 0 {
		return fmt.Errorf("%s: scalar input not supported, reshape to [1]", what)
	}
	return nil
}
