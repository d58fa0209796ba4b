//go:build linux && (amd64 || arm64)

package cuda

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"
)

// compile returns the kernel module for the device: from the on-disk
// cache, or compiled by NVRTC to a cubin for the device's architecture.
func (d *Device) compile() ([]byte, error) {
	src, err := Source()
	if err != nil {
		return nil, err
	}
	var maj, min int32
	d.rt.rtc.nvrtcVersion(&maj, &min)
	arch := d.Info.Arch()
	key := CacheKey(src, arch, fmt.Sprintf("%d.%d", maj, min))
	bin, _, err := cachedModule(CacheDir(os.Getenv), key, func() ([]byte, error) { return d.rt.nvrtc(src, arch) })
	return bin, err
}

// nvrtc compiles src for arch ("sm_90") and returns the cubin; a failed
// compile returns the compiler log.
func (r *Runtime) nvrtc(src, arch string) ([]byte, error) {
	bin, _, err := r.rtc.compile(src, arch)
	return bin, err
}

// compile compiles src with NVRTC for arch: a real architecture ("sm_90")
// gives a cubin, a virtual one ("compute_90") PTX text. opts are extra
// compiler options (the language is NVRTC's default dialect, C++17 since
// NVRTC 11). It returns the output and the compiler's log (warnings,
// and ptxas's report when asked for with --ptxas-options=-v); a failed
// compile's error holds the log.
func (c *rtcAPI) compile(src, arch string, opts ...string) ([]byte, string, error) {
	var prog uintptr
	if s := c.nvrtcCreateProgram(&prog, src, "lsfuse_kernels.cu", 0, nil, nil); s != 0 {
		return nil, "", fmt.Errorf("cuda: nvrtcCreateProgram: status %d", s)
	}
	defer c.nvrtcDestroyProgram(&prog)
	opts = append([]string{"--gpu-architecture=" + arch}, opts...)
	cs := make([][]byte, len(opts))
	ptrs := make([]*byte, len(opts))
	for i, o := range opts {
		cs[i] = append([]byte(o), 0)
		ptrs[i] = &cs[i][0]
	}
	var pin runtime.Pinner
	for i := range cs {
		pin.Pin(&cs[i][0])
	}
	pin.Pin(&ptrs[0])
	s := c.nvrtcCompileProgram(prog, int32(len(opts)), unsafe.Pointer(&ptrs[0]))
	pin.Unpin()
	var n uint64
	c.nvrtcGetProgramLogSize(prog, &n)
	logBuf := make([]byte, n+1)
	c.nvrtcGetProgramLog(prog, &logBuf[0])
	log := cString(&logBuf[0])
	if s != 0 {
		return nil, log, fmt.Errorf("cuda: NVRTC compile for %s failed (status %d):\n%s", arch, s, log)
	}
	size, get, what := c.nvrtcGetCUBINSize, c.nvrtcGetCUBIN, "CUBIN"
	if strings.HasPrefix(arch, "compute_") {
		size, get, what = c.nvrtcGetPTXSize, c.nvrtcGetPTX, "PTX"
	}
	if s := size(prog, &n); s != 0 || n == 0 {
		return nil, log, fmt.Errorf("cuda: nvrtcGet%sSize: status %d", what, s)
	}
	out := make([]byte, n)
	if s := get(prog, &out[0]); s != 0 {
		return nil, log, fmt.Errorf("cuda: nvrtcGet%s: status %d", what, s)
	}
	return out, log, nil
}
