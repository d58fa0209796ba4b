//go:build linux && (amd64 || arm64)

package cuda

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lsfuse/lsfuse/internal/fakecuda"
)

// envRequireLibs, when set (CI sets it), turns a missing CUDA library
// into a failure instead of a skip in the tests below.
const envRequireLibs = "LSFUSE_REQUIRE_CUDA_LIBS"

// TestRealLibrariesBind binds every function the backend calls against
// the real libcuda.so.1, cuBLAS and NVRTC found on this machine (Debian's
// non-free libcuda1, libcublas11 and libnvrtc11.2 in CI; no GPU needed):
// each symbol name, with its _v2 renaming, must exist. purego cannot check
// a prototype, so the argument lists stay the GPU check's job.
func TestRealLibrariesBind(t *testing.T) {
	dirs := SearchDirs("", os.Getenv)
	var r Runtime
	apis := map[Library]any{Driver: &r.drv, CuBLAS: &r.blas, NVRTC: &r.rtc}
	for _, lib := range []Library{Driver, CuBLAS, NVRTC} {
		h, p, err := openLibrary(lib, dirs)
		if err != nil {
			if os.Getenv(envRequireLibs) != "" {
				t.Fatalf("%s is set but %s is missing: %v", envRequireLibs, lib, err)
			}
			t.Logf("skipping %s: %v", lib, err)
			continue
		}
		if err := bindLibrary(lib, apis[lib], h, p); err != nil {
			t.Errorf("%s (%s): %v", lib, p, err)
			continue
		}
		t.Logf("%s: every symbol bound from %s", lib, p)
	}
	// The hot calls (bindDirect's SyscallN closures) reach the real
	// functions, which refuse at once without a context or handle.
	if r.drv.cuLaunchKernel != nil {
		if c := r.drv.cuLaunchKernel(0, 1, 1, 1, 256, 1, 1, 0, 0, nil, nil); c == 0 {
			t.Error("cuLaunchKernel of no function succeeded")
		}
	}
	if r.blas.cublasSgemm != nil {
		var one float32 = 1
		if s := r.blas.cublasSgemm(0, 0, 0, 1, 1, 1, &one, 0, 1, 0, 1, &one, 0, 1); s == 0 {
			t.Error("cublasSgemm without a handle succeeded")
		}
		if s := r.blas.cublasGemmEx(0, 0, 0, 1, 1, 1, &one, 0, cudaR16F, 1, 0, cudaR16F, 1, &one, 0, cudaR32F, 1, cublasCompute32F, cublasGemmDefault); s == 0 {
			t.Error("cublasGemmEx without a handle succeeded")
		}
	}
}

// TestLoadWithoutGPU runs the backend's discovery on the real libraries
// of a machine that has them but no GPU (CI): loading must fail with a
// *MissingError naming the driver's own message, --device cuda must
// return that error and --device auto must choose the CPU and say why.
// On a machine with a GPU the discovery must instead find it.
func TestLoadWithoutGPU(t *testing.T) {
	dirs := SearchDirs("", os.Getenv)
	for _, lib := range []Library{Driver, CuBLAS, NVRTC} {
		if _, _, err := openLibrary(lib, dirs); err != nil {
			if os.Getenv(envRequireLibs) != "" {
				t.Fatalf("%s is set but %s is missing: %v", envRequireLibs, lib, err)
			}
			t.Skipf("%s missing: %v", lib, err)
		}
	}
	r, err := LoadFrom(dirs)
	probe := func() (*ProbeResult, error) {
		if err != nil {
			return nil, err
		}
		return r.probe()
	}
	p, perr := probe()
	if perr == nil {
		t.Logf("a GPU is present: %v (driver %d)", p.Devices, p.DriverVersion)
		if sel, err := Resolve("auto", probe); err != nil || sel.Device != "cuda" {
			t.Errorf("auto with a GPU: %+v, %v", sel, err)
		}
		return
	}
	var me *MissingError
	if !errors.As(perr, &me) || me.What != "device" {
		t.Fatalf("without a GPU: %v (%T), want a *MissingError for the device", perr, perr)
	}
	msg := perr.Error()
	if !strings.Contains(msg, "CUDA error") {
		t.Errorf("the error does not carry the driver's message: %q", msg)
	}
	t.Logf("without a GPU: %s", msg)
	if _, err := Resolve("cuda", probe); err == nil || err.Error() != msg {
		t.Errorf("--device cuda: %v, want %q", err, msg)
	}
	sel, err := Resolve("auto", probe)
	if err != nil || sel.Device != "cpu" || sel.Reason != msg {
		t.Errorf("--device auto: %+v, %v; want the CPU with reason %q", sel, err, msg)
	}
}

// TestLoadFromEmptyNamesDriver loads from a folder with no libraries:
// on a machine without a driver the error names the driver and lists the
// paths tried; where the libraries load by soname it names a missing
// library or device; on a machine with a GPU stack it may succeed.
func TestLoadFromEmptyNamesDriver(t *testing.T) {
	dir := t.TempDir()
	// A file named like the driver that is not a shared object must be
	// skipped (dlopen fails) and reported in Tried.
	if err := os.WriteFile(filepath.Join(dir, "libcuda.so.1"), []byte("not ELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFrom([]string{dir})
	if err == nil {
		t.Skip("a CUDA driver is installed here")
	}
	t.Logf("LoadFrom: %v", err)
	what, ok := IsMissing(err)
	if !ok {
		t.Fatalf("LoadFrom: %v is not a MissingError", err)
	}
	if what != "driver" && what != "library" && what != "device" {
		t.Errorf("what = %q", what)
	}
	if what == "driver" && !strings.Contains(err.Error(), filepath.Join(dir, "libcuda.so.1")) {
		t.Errorf("%v does not list the fake driver it tried", err)
	}
}

// TestModuleLoadErrorNamesVersions runs the backend's real host path on
// internal/fakecuda's stand-in driver playing one older than NVRTC (its
// cuModuleLoadData refuses the cubin): the first launch fails with an
// error naming NVRTC's version and path, the architecture, the driver's
// CUDA version and what to do. Skipped without g++ or NVRTC.
func TestModuleLoadErrorNamesVersions(t *testing.T) {
	if _, err := exec.LookPath("g++"); err != nil {
		t.Skip("g++ not installed: no stand-in driver")
	}
	if _, _, err := openLibrary(NVRTC, SearchDirs("", os.Getenv)); err != nil {
		t.Skipf("no NVRTC: %v", err)
	}
	src, err := Source()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := fakecuda.Build(t.TempDir(), src, KernelParams)
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadFrom(append([]string{dir}, SearchDirs("", os.Getenv)...))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Paths[Driver], dir) {
		t.Fatalf("driver loaded from %s, want the stand-in in %s", r.Paths[Driver], dir)
	}
	d, err := r.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t.Setenv(EnvCache, t.TempDir())
	t.Setenv("LSFUSE_FAKE_OLD_DRIVER", "1")
	err = d.Launch1D("lsf_fill", 1, Buffer{}, float32(1), 1)
	for _, want := range []string{"NVRTC 1", r.Paths[NVRTC], "sm_90", "driver (CUDA 13.0)", "CUDA error 222", "no newer than the driver", EnvLibs} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
