//go:build linux && (amd64 || arm64)

package cuda

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// driverAPI holds the CUDA driver functions the backend calls. Result
// codes are CUresult (0 success).
type driverAPI struct {
	cuInit                    func(flags uint32) int32
	cuDriverGetVersion        func(v *int32) int32
	cuDeviceGetCount          func(n *int32) int32
	cuDeviceGet               func(dev *int32, ordinal int32) int32
	cuDeviceGetName           func(name *byte, n int32, dev int32) int32
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) int32
	cuDeviceTotalMem          func(b *uint64, dev int32) int32
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease func(dev int32) int32
	cuCtxSetCurrent           func(ctx uintptr) int32
	cuStreamCreate            func(s *uintptr, flags uint32) int32
	cuStreamDestroy           func(s uintptr) int32
	cuStreamSynchronize       func(s uintptr) int32
	cuMemAlloc                func(p *uintptr, n uint64) int32
	cuMemFree                 func(p uintptr) int32
	cuMemcpyHtoDAsync         func(dst uintptr, src unsafe.Pointer, n uint64, stream uintptr) int32
	cuMemcpyDtoHAsync         func(dst unsafe.Pointer, src uintptr, n uint64, stream uintptr) int32
	cuMemsetD32Async          func(dst uintptr, v uint32, n uint64, stream uintptr) int32
	cuModuleLoadData          func(m *uintptr, image unsafe.Pointer) int32
	cuModuleUnload            func(m uintptr) int32
	cuModuleGetFunction       func(f *uintptr, m uintptr, name string) int32
	cuLaunchKernel            func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params unsafe.Pointer, extra unsafe.Pointer) int32
	cuGetErrorString          func(code int32, s **byte) int32
}

// blasAPI holds the cuBLAS functions (v2 API, column-major). The Ex
// functions take a cudaDataType per matrix and a cublasComputeType_t
// (19 and 20 arguments: purego calls up to 32 on amd64 and arm64); with
// CUBLAS_COMPUTE_32F alpha and beta are floats.
type blasAPI struct {
	cublasCreate        func(h *uintptr) int32
	cublasDestroy       func(h uintptr) int32
	cublasSgemm         func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32, a uintptr, lda int32, b uintptr, ldb int32, beta *float32, c uintptr, ldc int32) int32
	cublasSgemmBatched  func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32, a uintptr, lda int32, b uintptr, ldb int32, beta *float32, c uintptr, ldc int32, count int32) int32
	cublasGemmEx        func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32, a uintptr, atype, lda int32, b uintptr, btype, ldb int32, beta *float32, c uintptr, ctype, ldc int32, compute, algo int32) int32
	cublasGemmBatchedEx func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32, a uintptr, atype, lda int32, b uintptr, btype, ldb int32, beta *float32, c uintptr, ctype, ldc int32, count, compute, algo int32) int32
	cublasGetVersion    func(h uintptr, v *int32) int32
	cublasSetStream     func(h uintptr, stream uintptr) int32
}

// cuBLAS's enumerations for the Ex GEMMs (library_types.h, cublas_api.h).
const (
	cudaR32F          = 0  // CUDA_R_32F
	cudaR16F          = 2  // CUDA_R_16F
	cudaR16BF         = 14 // CUDA_R_16BF
	cublasCompute32F  = 68 // CUBLAS_COMPUTE_32F
	cublasGemmDefault = -1 // CUBLAS_GEMM_DEFAULT: cuBLAS picks the algorithm (tensor cores included)
)

// blasType is the cudaDataType of p's GEMM inputs.
func blasType(p Precision) (int32, error) {
	switch p {
	case PrecisionFP16:
		return cudaR16F, nil
	case PrecisionBF16:
		return cudaR16BF, nil
	case PrecisionOff:
		return cudaR32F, nil
	}
	return 0, fmt.Errorf("cuda: GEMM input format %q: want off, fp16 or bf16", p)
}

// rtcAPI holds the NVRTC functions.
type rtcAPI struct {
	nvrtcVersion           func(major, minor *int32) int32
	nvrtcCreateProgram     func(p *uintptr, src string, name string, nh int32, headers, names unsafe.Pointer) int32
	nvrtcCompileProgram    func(p uintptr, nopt int32, opts unsafe.Pointer) int32
	nvrtcGetProgramLogSize func(p uintptr, n *uint64) int32
	nvrtcGetProgramLog     func(p uintptr, log *byte) int32
	nvrtcGetCUBINSize      func(p uintptr, n *uint64) int32
	nvrtcGetCUBIN          func(p uintptr, bin *byte) int32
	nvrtcGetPTXSize        func(p uintptr, n *uint64) int32
	nvrtcGetPTX            func(p uintptr, ptx *byte) int32
	nvrtcDestroyProgram    func(p *uintptr) int32
}

// Runtime is the loaded CUDA stack: driver, cuBLAS and NVRTC, with the
// paths they were loaded from.
type Runtime struct {
	// Paths maps each library to the path (or soname) that loaded.
	Paths map[Library]string
	// DriverVersion is cuDriverGetVersion (e.g. 13000 for 13.0).
	DriverVersion int
	drv           driverAPI
	blas          blasAPI
	rtc           rtcAPI
}

var (
	loadOnce sync.Once
	loaded   *Runtime
	loadErr  error
)

// Load loads the three libraries from the default search folders
// (SearchDirs with the process environment) and initialises the driver.
// It is done once per process; later calls return the same result. The
// error is a *MissingError naming the driver or the library that is
// missing.
func Load() (*Runtime, error) {
	loadOnce.Do(func() { loaded, loadErr = LoadFrom(SearchDirs("", os.Getenv)) })
	return loaded, loadErr
}

// driverSymbols and blasSymbols map the API fields whose symbol differs
// from the field name. The _v2 names are the 64-bit entry points cuda.h
// and cublas_v2.h map the plain names to; cuStreamCreate,
// cuStreamSynchronize and cuMemsetD32Async have none.
var (
	driverSymbols = map[string]string{"cuDeviceTotalMem": "cuDeviceTotalMem_v2",
		"cuMemAlloc": "cuMemAlloc_v2", "cuMemFree": "cuMemFree_v2", "cuStreamDestroy": "cuStreamDestroy_v2",
		"cuMemcpyHtoDAsync": "cuMemcpyHtoDAsync_v2", "cuMemcpyDtoHAsync": "cuMemcpyDtoHAsync_v2"}
	blasSymbols = map[string]string{"cublasCreate": "cublasCreate_v2",
		"cublasDestroy": "cublasDestroy_v2", "cublasSgemm": "cublasSgemm_v2", "cublasGetVersion": "cublasGetVersion_v2",
		"cublasSetStream": "cublasSetStream_v2"}
)

// openLibrary dlopens the first candidate of lib in dirs (Candidates)
// that loads, returning its handle and path; the error is a
// *MissingError listing what was tried.
func openLibrary(lib Library, dirs []string) (uintptr, string, error) {
	tried := Candidates(lib, "", dirs)
	var last error
	for _, p := range tried {
		h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, p, nil
		}
		last = err
	}
	what := "library"
	if lib == Driver {
		what = "driver"
	}
	return 0, "", &MissingError{What: what, Name: lib.String(), Tried: tried, Err: last}
}

// bindLibrary binds api (a pointer to driverAPI, blasAPI or rtcAPI) from
// the library at path, opened as h; a missing symbol is a *MissingError.
func bindLibrary(lib Library, api any, h uintptr, path string) error {
	renames := map[Library]map[string]string{Driver: driverSymbols, CuBLAS: blasSymbols}[lib]
	err := bind(api, h, renames)
	if err == nil {
		err = bindDirect(lib, api, h)
	}
	if err != nil {
		if lib == Driver {
			return &MissingError{What: "driver", Name: "libcuda.so.1 lacks " + err.Error()}
		}
		return &MissingError{What: "library", Name: lib.String(), Err: fmt.Errorf("%s lacks %v", path, err)}
	}
	return nil
}

// cudaErrorNoDevice is CUDA_ERROR_NO_DEVICE: the driver loaded and found
// no GPU (cuInit's answer on a machine with libcuda but no NVIDIA device).
const cudaErrorNoDevice = 100

// LoadFrom loads the libraries trying the folders dirs (see Candidates).
func LoadFrom(dirs []string) (*Runtime, error) {
	r := &Runtime{Paths: map[Library]string{}}
	apis := map[Library]any{Driver: &r.drv, CuBLAS: &r.blas, NVRTC: &r.rtc}
	for _, lib := range []Library{Driver, CuBLAS, NVRTC} {
		h, p, err := openLibrary(lib, dirs)
		if err != nil {
			return nil, err
		}
		r.Paths[lib] = p
		if err := bindLibrary(lib, apis[lib], h, p); err != nil {
			return nil, err
		}
	}
	if c := r.drv.cuInit(0); c != 0 {
		if c == cudaErrorNoDevice {
			return nil, &MissingError{What: "device", Name: "the driver sees no GPU", Err: r.cuErr(c)}
		}
		return nil, &MissingError{What: "driver", Name: "cuInit failed", Err: r.cuErr(c)}
	}
	var v int32
	if c := r.drv.cuDriverGetVersion(&v); c != 0 {
		return nil, &MissingError{What: "driver", Name: "cuDriverGetVersion failed", Err: r.cuErr(c)}
	}
	r.DriverVersion = int(v)
	return r, nil
}

// bind resolves every func field of the struct *api from handle, by the
// field's name or its entry in rename.
func bind(api any, handle uintptr, rename map[string]string) error {
	return bindFields(api, func(field string) (uintptr, string, error) {
		sym := field
		if s, ok := rename[field]; ok {
			sym = s
		}
		p, err := purego.Dlsym(handle, sym)
		return p, sym, err
	}, purego.RegisterFunc)
}

// cuErr turns a CUresult into an error with the driver's message.
func (r *Runtime) cuErr(code int32) error {
	if code == 0 {
		return nil
	}
	var s *byte
	if r.drv.cuGetErrorString != nil && r.drv.cuGetErrorString(code, &s) == 0 && s != nil {
		return fmt.Errorf("CUDA error %d: %s", code, cString(s))
	}
	return fmt.Errorf("CUDA error %d", code)
}

// cString copies a NUL-terminated C string.
func cString(p *byte) string {
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}

// DeviceCount is the number of CUDA devices the driver sees.
func (r *Runtime) DeviceCount() (int, error) {
	var n int32
	if c := r.drv.cuDeviceGetCount(&n); c != 0 {
		return 0, r.cuErr(c)
	}
	return int(n), nil
}

// Info describes device ordinal.
func (r *Runtime) Info(ordinal int) (DeviceInfo, error) {
	var dev int32
	if c := r.drv.cuDeviceGet(&dev, int32(ordinal)); c != 0 {
		return DeviceInfo{}, r.cuErr(c)
	}
	var name [256]byte
	if c := r.drv.cuDeviceGetName(&name[0], int32(len(name)), dev); c != 0 {
		return DeviceInfo{}, r.cuErr(c)
	}
	var major, minor int32
	r.drv.cuDeviceGetAttribute(&major, 75, dev) // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	r.drv.cuDeviceGetAttribute(&minor, 76, dev) // ..._MINOR
	var mem uint64
	r.drv.cuDeviceTotalMem(&mem, dev)
	return DeviceInfo{Ordinal: ordinal, Name: cString(&name[0]), Major: int(major), Minor: int(minor), MemBytes: mem}, nil
}

// Device is an open GPU: its primary context, one stream, a cuBLAS
// handle bound to that stream and the compiled kernel module. Methods
// must be called from one goroutine at a time (the context is made
// current on the calling OS thread).
//
// Every kernel launch, GEMM, memset and copy is queued on the device's
// stream, in call order, and returns without waiting for the GPU. Uploads
// read their host source before they return (the driver stages pageable
// memory), so the source may be reused at once. The internal
// downloadAsync only queues a copy: its destination holds the values after
// Sync, which waits for the stream. Upload, Download and the exported
// methods that return data wait themselves.
type Device struct {
	rt *Runtime
	// Info describes the GPU.
	Info   DeviceInfo
	dev    int32
	ctx    uintptr
	stream uintptr
	blas   uintptr
	// held counts the open Hold calls: while it is positive the calling
	// goroutine is locked to its OS thread with the context current, and
	// the methods skip their own lock and cuCtxSetCurrent.
	held   int
	mu     sync.Mutex
	module uintptr
	funcs  map[string]uintptr
	// launch is the pinned parameter block of every kernel launch
	// (params), launchPin its pin.
	launch    *launchParams
	launchPin runtime.Pinner
}

// Open retains device ordinal's primary context and creates a cuBLAS
// handle.
func (r *Runtime) Open(ordinal int) (*Device, error) {
	n, err := r.DeviceCount()
	if err != nil {
		return nil, &MissingError{What: "device", Name: "cuDeviceGetCount failed", Err: err}
	}
	if ordinal < 0 || ordinal >= n {
		return nil, &MissingError{What: "device", Name: fmt.Sprintf("device %d requested, the driver sees %d", ordinal, n)}
	}
	info, err := r.Info(ordinal)
	if err != nil {
		return nil, err
	}
	d := &Device{rt: r, Info: info, funcs: map[string]uintptr{}}
	if c := r.drv.cuDeviceGet(&d.dev, int32(ordinal)); c != 0 {
		return nil, r.cuErr(c)
	}
	if c := r.drv.cuDevicePrimaryCtxRetain(&d.ctx, d.dev); c != 0 {
		return nil, fmt.Errorf("cuda: retain context: %w", r.cuErr(c))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.current(); err != nil {
		return nil, err
	}
	// Flags 0 (not CU_STREAM_NON_BLOCKING): the stream stays ordered with
	// any work the legacy default stream gets (cuMemFree, cuModuleLoad).
	if c := r.drv.cuStreamCreate(&d.stream, 0); c != 0 {
		r.drv.cuDevicePrimaryCtxRelease(d.dev)
		return nil, fmt.Errorf("cuda: create stream: %w", r.cuErr(c))
	}
	if s := r.blas.cublasCreate(&d.blas); s != 0 {
		d.close()
		return nil, fmt.Errorf("cuda: cublasCreate: status %d", s)
	}
	if s := r.blas.cublasSetStream(d.blas, d.stream); s != 0 {
		d.close()
		return nil, fmt.Errorf("cuda: cublasSetStream: status %d", s)
	}
	return d, nil
}

// Hold locks the calling goroutine to its OS thread and makes the
// device's context current there once, for a batch of calls (a Machine's
// RunAll: about a thousand launches a step) that then skip the per-call
// lock and cuCtxSetCurrent. Call the returned func to release it; holds
// nest.
func (d *Device) Hold() (release func(), err error) {
	runtime.LockOSThread()
	if d.held == 0 {
		if err := d.current(); err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
	}
	d.held++
	return func() {
		d.held--
		runtime.UnlockOSThread()
	}, nil
}

// hold is Hold for the device interface.
func (d *Device) hold() (func(), error) { return d.Hold() }

// enter pins the goroutine to its OS thread and makes the device's
// context current there (a CUDA context is per thread; goroutines move
// between threads); the returned func unpins. Every method that calls the
// driver or cuBLAS runs inside one. Inside a Hold it does nothing: the
// thread is pinned and the context current already.
func (d *Device) enter() func() {
	if d.held > 0 {
		return func() {}
	}
	runtime.LockOSThread()
	_ = d.current()
	return runtime.UnlockOSThread
}

// current makes the device's context current on this OS thread.
func (d *Device) current() error {
	if c := d.rt.drv.cuCtxSetCurrent(d.ctx); c != 0 {
		return fmt.Errorf("cuda: set context: %w", d.rt.cuErr(c))
	}
	return nil
}

// Close waits for the stream and releases the cuBLAS handle, the stream,
// the module and the context.
func (d *Device) Close() error {
	defer d.enter()()
	return d.close()
}

// close is Close inside enter.
func (d *Device) close() error {
	var err error
	if d.stream != 0 {
		err = d.rt.cuErr(d.rt.drv.cuStreamSynchronize(d.stream))
	}
	if d.blas != 0 {
		d.rt.blas.cublasDestroy(d.blas)
		d.blas = 0
	}
	if d.module != 0 {
		d.rt.drv.cuModuleUnload(d.module)
		d.module = 0
	}
	if d.stream != 0 {
		d.rt.drv.cuStreamDestroy(d.stream)
		d.stream = 0
	}
	if d.ctx != 0 {
		d.rt.drv.cuDevicePrimaryCtxRelease(d.dev)
		d.ctx = 0
	}
	d.launchPin.Unpin()
	d.launch = nil
	return err
}

// Sync waits for all work queued on the device's stream: after it the
// destinations of queued downloads hold their values, and errors of
// queued kernels surface here.
func (d *Device) Sync() error {
	defer d.enter()()
	return d.rt.cuErr(d.rt.drv.cuStreamSynchronize(d.stream))
}

// Alloc allocates n float32 values of device memory, zeroed.
func (d *Device) Alloc(n int) (Buffer, error) {
	if n <= 0 {
		return Buffer{}, fmt.Errorf("cuda: alloc of %d values", n)
	}
	defer d.enter()()
	var p uintptr
	if c := d.rt.drv.cuMemAlloc(&p, uint64(4*n)); c != 0 {
		return Buffer{}, fmt.Errorf("cuda: alloc %d bytes: %w", 4*n, d.rt.cuErr(c))
	}
	if c := d.rt.drv.cuMemsetD32Async(p, 0, uint64(n), d.stream); c != 0 {
		return Buffer{}, d.rt.cuErr(c)
	}
	return Buffer{Ptr: p, N: n}, nil
}

// Free releases b.
func (d *Device) Free(b Buffer) error {
	defer d.enter()()
	return d.rt.cuErr(d.rt.drv.cuMemFree(b.Ptr))
}

// Upload copies host values into b (len(src) ≤ b.N), queued on the
// device's stream after the work before it. src is read before Upload
// returns (cuMemcpyHtoDAsync stages pageable memory at once).
func Upload[T float32 | int32](d *Device, b Buffer, src []T) error {
	if len(src) > b.N {
		return fmt.Errorf("cuda: upload of %d values into a buffer of %d", len(src), b.N)
	}
	if len(src) == 0 {
		return nil
	}
	defer d.enter()()
	err := d.rt.cuErr(d.rt.drv.cuMemcpyHtoDAsync(b.Ptr, unsafe.Pointer(&src[0]), uint64(4*len(src)), d.stream))
	runtime.KeepAlive(src)
	return err
}

// Download copies the first len(dst) values of b to the host, after the
// work queued before it, and waits for them.
func Download[T float32 | int32](d *Device, dst []T, b Buffer) error {
	if err := downloadAsync(d, dst, b); err != nil {
		return err
	}
	return d.Sync()
}

// downloadAsync queues the copy of the first len(dst) values of b into
// dst: dst holds them after Sync. dst is Go memory (pageable), for which
// the driver completes the copy before returning; the contract is kept
// anyway so that pinned staging buffers can replace it.
func downloadAsync[T float32 | int32](d *Device, dst []T, b Buffer) error {
	if len(dst) > b.N {
		return fmt.Errorf("cuda: download of %d values from a buffer of %d", len(dst), b.N)
	}
	if len(dst) == 0 {
		return nil
	}
	defer d.enter()()
	err := d.rt.cuErr(d.rt.drv.cuMemcpyDtoHAsync(unsafe.Pointer(&dst[0]), b.Ptr, uint64(4*len(dst)), d.stream))
	runtime.KeepAlive(dst)
	return err
}

// Launch runs kernel name over grid × block threads. args are the kernel
// parameters in order: Buffer (a device pointer), int (passed as int32),
// int32, float32 or float64 (passed as float).
func (d *Device) Launch(name string, grid, block [3]uint32, args ...any) error {
	if err := checkArgs(name, args); err != nil {
		return err
	}
	f, err := d.function(name)
	if err != nil {
		return err
	}
	defer d.enter()()
	var params unsafe.Pointer
	if len(args) > 0 {
		params = d.params(args)
	}
	c := d.rt.drv.cuLaunchKernel(f, grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, d.stream, params, nil)
	if c != 0 {
		return fmt.Errorf("cuda: launch %s: %w", name, d.rt.cuErr(c))
	}
	return nil
}

// launchParams is the parameter block cuLaunchKernel reads: one 8-byte
// slot per kernel argument and the array of pointers to the slots.
type launchParams struct {
	vals [maxKernelArgs]uint64
	ptrs [maxKernelArgs]unsafe.Pointer
	// alpha and beta are the GEMM scalars cuBLAS reads (host pointer
	// mode) during the call.
	alpha, beta float32
}

// params packs args (checked by checkArgs) into the device's parameter
// block and returns the pointer array for cuLaunchKernel. The block is
// allocated and pinned once, at the first launch, and reused by every
// launch: the driver copies the values before cuLaunchKernel returns, and
// a Device is used by one goroutine at a time. close unpins it.
func (d *Device) params(args []any) unsafe.Pointer {
	p := d.block()
	packArgsInto(p.vals[:len(args)], args)
	return unsafe.Pointer(&p.ptrs[0])
}

// block is the device's parameter block, allocated and pinned at first use.
func (d *Device) block() *launchParams {
	if d.launch == nil {
		d.launch = new(launchParams)
		for i := range d.launch.ptrs {
			d.launch.ptrs[i] = unsafe.Pointer(&d.launch.vals[i])
		}
		d.launchPin.Pin(d.launch)
	}
	return d.launch
}

// scalars stores a GEMM's alpha and beta in the parameter block and
// returns pointers to them for cuBLAS (no allocation per call).
func (d *Device) scalars(alpha, beta float32) (*float32, *float32) {
	p := d.block()
	p.alpha, p.beta = alpha, beta
	return &p.alpha, &p.beta
}

// Launch1D runs kernel name with one thread per element of n (blocks of
// 256).
func (d *Device) Launch1D(name string, n int, args ...any) error {
	return launch1D(d, name, n, args...)
}

// LaunchRows runs a row kernel (one block of 256 threads per row; the
// kernels with shared-memory reductions) over rows blocks.
func (d *Device) LaunchRows(name string, rows int, args ...any) error {
	return launchRows(d, name, rows, args...)
}

// function looks a kernel up in the module, compiling it on first use.
func (d *Device) function(name string) (uintptr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if f, ok := d.funcs[name]; ok {
		return f, nil // the common case: no driver call, no thread pinning
	}
	defer d.enter()()
	if d.module == 0 {
		bin, err := d.compile()
		if err != nil {
			return 0, err
		}
		if c := d.rt.drv.cuModuleLoadData(&d.module, unsafe.Pointer(&bin[0])); c != 0 {
			var maj, min int32
			d.rt.rtc.nvrtcVersion(&maj, &min)
			return 0, fmt.Errorf("cuda: loading the kernels NVRTC %d.%d (%s) compiled for %s into the driver (CUDA %d.%d): %w; "+
				"a driver older than NVRTC cannot load its output: use an NVRTC no newer than the driver (%s)",
				maj, min, d.rt.Paths[NVRTC], d.Info.Arch(), d.rt.DriverVersion/1000, d.rt.DriverVersion%1000/10, d.rt.cuErr(c), EnvLibs)
		}
		runtime.KeepAlive(bin)
	}
	var f uintptr
	if c := d.rt.drv.cuModuleGetFunction(&f, d.module, name); c != 0 {
		return 0, fmt.Errorf("cuda: kernel %s: %w", name, d.rt.cuErr(c))
	}
	d.funcs[name] = f
	return f, nil
}

// blasGemm is a row-major GEMM's arguments in cuBLAS's column-major
// terms: cuBLAS computes Cᵀ = op(B)ᵀ·op(A)ᵀ, so A and B (and m and n,
// and the transposes) trade places and the row lengths become leading
// dimensions. For batched GEMMs a, b and c are the pointer arrays.
type blasGemm struct {
	ta, tb, m, n, k int32
	a, b, c         uintptr
	lda, ldb, ldc   int32
}

// colMajor is the blasGemm of a row-major GEMM (Device.Gemm's arguments).
func colMajor(transA, transB bool, m, n, k int, a Buffer, lda int, b Buffer, ldb int, c Buffer, ldc int) blasGemm {
	return blasGemm{blasOp(transB), blasOp(transA), int32(n), int32(m), int32(k), b.Ptr, a.Ptr, c.Ptr, int32(ldb), int32(lda), int32(ldc)}
}

// check turns a cuBLAS status into an error naming the call (what) and
// its row-major sizes (count matrices when batched).
func (g blasGemm) check(what string, count int, status int32) error {
	if status == 0 {
		return nil
	}
	if count > 0 {
		return fmt.Errorf("cuda: %s %d×%dx%dx%d: cuBLAS status %d", what, count, g.n, g.m, g.k, status)
	}
	return fmt.Errorf("cuda: %s %dx%dx%d: cuBLAS status %d", what, g.n, g.m, g.k, status)
}

// Gemm computes row-major C[m,n] = alpha·op(A)·op(B) + beta·C, op(X) = Xᵀ
// when trans, with cublasSgemm (float32 inputs; cuBLAS is column-major:
// see blasGemm). lda/ldb/ldc are the row-major row lengths.
func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int) error {
	g := colMajor(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	defer d.enter()()
	pa, pb := d.scalars(alpha, beta)
	return g.check("sgemm", 0, d.rt.blas.cublasSgemm(d.blas, g.ta, g.tb, g.m, g.n, g.k, pa, g.a, g.lda, g.b, g.ldb, pb, g.c, g.ldc))
}

// GemmEx is Gemm with A and B stored in the input format in: 16-bit
// values (2 bytes each, as lsf_pack_f16 / lsf_pack_bf16 write them) for
// PrecisionFP16 and PrecisionBF16, float32 for PrecisionOff. C, alpha
// and beta are float32, and the products accumulate in float32
// (cublasGemmEx with CUBLAS_COMPUTE_32F and CUBLAS_GEMM_DEFAULT: cuBLAS
// chooses the algorithm, tensor cores where the device has them).
func (d *Device) GemmEx(in Precision, transA, transB bool, m, n, k int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int) error {
	t, err := blasType(in)
	if err != nil {
		return err
	}
	g := colMajor(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	defer d.enter()()
	pa, pb := d.scalars(alpha, beta)
	return g.check("gemm "+string(in), 0, d.rt.blas.cublasGemmEx(d.blas, g.ta, g.tb, g.m, g.n, g.k,
		pa, g.a, t, g.lda, g.b, t, g.ldb, pb, g.c, cudaR32F, g.ldc, cublasCompute32F, cublasGemmDefault))
}

// GemmBatched is Gemm over count matrices whose device addresses are in
// the device arrays aPtrs, bPtrs, cPtrs (count 64-bit pointers each, see
// PointerArray). The executor expresses strided batches as pointer arrays
// as well (uploaded once per machine): one binding covers every batch.
func (d *Device) GemmBatched(transA, transB bool, m, n, k int, alpha float32, aPtrs Buffer, lda int, bPtrs Buffer, ldb int, beta float32, cPtrs Buffer, ldc int, count int) error {
	g := colMajor(transA, transB, m, n, k, aPtrs, lda, bPtrs, ldb, cPtrs, ldc)
	defer d.enter()()
	pa, pb := d.scalars(alpha, beta)
	return g.check("batched sgemm", count, d.rt.blas.cublasSgemmBatched(d.blas, g.ta, g.tb, g.m, g.n, g.k,
		pa, g.a, g.lda, g.b, g.ldb, pb, g.c, g.ldc, int32(count)))
}

// GemmBatchedEx is GemmBatched with the A and B matrices in the input
// format in, as GemmEx (cublasGemmBatchedEx): the pointer arrays hold
// the addresses of 16-bit matrices for PrecisionFP16 and PrecisionBF16.
func (d *Device) GemmBatchedEx(in Precision, transA, transB bool, m, n, k int, alpha float32, aPtrs Buffer, lda int, bPtrs Buffer, ldb int, beta float32, cPtrs Buffer, ldc int, count int) error {
	t, err := blasType(in)
	if err != nil {
		return err
	}
	g := colMajor(transA, transB, m, n, k, aPtrs, lda, bPtrs, ldb, cPtrs, ldc)
	defer d.enter()()
	pa, pb := d.scalars(alpha, beta)
	return g.check("batched gemm "+string(in), count, d.rt.blas.cublasGemmBatchedEx(d.blas, g.ta, g.tb, g.m, g.n, g.k,
		pa, g.a, t, g.lda, g.b, t, g.ldb, pb, g.c, cudaR32F, g.ldc, int32(count), cublasCompute32F, cublasGemmDefault))
}

// PointerArray uploads the device addresses base+i·stride floats, i <
// count, as a device array for GemmBatched. Free it with Free.
func (d *Device) PointerArray(base Buffer, stride, count int) (Buffer, error) {
	addrs := make([]uintptr, count)
	for i := range addrs {
		addrs[i] = base.Ptr + uintptr(4*i*stride)
	}
	return d.Pointers(addrs)
}

// Pointers uploads device addresses as a device array of 64-bit pointers
// for GemmBatched. Free it with Free.
func (d *Device) Pointers(addrs []uintptr) (Buffer, error) {
	buf, err := d.Alloc(max(2*len(addrs), 1))
	if err != nil {
		return Buffer{}, err
	}
	return buf, Upload(d, buf, pointerWords(addrs))
}

func (d *Device) upload(b Buffer, src []float32) error   { return Upload(d, b, src) }
func (d *Device) uploadInts(b Buffer, src []int32) error { return Upload(d, b, src) }
func (d *Device) downloadAsync(dst []float32, b Buffer) error {
	return downloadAsync(d, dst, b)
}

func blasOp(trans bool) int32 {
	if trans {
		return 1 // CUBLAS_OP_T
	}
	return 0 // CUBLAS_OP_N
}
