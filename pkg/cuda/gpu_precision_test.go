//go:build cudagpu

// GPU tests of mixed precision (train.mixed_precision): the conversion
// kernels against their Go transcriptions, bit for bit, and bench-small's
// step with fp16 and bf16 GEMM inputs against vm.Machine. The timing test
// (gpu_machine_test.go) times them when MIXED is set.

package cuda

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGPURoundKernels runs lsf_round_f16 and lsf_round_bf16 over every
// finite value of their format, the midpoints between neighbours
// (formatCases), random float32 bit patterns (every exponent, subnormals,
// Inf) and overflow: the results must be RoundFP16's and RoundBF16's bit
// for bit.
func TestGPURoundKernels(t *testing.T) {
	d := gpu(t)
	r := rand.New(rand.NewPCG(5, 7))
	for _, c := range []struct {
		p      Precision
		round  func(float32) float32
		decode func(uint16) float32
		last   uint16
	}{{PrecisionFP16, RoundFP16, decodeFP16, 0x7bff}, {PrecisionBF16, RoundBF16, decodeBF16, 0x7f7f}} {
		xs, _ := formatCases(c.decode, c.last)
		for range 1 << 16 {
			if x := math.Float32frombits(r.Uint32()); x == x {
				xs = append(xs, x)
			}
		}
		xs = append(xs, 65519, 65520, -65520, math.MaxFloat32, float32(math.Inf(-1)), 1e-40)
		in, out := up(t, d, xs), zeros(t, d, len(xs))
		must(t, d.Launch1D(c.p.roundKernel(), len(xs), in, out, len(xs)))
		got := down(t, d, out, len(xs))
		bad := 0
		for i, x := range xs {
			if want := c.round(x); math.Float32bits(got[i]) != math.Float32bits(want) && bad < 10 {
				bad++
				t.Errorf("%s(%g) on the GPU = %g, Go %g", c.p.roundKernel(), x, got[i], want)
			}
		}
		must(t, d.Free(in))
		must(t, d.Free(out))
	}
}

// TestGPUMachineMixedPrecision runs bench-small's training step (B=32,
// T=8) on the GPU Machine in float32, fp16 and bf16 and checks the mixed
// runs against vm.Machine's with checkMixed's tolerances.
func TestGPUMachineMixedPrecision(t *testing.T) {
	sess := gpuSession(t)
	defer sess.Close()
	const batch, steps = 32, 8
	want := vmStep(t, batch, steps)
	f32 := machineStep(t, sess, PrecisionOff, batch, steps)
	for _, p := range []Precision{PrecisionFP16, PrecisionBF16} {
		checkMixed(t, p, machineStep(t, sess, p, batch, steps), f32, want)
	}
}
