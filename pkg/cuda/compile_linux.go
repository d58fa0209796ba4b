//go:build linux && (amd64 || arm64)

package cuda

import (
	"fmt"
	"os"
	"runtime"
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
	var prog uintptr
	if s := r.rtc.nvrtcCreateProgram(&prog, src, "lsfuse_kernels.cu", 0, nil, nil); s != 0 {
		return nil, fmt.Errorf("cuda: nvrtcCreateProgram: status %d", s)
	}
	defer r.rtc.nvrtcDestroyProgram(&prog)
	opts := []string{"--gpu-architecture=" + arch, "--std=c++14"}
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
	s := r.rtc.nvrtcCompileProgram(prog, int32(len(opts)), unsafe.Pointer(&ptrs[0]))
	pin.Unpin()
	if s != 0 {
		var n uint64
		r.rtc.nvrtcGetProgramLogSize(prog, &n)
		log := make([]byte, n+1)
		r.rtc.nvrtcGetProgramLog(prog, &log[0])
		return nil, fmt.Errorf("cuda: NVRTC compile for %s failed (status %d):\n%s", arch, s, cString(&log[0]))
	}
	var n uint64
	if s := r.rtc.nvrtcGetCUBINSize(prog, &n); s != 0 || n == 0 {
		return nil, fmt.Errorf("cuda: nvrtcGetCUBINSize: status %d", s)
	}
	bin := make([]byte, n)
	if s := r.rtc.nvrtcGetCUBIN(prog, &bin[0]); s != 0 {
		return nil, fmt.Errorf("cuda: nvrtcGetCUBIN: status %d", s)
	}
	return bin, nil
}
