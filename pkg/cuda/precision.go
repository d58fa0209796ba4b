package cuda

import (
	"fmt"
	"math"
)

// Precision is the input format of the executor's GEMMs (MixedPrecision):
// PrecisionOff multiplies float32 values; PrecisionFP16 and PrecisionBF16
// store both inputs of every GEMM as IEEE binary16 or bfloat16 values
// (rounded to nearest even) and accumulate the products in float32 into
// float32 outputs.
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

// packKernel is the kernel that packs float32 values into p's 16-bit
// format (kernels/precision.cu), "" for PrecisionOff.
func (p Precision) packKernel() string {
	switch p {
	case PrecisionFP16:
		return "lsf_pack_f16"
	case PrecisionBF16:
		return "lsf_pack_bf16"
	}
	return ""
}

// FP16Bits is the IEEE 754 binary16 encoding of x rounded to nearest,
// ties to even: 11 significant bits, subnormals down to 2^-24 (smaller
// magnitudes round to a zero of x's sign), magnitudes from 65520 up to
// ±Inf (0x7c00 with x's sign); NaN becomes the quiet NaN 0x7e00 with
// x's sign. It is lsf_pack_f16 of kernels/precision.cu, line for line.
func FP16Bits(x float32) uint16 {
	b := math.Float32bits(x)
	s := uint16(b>>16) & 0x8000
	a := b & 0x7fffffff
	switch {
	case a > 0x7f800000: // NaN
		return s | 0x7e00
	case a >= 0x47800000: // 2^16 and up, Inf: beyond any rounding to 65504
		return s | 0x7c00
	case a < 0x33000000: // below 2^-25, half the smallest subnormal
		return s
	}
	// r is the 16-bit code before rounding (exponent and fraction, or a
	// subnormal's multiple of 2^-24), rem the bits dropped from the
	// 24-bit significand and half their midpoint. Rounding up may carry
	// into the exponent: 0x03ff+1 is the smallest normal, 0x7bff+1 Inf.
	e := a >> 23
	var r, rem, half uint32
	if e > 112 { // a binary16 normal: exponent e-127 ≥ -14
		r, rem, half = (e-112)<<10|(a>>13)&0x3ff, a&0x1fff, 0x1000
	} else { // a subnormal: the significand in units of 2^-24
		m, drop := a&0x7fffff|0x800000, 126-e
		r, rem, half = m>>drop, m&(1<<drop-1), 1<<(drop-1)
	}
	if rem > half || rem == half && r&1 == 1 {
		r++
	}
	return s | uint16(r)
}

// FP16Value is the value of the binary16 encoding h as a float32 (which
// holds every binary16 value exactly; a NaN keeps its payload).
func FP16Value(h uint16) float32 {
	s := uint32(h&0x8000) << 16
	e, f := uint32(h>>10&0x1f), uint32(h&0x3ff)
	switch e {
	case 0: // zero or subnormal: f·2^-24, exact in float32
		return math.Float32frombits(s | math.Float32bits(float32(f)*0x1p-24))
	case 31: // Inf, NaN
		return math.Float32frombits(s | 0x7f800000 | f<<13)
	}
	return math.Float32frombits(s | (e+112)<<23 | f<<13)
}

// BF16Bits is the bfloat16 encoding of x (float32's upper 16 bits)
// rounded to nearest, ties to even: overflow carries into ±Inf, and a
// NaN stays a NaN (quieted, so that a payload only in the dropped bits
// cannot make it Inf). It is lsf_pack_bf16 of kernels/precision.cu.
func BF16Bits(x float32) uint16 {
	b := math.Float32bits(x)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// BF16Value is the value of the bfloat16 encoding h as a float32.
func BF16Value(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// RoundFP16 is x rounded to the nearest IEEE 754 binary16 value (ties to
// even), returned as the float32 that holds it exactly: 11 significant
// bits, subnormals down to 2^-24, magnitudes from 65520 up to +Inf (with
// x's sign). NaN stays NaN. It is the value a packed fp16 GEMM input
// has, FP16Value(FP16Bits(x)), derived independently in float
// arithmetic (the tests hold the two to each other).
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
// bits. Overflow carries into ±Inf; NaN stays NaN (x itself). It is the
// value a packed bf16 GEMM input has, BF16Value(BF16Bits(x)).
func RoundBF16(x float32) float32 {
	if x != x {
		return x
	}
	return BF16Value(BF16Bits(x))
}
