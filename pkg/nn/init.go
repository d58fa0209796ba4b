package nn

import (
	"fmt"
	"math"
	"math/rand"
)

// Init fills a parameter's initial values. shape is the parameter's shape;
// for weights, shape[0] is fan-out and the product of the remaining axes is
// fan-in (the PyTorch convention for Linear [out,in] and Conv [out,in/g,k..]).
type Init interface {
	Fill(dst []float64, shape []int, rng *rand.Rand) error
	String() string
}

// fans returns PyTorch's fan_in and fan_out for a weight shape.
func fans(shape []int) (fanIn, fanOut int, err error) {
	if len(shape) < 2 {
		return 0, 0, fmt.Errorf("fan-in/fan-out need at least 2 dimensions, got shape %v", shape)
	}
	recept := 1
	for _, d := range shape[2:] {
		recept *= d
	}
	return shape[1] * recept, shape[0] * recept, nil
}

type constInit float64

func (c constInit) Fill(dst []float64, _ []int, _ *rand.Rand) error {
	for i := range dst {
		dst[i] = float64(c)
	}
	return nil
}
func (c constInit) String() string { return fmt.Sprintf("constant(%g)", float64(c)) }

// Zeros initialises to 0 (biases, LayerNorm shift).
func Zeros() Init { return constInit(0) }

// Ones initialises to 1 (LayerNorm and BatchNorm scale).
func Ones() Init { return constInit(1) }

// Constant initialises every element to v.
func Constant(v float64) Init { return constInit(v) }

type uniformInit struct{ lo, hi float64 }

func (u uniformInit) Fill(dst []float64, _ []int, rng *rand.Rand) error {
	for i := range dst {
		dst[i] = u.lo + (u.hi-u.lo)*rng.Float64()
	}
	return nil
}
func (u uniformInit) String() string { return fmt.Sprintf("uniform(%g,%g)", u.lo, u.hi) }

// Uniform draws from U(lo, hi).
func Uniform(lo, hi float64) Init { return uniformInit{lo, hi} }

type normalInit struct{ mean, std float64 }

func (n normalInit) Fill(dst []float64, _ []int, rng *rand.Rand) error {
	for i := range dst {
		dst[i] = n.mean + n.std*rng.NormFloat64()
	}
	return nil
}
func (n normalInit) String() string { return fmt.Sprintf("normal(%g,%g)", n.mean, n.std) }

// Normal draws from N(mean, std²) (embeddings use Normal(0,1) as PyTorch).
func Normal(mean, std float64) Init { return normalInit{mean, std} }

type xavierInit struct{ gain float64 }

func (x xavierInit) Fill(dst []float64, shape []int, rng *rand.Rand) error {
	in, out, err := fans(shape)
	if err != nil {
		return fmt.Errorf("xavier_uniform: %w", err)
	}
	a := x.gain * math.Sqrt(6/float64(in+out))
	return uniformInit{-a, a}.Fill(dst, shape, rng)
}
func (x xavierInit) String() string { return fmt.Sprintf("xavier_uniform(gain=%g)", x.gain) }

// XavierUniform draws from U(-a, a), a = gain·sqrt(6/(fan_in+fan_out))
// (Glorot & Bengio 2010); ncps's CfCCell uses it for all 2-D weights.
func XavierUniform(gain float64) Init { return xavierInit{gain} }

type kaimingInit struct {
	a       float64
	uniform bool
}

func (k kaimingInit) Fill(dst []float64, shape []int, rng *rand.Rand) error {
	in, _, err := fans(shape)
	if err != nil {
		return fmt.Errorf("kaiming: %w", err)
	}
	gain := math.Sqrt(2 / (1 + k.a*k.a))
	std := gain / math.Sqrt(float64(in))
	if k.uniform {
		b := math.Sqrt(3) * std
		return uniformInit{-b, b}.Fill(dst, shape, rng)
	}
	return normalInit{0, std}.Fill(dst, shape, rng)
}
func (k kaimingInit) String() string {
	if k.uniform {
		return fmt.Sprintf("kaiming_uniform(a=%g)", k.a)
	}
	return fmt.Sprintf("kaiming_normal(a=%g)", k.a)
}

// KaimingUniform is He initialisation with leaky-ReLU slope a, fan-in mode.
// KaimingUniform(math.Sqrt(5)) is PyTorch's default for Linear and Conv
// weights.
func KaimingUniform(a float64) Init { return kaimingInit{a, true} }

// KaimingNormal is He initialisation, normal variant, fan-in mode.
func KaimingNormal(a float64) Init { return kaimingInit{a, false} }

type fanInBiasInit struct{ fanIn int }

func (b fanInBiasInit) Fill(dst []float64, shape []int, rng *rand.Rand) error {
	if b.fanIn <= 0 {
		return fmt.Errorf("bias init needs a positive fan-in, got %d", b.fanIn)
	}
	a := 1 / math.Sqrt(float64(b.fanIn))
	return uniformInit{-a, a}.Fill(dst, shape, rng)
}
func (b fanInBiasInit) String() string { return fmt.Sprintf("bias_uniform(fan_in=%d)", b.fanIn) }

// BiasUniform draws from U(-1/sqrt(fanIn), 1/sqrt(fanIn)), PyTorch's default
// bias initialisation for Linear and Conv.
func BiasUniform(fanIn int) Init { return fanInBiasInit{fanIn} }
