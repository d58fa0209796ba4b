package cuda

import (
	"sort"
	"strings"
	"testing"
)

// TestKernelSourcesMatchTable parses the embedded sources and checks that
// the kernels defined there and KernelParams agree name for name and
// parameter for parameter, so a launch checked by checkArgs passes what
// the kernel reads.
func TestKernelSourcesMatchTable(t *testing.T) {
	src, err := Source()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"kernels/elementwise.cu", "kernels/reduce.cu", "kernels/layers.cu", "kernels/fusion.cu", "kernels/temporal.cu"} {
		if !strings.Contains(src, "// ---- "+f+" ----") {
			t.Errorf("source lacks %s", f)
		}
	}
	got, err := ParseKernels(src)
	if err != nil {
		t.Fatal(err)
	}
	for name, kinds := range got {
		want, ok := KernelParams[name]
		if !ok {
			t.Errorf("kernel %s (%s) is not in KernelParams", name, kinds)
		} else if kinds != want {
			t.Errorf("kernel %s parameters %q in the source, %q in KernelParams", name, kinds, want)
		}
	}
	for name := range KernelParams {
		if _, ok := got[name]; !ok {
			t.Errorf("KernelParams names %s, which no source defines", name)
		}
	}
	if len(got) < 60 {
		t.Errorf("parsed %d kernels, want at least 60", len(got))
	}
}

// TestParseKernelsRejects checks the source checks on broken inputs.
func TestParseKernelsRejects(t *testing.T) {
	cases := []struct{ src, want string }{
		{"extern \"C\" __global__ void a(float* x, int n) { if (n) { x[0] = 1; }\n", "never closed"},
		{"extern \"C\" __global__ void a(float* x) { x[0] = 1; }}\n", "unmatched"},
		{"extern \"C\" __global__ void a(float* x) {}\nextern \"C\" __global__ void a(float* x) {}\n", "defined twice"},
		{"extern \"C\" __global__ void a(double* x) {}\n", "unsupported parameter"},
		{"extern \"C\" __global__ void a(short* x) {}\n", "unsupported parameter"},
	}
	for _, c := range cases {
		_, err := ParseKernels(c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseKernels(%q) = %v, want an error containing %q", c.src, err, c.want)
		}
	}
	// Braces inside comments do not count; parameters parse by kind.
	got, err := ParseKernels("// {\n/* ( */ extern \"C\" __global__ void k(const float* a, const int* i, unsigned short* h, int n, float s) {}\n")
	if err != nil || got["k"] != "pqhif" {
		t.Errorf("ParseKernels = %v, %v; want k: pqhif", got, err)
	}
}

func TestCheckArgs(t *testing.T) {
	b := Buffer{Ptr: 1, N: 4}
	if err := checkArgs("lsf_add", []any{b, b, b, 4}); err != nil {
		t.Errorf("valid lsf_add launch: %v", err)
	}
	cases := []struct {
		name string
		args []any
		want string
	}{
		{"lsf_nope", nil, "unknown kernel lsf_nope"},
		{"lsf_add", []any{b, b, 4}, "takes 4 arguments, got 3"},
		{"lsf_add", []any{b, b, b, 1.5}, "argument 3 is float64"},
		{"lsf_scale", []any{b, 2, b, 4}, "argument 1 is int"},
		{"lsf_pack_f16", []any{b, 1.5, 4}, "argument 1 is float64, want kind 'h'"},
	}
	for _, c := range cases {
		err := checkArgs(c.name, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("checkArgs(%s, %v) = %v, want %q", c.name, c.args, err, c.want)
		}
	}
}

func TestPackArgs(t *testing.T) {
	got := packArgs([]any{Buffer{Ptr: 0x7f0012345678}, -1, int32(7), float32(1.5), 0.25})
	want := []uint64{0x7f0012345678, 0xffffffff, 7, 0x3fc00000, 0x3e800000}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("slot %d = %#x, want %#x", i, got[i], want[i])
		}
	}
}

func TestCacheKey(t *testing.T) {
	a := CacheKey("src", "sm_90", "13.0")
	if len(a) != 32 {
		t.Fatalf("key %q: want 32 hex digits", a)
	}
	others := []string{CacheKey("src2", "sm_90", "13.0"), CacheKey("src", "sm_80", "13.0"), CacheKey("src", "sm_90", "12.4")}
	sort.Strings(others)
	for _, o := range others {
		if o == a {
			t.Errorf("changing source, arch or compiler kept key %s", a)
		}
	}
	if CacheKey("src", "sm_90", "13.0") != a {
		t.Error("the key is not deterministic")
	}
}
