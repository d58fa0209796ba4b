// Package fakecuda builds, for tests, a stand-in for the CUDA driver and
// cuBLAS that runs on the CPU: libcuda.so.1 and libcublas.so.13 in one
// shared library compiled with g++. Device memory is host memory, the
// stream runs everything at once, kernels are the real CUDA C sources of
// pkg/cuda compiled for the host by the emulator the caller supplies, and
// the cuBLAS calls are plain loops that reject what cuBLAS rejects. With
// its folder first in LSFUSE_CUDA_LIBS, pkg/cuda's real host path — purego
// bindings, launches and their parameter blocks, the GEMM argument
// mapping, copies, the trainer on a session — runs end to end on a
// machine without a GPU. NVRTC is the real one (it must be installed):
// the fake driver accepts its cubin but does not run it. With
// LSFUSE_FAKE_NOEXEC set in the environment, launches and GEMMs are
// checked and counted but not run, so a step costs only its host side.
package fakecuda

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

//go:embed src/driver.cpp
var driverSource string

// Build compiles the fake libraries into dir for the kernel sources src
// with parameter kinds params (pkg/cuda's Source and KernelParams): the
// driver and cuBLAS stand-ins with the Emulator. It returns dir's
// absolute path, which holds libcuda.so.1 and libcublas.so.13 (one
// library under two names).
func Build(dir, src string, params map[string]string) (string, error) {
	gxx, err := exec.LookPath("g++")
	if err != nil {
		return "", fmt.Errorf("fakecuda: needs g++: %w", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	emu, _ := Emulator(src, params)
	file := filepath.Join(dir, "fakecuda.cpp")
	if err := os.WriteFile(file, []byte(emu+"\n"+driverSource), 0o644); err != nil {
		return "", err
	}
	lib := filepath.Join(dir, "libcuda.so.1")
	cmd := exec.Command(gxx, append(slices.Clone(Flags), "-o", lib, file)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("fakecuda: g++: %v\n%s", err, out)
	}
	blas := filepath.Join(dir, "libcublas.so.13")
	os.Remove(blas)
	if err := os.Symlink("libcuda.so.1", blas); err != nil {
		return "", err
	}
	return dir, nil
}
