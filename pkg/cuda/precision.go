package cuda

import (
	"fmt"
	"math"
)

// Precision is the input format of the executor's GEMMs (MixedPrecision):
// PrecisionOff multiplies float32 values; PrecisionFP16 and PrecisionBF16
// round both inputs of every GEMM to IEEE binary16 or bfloat16 first and
// accumulate the products in float32 into float32 outputs.
type Precision string

// The GEMM input formats (train.mixed_precision).
const (
	PrecisionOff  Precision = "off"
	PrecisionFP16 Precision = "fp16"
	PrecisionBF16 Precision = "bf16"
)

// ParsePrecision maps a train.mixed_precision value ("" means off) to a
// Precision.
func ParsePrecision(s string) (Precision, error) {
	switch p := Precision(s); p {
	case "", PrecisionOff:
		return PrecisionOff, nil
	case PrecisionFP16, PrecisionBF16:
		return p, nil
	}
	return "", fmt.Errorf("cuda: mixed precision %q: want off, fp16 or bf16", s)
}

// roundKernel is the kernel that rounds float32 values to p's format
// (kernels/precision.cu), "" for PrecisionOff.
func (p Precision) roundKernel() string {
	switch p {
	case PrecisionFP16:
		return "lsf_round_f16"
	case PrecisionBF16:
		return "lsf_round_bf16"
	}
	return ""
}

// RoundFP16 is x rounded to the nearest IEEE 754 binary16 value (ties to
// even), returned as the float32 that holds it exactly: 11 significant
// bits, subnormals down to 2^-24, magnitudes from 65520 up to +Inf (with
// x's sign). NaN stays NaN. It is lsf_round_f16 of kernels/precision.cu.
func RoundFP16(x float32) float32 {
	b := math.Float32bits(x)
	sign := b & 0x80000000
	a := b ^ sign
	switch {
	case a >= 0x7f800000: // Inf, NaN
		return x
	case a < 0x00800000: // float32 subnormals are below half of 2^-24
		return math.Float32frombits(sign)
	}
	e := int(a>>23) - 127
	if e > 15 {
		return math.Float32frombits(sign | 0x7f800000)
	}
	// The quantum is 2^qe: 10 fraction bits at exponent e, or at -14 for
	// binary16's subnormals; drop is how many of the 24 bits go.
	qe := max(e, -14) - 10
	drop := uint(qe - (e - 23))
	if drop > 24 {
		return math.Float32frombits(sign)
	}
	m := a&0x7fffff | 0x800000
	r, rem, half := m>>drop, m&(1<<drop-1), uint32(1)<<(drop-1)
	if rem > half || rem == half && r&1 == 1 {
		r++
	}
	y := float32(math.Ldexp(float64(r), qe))
	if y > 65504 {
		y = float32(math.Inf(1))
	}
	return math.Float32frombits(math.Float32bits(y) | sign)
}

// RoundBF16 is x rounded to the nearest bfloat16 value (ties to even),
// returned as a float32: float32's exponent range with 8 significant
// bits. Overflow carries into +-Inf; NaN stays NaN. It is lsf_round_bf16
// of kernels/precision.cu.
func RoundBF16(x float32) float32 {
	b := math.Float32bits(x)
	if b&0x7fffffff > 0x7f800000 {
		return x
	}
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b & 0xffff0000)
}
