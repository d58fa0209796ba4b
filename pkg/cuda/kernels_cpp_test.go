package cuda

import (
	"bytes"
	"os/exec"
	"testing"
)

// cudaAsCpp maps the CUDA C the kernels use onto plain C++ (one "thread"
// with zero indices), enough for a host compiler to check the sources'
// syntax and types: NVRTC only sees them on a GPU machine.
const cudaAsCpp = `#include <math.h>
#include <string.h>
struct lsf_dim3 { unsigned x, y, z; };
static lsf_dim3 blockIdx, threadIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __shared__ static
static void __syncthreads() {}
static float atomicAdd(float* p, float v) { float o = *p; *p += v; return o; }
static float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static unsigned __float_as_uint(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
static float __uint_as_float(unsigned u) { float x; memcpy(&x, &u, 4); return x; }
`

// TestKernelsCompileAsCpp runs the embedded kernel sources through the
// host C++ compiler (g++ -fsyntax-only) with CUDA's keywords and builtins
// stubbed: a typo or type error in kernels/*.cu fails here rather than in
// NVRTC on the first GPU run. Skipped without g++.
func TestKernelsCompileAsCpp(t *testing.T) {
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("g++ not installed")
	}
	src, err := Source()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gxx, "-std=c++14", "-fsyntax-only", "-Werror=return-type", "-x", "c++", "-")
	cmd.Stdin = bytes.NewBufferString(cudaAsCpp + src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kernels/*.cu do not compile as C++: %v\n%s", err, out)
	}
}
