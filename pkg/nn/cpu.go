package nn

import (
	"runtime"

	"golang.org/x/sys/cpu"
)

// cpuFeatures is what the GEMM kernels may use on this machine, detected
// once at start-up (it never changes while the process runs).
type cpuFeatures struct {
	// AVX2FMA: 256-bit AVX2 with fused multiply-add (Haswell, Zen 1 and
	// newer), and the OS saves the YMM state.
	AVX2FMA bool
	// AVX512: AVX-512 Foundation with the OS saving the ZMM state
	// (Skylake-SP, Ice Lake, Zen 4 and newer).
	AVX512 bool
}

var detected = detectCPU()

func detectCPU() cpuFeatures {
	if runtime.GOARCH != "amd64" {
		return cpuFeatures{}
	}
	x := cpu.X86
	f := cpuFeatures{AVX2FMA: x.HasAVX && x.HasAVX2 && x.HasFMA && x.HasOSXSAVE}
	f.AVX512 = f.AVX2FMA && x.HasAVX512F
	return f
}

// CPUFeatures describes the vector instruction sets lsfuse's compute
// kernels detected and use on this machine: "avx512", "avx2+fma" or
// "generic" (portable Go). For logs and benchmark reports.
func CPUFeatures() string {
	switch {
	case detected.AVX512:
		return "avx512"
	case detected.AVX2FMA:
		return "avx2+fma"
	}
	return "generic"
}

// ParallelFor splits [0, n) into at most GOMAXPROCS contiguous chunks and
// runs body(worker, lo, hi) for each concurrently, returning when all are
// done; worker indices are 0..k−1 so bodies can own per-worker scratch.
// The executor (pkg/vm) runs one op at a time, so parallelism lives inside ops
// (DESIGN.md §3): fused kernels of other packages split their batch with
// it.
func ParallelFor(n int, body func(worker, lo, hi int)) { parallelFor(n, body) }

// ParallelRange runs body over [0, n) in one chunk per core when n is
// large enough (2^15 elements) to pay for the hand-off, else in one call:
// for elementwise loops.
func ParallelRange(n int, body func(lo, hi int)) {
	const minParallel = 1 << 15
	if n < minParallel {
		body(0, n)
		return
	}
	parallelFor(n, func(_, lo, hi int) { body(lo, hi) })
}

// Workers returns how many workers ParallelFor uses for n items.
func Workers(n int) int { return workersFor(n) }

// GetScratch returns a pooled slice of n elements with undefined contents,
// for a kernel's temporary buffers (a training step then allocates no new
// scratch memory in steady state). Give it back with PutScratch when the
// kernel is done; never keep it past that.
func GetScratch[T Float](n int) *[]T { return getScratch[T](n) }

// PutScratch returns a buffer obtained from GetScratch to the pool.
func PutScratch[T Float](p *[]T) { putScratch(p) }
