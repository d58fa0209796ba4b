//go:build linux && (amd64 || arm64)

package cuda

import (
	"bytes"
	"debug/elf"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// envRequireNVRTC, when set (CI sets it), turns a missing NVRTC into a
// failure instead of a skip.
const envRequireNVRTC = "LSFUSE_REQUIRE_NVRTC"

// loadCompiler loads only NVRTC, from the folders the backend searches.
func loadCompiler(t *testing.T) *rtcAPI {
	t.Helper()
	h, p, err := openLibrary(NVRTC, SearchDirs("", os.Getenv))
	if err != nil {
		if os.Getenv(envRequireNVRTC) != "" {
			t.Fatalf("%s is set but NVRTC is missing: %v", envRequireNVRTC, err)
		}
		t.Skipf("no NVRTC (Debian non-free libnvrtc11.2 or pip nvidia-cuda-nvrtc): %v", err)
	}
	var c rtcAPI
	if err := bindLibrary(NVRTC, &c, h, p); err != nil {
		t.Fatal(err)
	}
	var maj, min int32
	c.nvrtcVersion(&maj, &min)
	t.Logf("NVRTC %d.%d from %s", maj, min, p)
	return &c
}

// kernelNames is the sorted names of KernelParams.
func kernelNames() []string { return sortedKeys(KernelParams) }

// TestNVRTCCompilesKernels compiles the embedded kernel sources with the
// real NVRTC, as the backend does on a GPU machine, for the Ampere and
// Hopper architectures: no error and no warning; the cubin exports every
// kernel of KernelParams under its plain name (cuModuleGetFunction looks
// them up so) and nothing else; ptxas reports no spills, no stack frame
// and registers and shared memory that fit a block of 256 threads; and
// the PTX entry parameters have the sizes Launch packs for KernelParams'
// kinds (a pointer 64 bits, an int or a float 32).
func TestNVRTCCompilesKernels(t *testing.T) {
	c := loadCompiler(t)
	src, err := Source()
	if err != nil {
		t.Fatal(err)
	}
	want := kernelNames()
	for _, arch := range []string{"sm_80", "sm_90"} {
		bin, log, err := c.compile(src, arch, "--ptxas-options=-v")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(log), "warning") {
			t.Errorf("%s: the compile warns:\n%s", arch, log)
		}
		res, err := parsePtxasReport(log)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if got := sortedKeys(res); !slices.Equal(got, want) {
			t.Errorf("%s: ptxas compiled %d entries, KernelParams has %d:\n%v\n%v", arch, len(got), len(want), got, want)
		}
		maxRegs := 0
		for name, r := range res {
			if r.spillStores != 0 || r.spillLoads != 0 || r.stack != 0 {
				t.Errorf("%s %s: %d bytes stack, %d/%d bytes spilled (stores/loads)", arch, name, r.stack, r.spillStores, r.spillLoads)
			}
			if r.regs*int(block256[0]) > 65536 || r.smem > 48<<10 {
				t.Errorf("%s %s: %d registers and %d bytes of shared memory do not fit a block of %d", arch, name, r.regs, r.smem, block256[0])
			}
			maxRegs = max(maxRegs, r.regs)
		}
		syms, err := cubinKernels(bin)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if !slices.Equal(syms, want) {
			t.Errorf("%s: the cubin exports %v, want %v", arch, syms, want)
		}
		t.Logf("%s: %d kernels, cubin %d bytes, at most %d registers", arch, len(syms), len(bin), maxRegs)
	}
	ptx, _, err := c.compile(src, "compute_90")
	if err != nil {
		t.Fatal(err)
	}
	params := ptxParams(string(ptx))
	if got := sortedKeys(params); !slices.Equal(got, want) {
		t.Errorf("PTX entries %v, want %v", got, want)
	}
	for name, types := range params {
		kinds := KernelParams[name]
		if len(types) != len(kinds) {
			t.Errorf("%s: PTX has %d parameters %v, KernelParams %q", name, len(types), types, kinds)
			continue
		}
		for i, ty := range types {
			if w := ptxType(kinds[i]); !slices.Contains(w, ty) {
				t.Errorf("%s parameter %d: PTX %s, kind %q wants %v", name, i, ty, kinds[i], w)
			}
		}
	}
}

// TestNVRTCReportsErrors: a source that does not compile returns an error
// holding NVRTC's log, which names the problem.
func TestNVRTCReportsErrors(t *testing.T) {
	c := loadCompiler(t)
	_, log, err := c.compile("extern \"C\" __global__ void k(float* y) { y[0] = undefined_name; }", "sm_90")
	if err == nil || !strings.Contains(err.Error(), "undefined_name") || !strings.Contains(log, "undefined_name") {
		t.Fatalf("err %v, log %q", err, log)
	}
}

// ptxType is the PTX parameter types a KernelParams kind compiles to.
func ptxType(kind byte) []string {
	switch kind {
	case 'i':
		return []string{".u32", ".s32"}
	case 'f':
		return []string{".f32"}
	}
	return []string{".u64"} // pointers
}

// sortedKeys is m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// ptxasUse is what ptxas -v reports for one entry function.
type ptxasUse struct{ regs, smem, stack, spillStores, spillLoads int }

var (
	rePtxasEntry = regexp.MustCompile(`Compiling entry function '([^']+)'`)
	rePtxasFrame = regexp.MustCompile(`(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads`)
	rePtxasRegs  = regexp.MustCompile(`Used (\d+) registers(?:, (\d+) bytes smem)?`)
)

// parsePtxasReport reads the per-entry resource lines of ptxas -v.
func parsePtxasReport(log string) (map[string]ptxasUse, error) {
	out := map[string]ptxasUse{}
	cur := ""
	atoi := func(s string) int { v, _ := strconv.Atoi(s); return v }
	for _, line := range strings.Split(log, "\n") {
		if m := rePtxasEntry.FindStringSubmatch(line); m != nil {
			cur = m[1]
			out[cur] = ptxasUse{}
			continue
		}
		if cur == "" {
			continue
		}
		u := out[cur]
		if m := rePtxasFrame.FindStringSubmatch(line); m != nil {
			u.stack, u.spillStores, u.spillLoads = atoi(m[1]), atoi(m[2]), atoi(m[3])
		}
		if m := rePtxasRegs.FindStringSubmatch(line); m != nil {
			u.regs, u.smem = atoi(m[1]), atoi(m[2])
		}
		out[cur] = u
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no ptxas report in the log:\n%s", log)
	}
	return out, nil
}

// cubinKernels lists the global function symbols of a cubin, sorted. A
// cubin is a 64-bit ELF file whose e_version field holds NVIDIA's own
// version number (debug/elf accepts only 1), so a copy with it set to 1
// is parsed.
func cubinKernels(bin []byte) ([]string, error) {
	if len(bin) < 24 {
		return nil, fmt.Errorf("cubin of %d bytes", len(bin))
	}
	b := slices.Clone(bin)
	copy(b[20:24], []byte{1, 0, 0, 0}) // Elf64_Ehdr.e_version
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	syms, err := f.Symbols()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && elf.ST_BIND(s.Info) == elf.STB_GLOBAL {
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

var (
	rePtxEntry = regexp.MustCompile(`(?s)\.entry\s+(\w+)\s*\((.*?)\)`)
	rePtxParam = regexp.MustCompile(`\.param\s+(\.\w+)`)
)

// ptxParams maps each .entry of PTX text to its parameter types.
func ptxParams(ptx string) map[string][]string {
	out := map[string][]string{}
	for _, m := range rePtxEntry.FindAllStringSubmatch(ptx, -1) {
		var types []string
		for _, p := range rePtxParam.FindAllStringSubmatch(m[2], -1) {
			types = append(types, p[1])
		}
		out[m[1]] = types
	}
	return out
}
