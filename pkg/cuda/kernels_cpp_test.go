package cuda

import (
	"bytes"
	"encoding/binary"
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lsfuse/lsfuse/internal/fakecuda"
)

// cudaAsCpp is fakecuda.Prelude for one "thread" at a time (zero indices
// unless the caller sets them, __syncthreads a no-op), enough for a host
// compiler to check the sources' syntax and types and to run kernels
// without barriers: NVRTC only sees them on a GPU machine.
const cudaAsCpp = fakecuda.Prelude + "static void __syncthreads() {}\n"

// TestKernelsCompileAsCpp runs the embedded kernel sources through the
// host C++ compiler (g++ -fsyntax-only) with CUDA's keywords and builtins
// stubbed: a typo or type error in kernels/*.cu fails here rather than in
// NVRTC on the first GPU run. Skipped without g++.
func TestKernelsCompileAsCpp(t *testing.T) {
	gxx, src := gxxAndSource(t)
	cmd := exec.Command(gxx, "-std=c++14", "-fsyntax-only", "-Werror=return-type", "-x", "c++", "-")
	cmd.Stdin = bytes.NewBufferString(cudaAsCpp + src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kernels/*.cu do not compile as C++: %v\n%s", err, out)
	}
}

// packHarness runs a pack kernel of the embedded sources on the host, one
// "thread" after another: float32 values in on stdin, 16-bit codes out on
// stdout (little-endian).
const packHarness = `
#include <stdio.h>
#include <vector>
int main(int argc, char** argv) {
    std::vector<float> a;
    float x;
    while (fread(&x, 4, 1, stdin) == 1) a.push_back(x);
    std::vector<unsigned short> y(a.size() + 1);
    int n = (int)a.size();
    bool bf = argc > 1 && argv[1][0] == 'b';
    blockDim.x = 256;
    for (int i = 0; i < n; i++) {
        blockIdx.x = i / 256;
        threadIdx.x = i % 256;
        if (bf) lsf_pack_bf16(a.data(), y.data(), n); else lsf_pack_f16(a.data(), y.data(), n);
    }
    fwrite(y.data(), 2, n, stdout);
    return 0;
}
`

// TestPackKernelsRunAsCpp compiles the embedded sources with the host C++
// compiler (as TestKernelsCompileAsCpp) and runs lsf_pack_f16 and
// lsf_pack_bf16 over packCases (every value and midpoint of both formats,
// random patterns, NaNs): the CUDA C must give FP16Bits' and BF16Bits'
// codes bit for bit. NVRTC's compilation is only checked on a GPU
// (TestGPUPackKernels). Skipped without g++.
func TestPackKernelsRunAsCpp(t *testing.T) {
	gxx, src := gxxAndSource(t)
	bin := filepath.Join(t.TempDir(), "pack")
	cmd := exec.Command(gxx, "-std=c++14", "-O1", "-w", "-x", "c++", "-o", bin, "-")
	cmd.Stdin = bytes.NewBufferString(cudaAsCpp + src + packHarness)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kernels/*.cu do not build as C++: %v\n%s", err, out)
	}
	for _, c := range []struct {
		p    Precision
		arg  string
		bits func(float32) uint16
	}{{PrecisionFP16, "f", FP16Bits}, {PrecisionBF16, "b", BF16Bits}} {
		xs := packCases(c.p, 1<<16)
		in := make([]byte, 4*len(xs))
		for i, x := range xs {
			binary.LittleEndian.PutUint32(in[4*i:], math.Float32bits(x))
		}
		run := exec.Command(bin, c.arg)
		run.Stdin = bytes.NewReader(in)
		out, err := run.Output()
		if err != nil || len(out) != 2*len(xs) {
			t.Fatalf("%s: %v, %d bytes for %d values", c.p.packKernel(), err, len(out), len(xs))
		}
		bad := 0
		for i, x := range xs {
			if got, want := binary.LittleEndian.Uint16(out[2*i:]), c.bits(x); got != want && bad < 10 {
				bad++
				t.Errorf("%s(%g [%#08x]) compiled as C++ = %#04x, Go %#04x", c.p.packKernel(), x, math.Float32bits(x), got, want)
			}
		}
	}
}

// gxxAndSource is the host C++ compiler and the kernel sources; the test
// is skipped without g++.
func gxxAndSource(t *testing.T) (string, string) {
	t.Helper()
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("g++ not installed")
	}
	src, err := Source()
	if err != nil {
		t.Fatal(err)
	}
	return gxx, src
}
