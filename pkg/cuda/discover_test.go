package cuda

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeTree creates the files (paths relative to root) and returns root.
func fakeTree(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("ELF"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestSearchDirsOrder checks the search order: LSFUSE_CUDA_LIBS first,
// pip nvidia/*/lib folders (virtualenv before system Python), CUDA_HOME,
// /usr/local/cuda/lib64, then system folders; missing folders dropped.
func TestSearchDirsOrder(t *testing.T) {
	root := fakeTree(t,
		"opt/mylibs/libcublas.so.12",
		"venv/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.12",
		"venv/lib/python3.12/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12",
		"usr/local/lib/python3.11/dist-packages/nvidia/cu13/lib/libcublas.so.13",
		"usr/local/cuda/lib64/libnvrtc.so.12",
		"usr/lib/x86_64-linux-gnu/libcuda.so.1",
	)
	got := SearchDirs(root, envOf(map[string]string{EnvLibs: "/opt/mylibs:/does/not/exist", "VIRTUAL_ENV": "/venv"}))
	want := []string{
		"/opt/mylibs",
		"/venv/lib/python3.12/site-packages/nvidia/cublas/lib",
		"/venv/lib/python3.12/site-packages/nvidia/cuda_nvrtc/lib",
		"/usr/local/lib/python3.11/dist-packages/nvidia/cu13/lib",
		"/usr/local/cuda/lib64",
		"/usr/lib/x86_64-linux-gnu",
		"/usr/lib", // exists as the parent of the folder above
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SearchDirs =\n%q\nwant\n%q", got, want)
	}
}

// TestCandidates checks per-folder ordering (newest major first, exact
// soname before longer versions, libcublasLt never taken for libcublas,
// libcuda only major 1) and that bare sonames come last.
func TestCandidates(t *testing.T) {
	root := fakeTree(t,
		"a/libcublas.so.12", "a/libcublas.so.12.4.5", "a/libcublas.so.13", "a/libcublasLt.so.13", "a/libcublas.so",
		"b/libcublas.so.11",
		"c/libcuda.so.1", "c/libcuda.so.535.1", "c/libcuda.so",
		"d/libnvrtc.so.13", "d/libnvrtc-builtins.so.13",
	)
	cases := []struct {
		lib  Library
		dirs []string
		want []string
	}{
		{CuBLAS, []string{"/a", "/b"}, []string{"/a/libcublas.so.13", "/a/libcublas.so.12", "/a/libcublas.so.12.4.5", "/a/libcublas.so",
			"/b/libcublas.so.11", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}},
		{Driver, []string{"/c"}, []string{"/c/libcuda.so.1", "/c/libcuda.so", "libcuda.so.1"}},
		{NVRTC, []string{"/d"}, []string{"/d/libnvrtc.so.13", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11", "libnvrtc.so"}},
	}
	for _, c := range cases {
		if got := Candidates(c.lib, root, c.dirs); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Candidates(%v) =\n%q\nwant\n%q", c.lib, got, c.want)
		}
	}
}

// TestMissingErrorMessages checks that each message names what is
// missing and how to fix it.
func TestMissingErrorMessages(t *testing.T) {
	cause := errors.New("libcuda.so.1: cannot open shared object file")
	cases := []struct {
		err  *MissingError
		want []string
	}{
		{&MissingError{What: "driver", Name: "driver", Tried: []string{"/x/libcuda.so.1", "libcuda.so.1"}, Err: cause},
			[]string{"CUDA driver not found", "libcuda.so.1", "tried /x/libcuda.so.1, libcuda.so.1", "install the NVIDIA driver", "--device cpu", "cannot open shared object"}},
		{&MissingError{What: "driver", Name: "cuInit failed", Err: errors.New("CUDA error 100: no CUDA-capable device is detected")},
			[]string{"CUDA driver unusable: cuInit failed", "error 100"}},
		{&MissingError{What: "library", Name: "cublas", Tried: []string{"libcublas.so.13"}},
			[]string{"CUDA library cublas not found", "nvidia-cublas", EnvLibs, "libcublas.so.N", "use --device cpu"}},
		{&MissingError{What: "library", Name: "nvrtc"},
			[]string{"CUDA library nvrtc not found", "libnvrtc.so.N"}},
		{&MissingError{What: "device", Name: "the driver sees no GPU"},
			[]string{"no CUDA device: the driver sees no GPU", "--device cpu"}},
	}
	for _, c := range cases {
		msg := c.err.Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q lacks %q", msg, w)
			}
		}
		if what, ok := IsMissing(errors.Join(errors.New("wrapped"), c.err)); !ok || what != c.err.What {
			t.Errorf("IsMissing = %q, %v; want %q", what, ok, c.err.What)
		}
	}
	if _, ok := IsMissing(errors.New("other")); ok {
		t.Error("IsMissing accepted a plain error")
	}
}

func TestCachedModule(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	builds := 0
	build := func() ([]byte, error) { builds++; return []byte("cubin"), nil }
	b, hit, err := cachedModule(dir, "k1", build)
	if err != nil || hit || string(b) != "cubin" || builds != 1 {
		t.Fatalf("first = %q, %v, %v (builds %d)", b, hit, err, builds)
	}
	b, hit, err = cachedModule(dir, "k1", build)
	if err != nil || !hit || string(b) != "cubin" || builds != 1 {
		t.Fatalf("second = %q, %v, %v (builds %d): want a cache hit", b, hit, err, builds)
	}
	if _, _, err := cachedModule(dir, "k2", func() ([]byte, error) { return nil, errors.New("log: error 1") }); err == nil || !strings.Contains(err.Error(), "log: error 1") {
		t.Errorf("compile failure: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "k2.cubin")); !os.IsNotExist(err) {
		t.Errorf("a failed compile left a cache file: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if got := CacheDir(envOf(map[string]string{EnvCache: "/x/y"})); got != "/x/y" {
		t.Errorf("CacheDir with %s = %q", EnvCache, got)
	}
}

// TestResolveDevice checks --device resolution with fake probes.
func TestResolveDevice(t *testing.T) {
	h200 := &ProbeResult{Devices: []DeviceInfo{{Name: "NVIDIA H200", Major: 9, Minor: 0, MemBytes: 140 << 30}}}
	noDriver := func() (*ProbeResult, error) {
		return nil, &MissingError{What: "driver", Name: "driver"}
	}
	noGPU := func() (*ProbeResult, error) { return &ProbeResult{}, nil }
	gpu := func() (*ProbeResult, error) { return h200, nil }
	probed := false
	s, err := Resolve("cpu", func() (*ProbeResult, error) { probed = true; return nil, nil })
	if err != nil || s.Device != "cpu" || probed {
		t.Errorf("cpu: %+v, %v, probed %v", s, err, probed)
	}
	_, err = Resolve("cuda", noDriver)
	if what, _ := IsMissing(err); what != "driver" {
		t.Errorf("cuda without driver: %v", err)
	}
	_, err = Resolve("cuda", noGPU)
	if what, _ := IsMissing(err); what != "device" || !strings.Contains(err.Error(), "no CUDA device") {
		t.Errorf("cuda without GPU: %v", err)
	}
	if ExecutorAvailable {
		s, err = Resolve("auto", noDriver)
		if err != nil || s.Device != "cpu" || !strings.Contains(s.Reason, "CUDA driver not found") {
			t.Errorf("auto without driver: %+v, %v", s, err)
		}
		s, err = Resolve("auto", gpu)
		if err != nil || s.Device != "cuda" {
			t.Errorf("auto with GPU: %+v, %v", s, err)
		}
		s, err = Resolve("", noGPU)
		if err != nil || s.Device != "cpu" || !strings.Contains(s.Reason, "no CUDA device") {
			t.Errorf("auto without GPU: %+v, %v", s, err)
		}
		s, err = Resolve("cuda", gpu)
		if err != nil || s.Device != "cuda" || s.Probe != h200 {
			t.Errorf("cuda with GPU: %+v, %v", s, err)
		}
	} else {
		probed = false
		s, err = Resolve("auto", func() (*ProbeResult, error) { probed = true; return h200, nil })
		if err != nil || s.Device != "cpu" || probed || !strings.Contains(s.Reason, "executor is not finished") {
			t.Errorf("auto, no executor: %+v, %v, probed %v (want cpu without probing)", s, err, probed)
		}
		_, err = Resolve("cuda", gpu)
		if !errors.Is(err, ErrNoExecutor) || !strings.Contains(err.Error(), "NVIDIA H200 (sm_90, 140 GiB)") {
			t.Errorf("cuda with GPU, no executor: %v", err)
		}
	}
	if _, err := Resolve("tpu", gpu); err == nil || !strings.Contains(err.Error(), `unknown device "tpu"`) {
		t.Errorf("tpu: %v", err)
	}
}
