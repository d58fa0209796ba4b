//go:build cudagpu && linux && (amd64 || arm64)

// GPU tests of mixed precision (train.mixed_precision): the pack kernels
// against their Go transcriptions, bit for bit, cublasGemmEx and
// cublasGemmBatchedEx on packed operands, and bench-small's step with
// fp16 and bf16 GEMM inputs against vm.Machine. The timing test
// (gpu_machine_test.go) times them when MIXED is set.

package cuda

import "testing"

// TestGPUPackKernels runs lsf_pack_f16 and lsf_pack_bf16 over every
// finite value of their format, every midpoint between neighbours with a
// float32 step either side (formatCases), 2^24 random float32 bit
// patterns (every exponent, subnormals, Inf, NaN) and special values
// (packCases): the 16-bit results must be FP16Bits' and BF16Bits' bit for
// bit (checkPackKernels).
func TestGPUPackKernels(t *testing.T) {
	d := gpu(t)
	for _, p := range []Precision{PrecisionFP16, PrecisionBF16} {
		checkPackKernels(t, d, p, 1<<24)
	}
}

// TestGPUGemmEx multiplies packed fp16 and bf16 operands with
// Device.GemmEx and Device.GemmBatchedEx (odd 16-bit offsets, padded
// rows, a transposed A, beta ≠ 0) against a float64 GEMM of the rounded
// inputs (checkGemmEx).
func TestGPUGemmEx(t *testing.T) {
	d := gpu(t)
	for _, p := range []Precision{PrecisionFP16, PrecisionBF16} {
		checkGemmEx(t, d, p)
	}
}

// TestGPUMachineMixedPrecision runs bench-small's training step (B=32,
// T=8) on the GPU Machine in float32, fp16 and bf16 (packed operands,
// cublasGemmEx / cublasGemmBatchedEx) and checks the mixed runs against
// vm.Machine's with checkMixed's tolerances.
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
