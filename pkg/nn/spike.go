package nn

import (
	"fmt"
	"math"
	"strconv"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Surrogate kinds accepted by Surrogate.Kind.
const (
	// SurrogateFastSigmoid: s(x) = 1/(1+k|x|)², k = Slope (default 25);
	// snnTorch surrogate.fast_sigmoid (Zenke & Ganguli 2018, SuperSpike).
	SurrogateFastSigmoid = "fast_sigmoid"
	// SurrogateAtan: s(x) = α/2 / (1+(π/2·α·x)²), α = Slope (default 2);
	// snnTorch surrogate.atan (Fang et al. 2021).
	SurrogateAtan = "atan"
	// SurrogateSigmoid: s(x) = k·σ(kx)·(1−σ(kx)), k = Slope (default 25),
	// computed without overflow for any x; snnTorch surrogate.sigmoid.
	SurrogateSigmoid = "sigmoid"
	// SurrogateTriangular: s(x) = k·max(0, 1−k|x|), k = Slope (default 1):
	// a triangle of height k and half-width 1/k whose area is 1, so it is the
	// derivative of a piecewise-quadratic step. snnTorch's "triangular" is a
	// different, threshold-scaled rule (its backward is ±threshold·grad
	// depending on the side of the threshold); lsfuse uses this
	// area-one triangle (Esser et al. 2016, Bellec et al. 2018 use the same
	// shape) because it is a proper surrogate derivative with an exact
	// antiderivative.
	SurrogateTriangular = "triangular"
	// SurrogateStraightThrough: s(x) = 1, the straight-through estimator
	// (Bengio et al. 2013). Slope is ignored.
	SurrogateStraightThrough = "straight_through"
)

// Surrogate selects the backward pass of Spike: the forward is the
// Heaviside step H(x) = 1 if x > 0 else 0 (strict, as snnTorch), whose true
// derivative is zero almost everywhere; training instead multiplies the
// incoming gradient by a smooth surrogate derivative s(x).
//
// The zero value is the fast-sigmoid surrogate with slope 25, the
// snnTorch default.
type Surrogate struct {
	// Kind is one of the Surrogate* constants; "" means fast_sigmoid.
	// Unknown kinds are errors.
	Kind string
	// Slope is the sharpness k (α for atan, half-width 1/k for triangular);
	// 0 selects the kind's default (fast_sigmoid 25, atan 2, sigmoid 25,
	// triangular 1). Negative slopes are errors.
	Slope float64
	// Scale multiplies the surrogate derivative; 0 means 1. Use Off, not
	// Scale, to switch the surrogate off.
	Scale float64
	// Off makes the backward pass return exact zeros: the "surrogate off"
	// control, in which nothing upstream of the spikes learns. (A separate
	// flag rather than Scale 0, so that the zero value of Scale can mean 1.)
	Off bool
	// Smooth replaces the Heaviside forward by m·F(x), where F is the
	// antiderivative of s with F(−∞) = 0 and m the backward multiplier
	// (Scale, or 0 when Off), so the forward's true derivative is exactly the
	// backward. Only for finite-difference gradient checks of whole spiking
	// graphs; never for training or inference.
	Smooth bool
}

// Resolved returns s with defaults filled in (Kind, Slope, Scale), or an
// error naming the bad field.
func (s Surrogate) Resolved() (Surrogate, error) {
	if s.Kind == "" {
		s.Kind = SurrogateFastSigmoid
	}
	var def float64
	switch s.Kind {
	case SurrogateFastSigmoid, SurrogateSigmoid:
		def = 25
	case SurrogateAtan:
		def = 2
	case SurrogateTriangular, SurrogateStraightThrough:
		def = 1
	default:
		return s, fmt.Errorf("surrogate: unknown kind %q (want fast_sigmoid, atan, sigmoid, triangular or straight_through)", s.Kind)
	}
	if s.Slope < 0 || math.IsNaN(s.Slope) || math.IsInf(s.Slope, 0) {
		return s, fmt.Errorf("surrogate %s: slope must be a positive number, got %g", s.Kind, s.Slope)
	}
	if s.Slope == 0 {
		s.Slope = def
	}
	if math.IsNaN(s.Scale) || math.IsInf(s.Scale, 0) {
		return s, fmt.Errorf("surrogate %s: scale must be finite, got %g", s.Kind, s.Scale)
	}
	if s.Scale == 0 {
		s.Scale = 1
	}
	return s, nil
}

// multiplier is the factor on the surrogate derivative (and on the smooth
// forward): Scale, or 0 when Off. s must be resolved.
func (s Surrogate) multiplier() float64 {
	if s.Off {
		return 0
	}
	return s.Scale
}

// Deriv returns the backward factor m·s(x) at x (m = Scale, 0 when Off).
// s must be resolved (see Resolved).
func (s Surrogate) Deriv(x float64) float64 {
	m := s.multiplier()
	if m == 0 {
		return 0
	}
	k := s.Slope
	switch s.Kind {
	case SurrogateFastSigmoid:
		d := 1 + k*math.Abs(x)
		return m / (d * d)
	case SurrogateAtan:
		u := math.Pi / 2 * k * x
		return m * k / 2 / (1 + u*u)
	case SurrogateSigmoid:
		p := stableSigmoid(k * x)
		return m * k * p * stableSigmoid(-k*x)
	case SurrogateTriangular:
		return m * k * math.Max(0, 1-k*math.Abs(x))
	}
	return m // straight-through
}

// SmoothForward returns m·F(x), the antiderivative of Deriv with F(−∞) = 0
// (F(x) = x for straight-through, which has no finite lower limit).
// s must be resolved.
func (s Surrogate) SmoothForward(x float64) float64 {
	m := s.multiplier()
	k := s.Slope
	var f float64
	switch s.Kind {
	case SurrogateFastSigmoid:
		// d/dx [x/(1+k|x|)] = 1/(1+k|x|)²; the range is (0, 2/k).
		f = x/(1+k*math.Abs(x)) + 1/k
	case SurrogateAtan:
		f = math.Atan(math.Pi/2*k*x)/math.Pi + 0.5
	case SurrogateSigmoid:
		f = stableSigmoid(k * x)
	case SurrogateTriangular:
		u := k * x
		switch {
		case u <= -1:
			f = 0
		case u < 0:
			f = 0.5 * (1 + u) * (1 + u)
		case u < 1:
			f = 1 - 0.5*(1-u)*(1-u)
		default:
			f = 1
		}
	default:
		f = x
	}
	return m * f
}

// String identifies the resolved surrogate in op names.
func (s Surrogate) String() string {
	return fmt.Sprintf("%s(k=%s,m=%s,smooth=%t)", s.Kind, spikeFmt(s.Slope), spikeFmt(s.multiplier()), s.Smooth)
}

// stableSigmoid is 1/(1+e^{−z}) without overflow for large |z|.
func stableSigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

func spikeFmt(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Spike is the spiking non-linearity: elementwise H(x) = 1 if x > 0 else 0
// (strict, as snnTorch) on any float tensor, with backward
// grad·m·s(x) for the surrogate derivative s selected by sur (see
// Surrogate). With sur.Smooth the forward is the surrogate's antiderivative
// instead (gradient checks only). The op behaves the same in training and
// evaluation. Unknown surrogate kinds are errors.
func Spike(x *G.Node, sur Surrogate) (*G.Node, error) {
	s, err := sur.Resolved()
	if err != nil {
		return nil, err
	}
	fwd := func(v float64) float64 {
		if v > 0 {
			return 1
		}
		return 0
	}
	if s.Smooth {
		fwd = s.SmoothForward
	}
	return Pointwise(x, "Spike"+s.String(), fwd, s.Deriv)
}

// Heaviside returns H(x) = 1 if x > 0 else 0 elementwise, with no gradient:
// a detached step, e.g. the reset signal of a LIF neuron, which snnTorch
// detaches from the graph.
func Heaviside(x *G.Node) (*G.Node, error) {
	return Pointwise(x, "Heaviside", func(v float64) float64 {
		if v > 0 {
			return 1
		}
		return 0
	}, nil)
}

// Pointwise applies the scalar function f to every element of x (any
// shape, float32 or float64). Its backward is grad·df(x) elementwise; a nil
// df makes the op non-differentiable (no gradient flows to x). name must
// identify f and every constant it closes over: Gorgonia merges ops with
// equal names and inputs. The backward op is not itself differentiable
// (no second derivatives).
func Pointwise(x *G.Node, name string, f, df func(float64) float64) (*G.Node, error) {
	if err := checkPointwiseInput(x, name); err != nil {
		return nil, err
	}
	k := &Kernel{
		Name:  name,
		Shape: sameShapeAsFirst,
		Forward: func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return pointwiseMap(in[0], dst, f), nil
		},
	}
	if df != nil {
		k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
			g, err := pointwiseGrad(name, in[0], grad, df)
			return G.Nodes{g}, err
		}
	}
	return Apply(k, x)
}

// checkPointwiseInput checks that x is a non-scalar float32 or float64
// node.
func checkPointwiseInput(x *G.Node, name string) error {
	if x == nil {
		return fmt.Errorf("%s: nil input", name)
	}
	if dt := x.Dtype(); dt != tensor.Float64 && dt != tensor.Float32 {
		return fmt.Errorf("%s: input dtype %v, want float32 or float64", name, dt)
	}
	if x.Shape().Dims() == 0 {
		return fmt.Errorf("%s: scalar input not supported, reshape to [1]", name)
	}
	return nil
}

// pointwiseGrad is the backward op of Pointwise: grad·df(x).
func pointwiseGrad(name string, x, grad *G.Node, df func(float64) float64) (*G.Node, error) {
	k := &Kernel{
		Name:  name + "/grad",
		Shape: sameShapeAsFirst,
		Forward: func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			if !in[0].Shape().Eq(in[1].Shape()) {
				return nil, fmt.Errorf("gradient shape %v, input %v", in[1].Shape(), in[0].Shape())
			}
			return pointwiseZip(in[0], in[1], dst, func(x, g float64) float64 { return g * df(x) }), nil
		},
	}
	return Apply(k, x, grad)
}

func sameShapeAsFirst(in []tensor.Shape) (tensor.Shape, error) { return in[0].Clone(), nil }

// pointwiseMap returns f applied to each element of a, in a's dtype,
// written to dst when it fits (see Output).
func pointwiseMap(a, dst *tensor.Dense, f func(float64) float64) *tensor.Dense {
	out := Output(dst, a.Dtype(), a.Shape())
	switch a.Dtype() {
	case tensor.Float64:
		src, o := Slice[float64](a), Slice[float64](out)
		for i, v := range src {
			o[i] = f(v)
		}
	case tensor.Float32:
		src, o := Slice[float32](a), Slice[float32](out)
		for i, v := range src {
			o[i] = float32(f(float64(v)))
		}
	}
	return out
}

// pointwiseZip returns f(a_i, b_i) for tensors of equal size and dtype,
// written to dst when it fits (see Output).
func pointwiseZip(a, b, dst *tensor.Dense, f func(x, y float64) float64) *tensor.Dense {
	out := Output(dst, a.Dtype(), a.Shape())
	switch a.Dtype() {
	case tensor.Float64:
		src, sb, o := Slice[float64](a), Slice[float64](b), Slice[float64](out)
		for i, v := range src {
			o[i] = f(v, sb[i])
		}
	case tensor.Float32:
		src, sb, o := Slice[float32](a), Slice[float32](b), Slice[float32](out)
		for i, v := range src {
			o[i] = float32(f(float64(v), float64(sb[i])))
		}
	}
	return out
}
