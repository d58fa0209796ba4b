package cuda

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"unsafe"
)

// fakeDevice is a device whose memory is Go slices and whose kernels are
// Go transcriptions of kernels/*.cu (one loop over the threads). It lets
// the executor's plan — buffers, views, launch arguments, GEMM operands —
// run on the CPU. Addresses are (allocation id)<<32 + byte offset.
//
// It models the real device's single stream: work runs eagerly, in call
// order, but a download only lands in its host destination at the next
// Sync (the destination is poisoned with NaN until then), so host code
// that reads a downloaded value without synchronising computes on NaN and
// the comparisons with vm.Machine fail.
type fakeDevice struct {
	mem      map[uintptr][]uint32
	next     uintptr
	launches map[string]int
	gemms    int
	// blasCalls counts cuBLAS calls (a batched GEMM is one).
	blasCalls int
	// inputFormat, when set (PrecisionFP16 or PrecisionBF16), is the
	// GEMM input format of mixed precision: a float32 GEMM (Gemm,
	// GemmBatched: operands that skipped their packing) or an Ex GEMM
	// declaring another format fails.
	inputFormat Precision
	// pending are the queued downloads: destination and the values the
	// stream copied (its state when the copy was queued).
	pending []fakeCopy
	// syncs counts Sync calls; held the open holds, maxHeld their
	// deepest nesting.
	syncs, held, maxHeld int
	// unheld counts launches and GEMMs issued outside a hold.
	unheld int
	// downloaded counts the values copied to the host.
	downloaded int
	// source, when set, runs every launch on the compiled kernel sources
	// (the C++ emulator) instead of the Go transcriptions of fakeKernels.
	source sourceRunner
	// cross, when set (C++ mode only), also runs every launch's Go
	// transcription on a copy of its arguments and compares them.
	cross *crossCheck
}

// crossCheck compares, launch by launch, the compiled kernel sources with
// their Go transcriptions (runSource): floats to tol of each
// allocation's largest entry, ints and 16-bit values exactly. It counts
// the compared launches per kernel and records the mismatches (the first
// one's description per kernel) without failing the launch: the source's
// results go on, so the graph's comparison with vm.Machine still tells
// which side is wrong.
type crossCheck struct {
	tol        float64
	launches   map[string]int
	mismatches map[string]int
	first      map[string]string
}

func newCrossCheck(tol float64) *crossCheck {
	return &crossCheck{tol: tol, launches: map[string]int{}, mismatches: map[string]int{}, first: map[string]string{}}
}

// fakeCross is the crossCheck newFakeDevice gives its devices (nil: off).
var fakeCross *crossCheck

// sourceRunner runs a kernel of kernels/*.cu over grid × block threads,
// its arguments given as packArgs' 8-byte slots holding host addresses
// (as cuLaunchKernel receives them). The C++ emulator
// (emulator_linux_test.go) is one.
type sourceRunner interface {
	run(name string, grid, block [3]uint32, slots []uint64) error
}

// fakeSource is the sourceRunner that newFakeDevice gives its devices:
// nil (the Go transcriptions) unless a test in C++ mode set it
// (withSourceKernels).
var fakeSource sourceRunner

// fakeCopy is a queued download.
type fakeCopy struct{ dst, vals []float32 }

func newFakeDevice() *fakeDevice {
	return &fakeDevice{mem: map[uintptr][]uint32{}, next: 1, launches: map[string]int{}, source: fakeSource, cross: fakeCross}
}

func (d *fakeDevice) Alloc(n int) (Buffer, error) {
	if n <= 0 {
		return Buffer{}, fmt.Errorf("fake: alloc of %d", n)
	}
	id := d.next
	d.next++
	if d.source == nil {
		d.mem[id] = make([]uint32, n)
		return Buffer{Ptr: id << 32, N: n}, nil
	}
	// C++ mode: guard words on both sides hold canaryWord, which a
	// kernel reading out of bounds gets as a NaN and one writing out of
	// bounds overwrites (runSource checks them after every launch).
	full := make([]uint32, n+2*guardWords)
	for i := range guardWords {
		full[i], full[n+guardWords+i] = canaryWord, canaryWord
	}
	d.mem[id] = full[guardWords : guardWords+n : guardWords+n]
	return Buffer{Ptr: id << 32, N: n}, nil
}

// guardWords and canaryWord are the C++ mode's allocation guards: a
// quiet NaN with a recognisable payload, guardWords of them before and
// after every allocation.
const (
	guardWords = 64
	canaryWord = 0x7fc0dead
)

// checkGuards reports the first allocation whose guard words a kernel
// overwrote.
func (d *fakeDevice) checkGuards(name string) error {
	for id, m := range d.mem {
		full := unsafe.Slice((*uint32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(m)), -4*guardWords)), len(m)+2*guardWords)
		for i := range 2 * guardWords {
			if i >= guardWords {
				i += len(m)
			}
			if full[i] != canaryWord {
				return fmt.Errorf("fake: %s wrote outside allocation %d (%d values) at index %d", name, id, len(m), i-guardWords)
			}
		}
	}
	return nil
}

func (d *fakeDevice) Free(b Buffer) error {
	if _, ok := d.mem[b.Ptr>>32]; !ok || b.Ptr&0xffffffff != 0 {
		return fmt.Errorf("fake: free of %#x, not an allocation", b.Ptr)
	}
	delete(d.mem, b.Ptr>>32)
	return nil
}

// words resolves a device address to the rest of its allocation.
func (d *fakeDevice) words(p uintptr) []uint32 {
	m, ok := d.mem[p>>32]
	off := int(p & 0xffffffff)
	if !ok || off > 4*len(m) {
		panic(fmt.Sprintf("fake: address %#x outside any allocation", p))
	}
	if off%4 != 0 {
		panic(fmt.Sprintf("fake: 32-bit access at %#x, not 4-byte aligned (a 16-bit view read as float32?)", p))
	}
	return m[off/4:]
}

// u16 resolves a device address to the rest of its allocation as 16-bit
// values (packed GEMM operands: 2-byte offsets, little-endian halves of
// the 32-bit words).
func (d *fakeDevice) u16(p uintptr) []uint16 {
	m, ok := d.mem[p>>32]
	off := int(p & 0xffffffff)
	if !ok || off > 4*len(m) || off%2 != 0 {
		panic(fmt.Sprintf("fake: 16-bit address %#x outside any allocation or odd", p))
	}
	if len(m) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&m[0])), 2*len(m))[off/2:]
}

func (d *fakeDevice) f32(p uintptr) []float32 {
	w := d.words(p)
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&w[0])), len(w))
}

func (d *fakeDevice) i32(p uintptr) []int32 {
	w := d.words(p)
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&w[0])), len(w))
}

func (d *fakeDevice) upload(b Buffer, src []float32) error {
	if len(src) > b.N {
		return fmt.Errorf("fake: upload of %d into %d", len(src), b.N)
	}
	copy(d.f32(b.Ptr), src)
	return nil
}

func (d *fakeDevice) uploadInts(b Buffer, src []int32) error {
	if len(src) > b.N {
		return fmt.Errorf("fake: upload of %d into %d", len(src), b.N)
	}
	copy(d.i32(b.Ptr), src)
	return nil
}

// downloadAsync snapshots b (the stream's state at this point of its
// order) and poisons dst until Sync delivers the snapshot.
func (d *fakeDevice) downloadAsync(dst []float32, b Buffer) error {
	if len(dst) > b.N {
		return fmt.Errorf("fake: download of %d from %d", len(dst), b.N)
	}
	d.downloaded += len(dst)
	vals := append([]float32(nil), d.f32(b.Ptr)[:len(dst)]...)
	for i := range dst {
		dst[i] = float32(math.NaN())
	}
	d.pending = append(d.pending, fakeCopy{dst, vals})
	return nil
}

// Sync delivers the queued downloads.
func (d *fakeDevice) Sync() error {
	d.syncs++
	for _, c := range d.pending {
		copy(c.dst, c.vals)
	}
	d.pending = d.pending[:0]
	return nil
}

func (d *fakeDevice) hold() (func(), error) {
	d.held++
	d.maxHeld = max(d.maxHeld, d.held)
	return func() { d.held-- }, nil
}

// issue counts a launch or GEMM made outside a hold.
func (d *fakeDevice) issue() {
	if d.held == 0 {
		d.unheld++
	}
}

func (d *fakeDevice) Pointers(addrs []uintptr) (Buffer, error) {
	b, err := d.Alloc(max(2*len(addrs), 1))
	if err != nil {
		return Buffer{}, err
	}
	return b, d.uploadInts(b, pointerWords(addrs))
}

// Gemm is a float32 GEMM (gemm); it fails while mixed precision is on.
func (d *fakeDevice) Gemm(ta, tb bool, m, n, k int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int) error {
	if err := d.checkFormat(PrecisionOff); err != nil {
		return err
	}
	return d.gemm(PrecisionOff, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GemmEx is gemm with A and B in format in (16-bit values decoded with
// FP16Value or BF16Value).
func (d *fakeDevice) GemmEx(in Precision, ta, tb bool, m, n, k int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int) error {
	if err := d.checkFormat(in); err != nil {
		return err
	}
	return d.gemm(in, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// checkFormat fails a GEMM whose input format is not d.inputFormat
// (when set).
func (d *fakeDevice) checkFormat(in Precision) error {
	if d.inputFormat == "" || in == d.inputFormat {
		return nil
	}
	if in == PrecisionOff {
		return fmt.Errorf("fake: float32 GEMM while mixed precision is %s: its operands skipped their packing", d.inputFormat)
	}
	return fmt.Errorf("fake: GEMM with %s inputs while mixed precision is %s", in, d.inputFormat)
}

// operand decodes the span values a GEMM reads from address p in format
// in into float32.
func (d *fakeDevice) operand(in Precision, p uintptr, span int) ([]float32, error) {
	var decode func(uint16) float32
	switch in {
	case PrecisionOff:
		return d.f32(p)[:span], nil
	case PrecisionFP16:
		decode = FP16Value
	case PrecisionBF16:
		decode = BF16Value
	default:
		return nil, fmt.Errorf("fake: GEMM input format %q", in)
	}
	out := make([]float32, span)
	for i, h := range d.u16(p)[:span] {
		out[i] = decode(h)
	}
	return out, nil
}

// gemm is a plain row-major triple loop over inputs in format in.
func (d *fakeDevice) gemm(in Precision, ta, tb bool, m, n, k int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int) error {
	d.gemms++
	d.blasCalls++
	d.issue()
	// cuBLAS's leading-dimension rules, in the row-major terms of Gemm.
	need := func(trans bool, ifT, ifN int) int {
		if trans {
			return ifT
		}
		return ifN
	}
	if lda < max(1, need(ta, m, k)) || ldb < max(1, need(tb, k, n)) || ldc < max(1, n) {
		return fmt.Errorf("fake: GEMM %dx%dx%d (transA %v, transB %v) with lda %d, ldb %d, ldc %d: cuBLAS would refuse", m, n, k, ta, tb, lda, ldb, ldc)
	}
	A, err := d.operand(in, a.Ptr, operandSpan(ta, m, k, lda))
	if err != nil {
		return err
	}
	B, err := d.operand(in, b.Ptr, operandSpan(tb, k, n, ldb))
	if err != nil {
		return err
	}
	C := d.f32(c.Ptr)
	at := func(i, p int) float32 {
		if ta {
			return A[p*lda+i]
		}
		return A[i*lda+p]
	}
	bt := func(p, j int) float32 {
		if tb {
			return B[j*ldb+p]
		}
		return B[p*ldb+j]
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				s += at(i, p) * bt(p, j)
			}
			if beta == 0 {
				C[i*ldc+j] = alpha * s
			} else {
				C[i*ldc+j] = alpha*s + beta*C[i*ldc+j]
			}
		}
	}
	return nil
}

// GemmBatched is Gemm over the matrices of the pointer arrays.
func (d *fakeDevice) GemmBatched(ta, tb bool, m, n, k int, alpha float32, aPtrs Buffer, lda int, bPtrs Buffer, ldb int, beta float32, cPtrs Buffer, ldc int, count int) error {
	return d.GemmBatchedEx(PrecisionOff, ta, tb, m, n, k, alpha, aPtrs, lda, bPtrs, ldb, beta, cPtrs, ldc, count)
}

// GemmBatchedEx is GemmEx over the matrices of the pointer arrays (one
// cuBLAS call); PrecisionOff is GemmBatched.
func (d *fakeDevice) GemmBatchedEx(in Precision, ta, tb bool, m, n, k int, alpha float32, aPtrs Buffer, lda int, bPtrs Buffer, ldb int, beta float32, cPtrs Buffer, ldc int, count int) error {
	if err := d.checkFormat(in); err != nil {
		return err
	}
	d.blasCalls -= count - 1 // the count gemm calls below are one cuBLAS call
	ptr := func(arr Buffer, i int) Buffer {
		w := d.i32(arr.Ptr)
		return Buffer{Ptr: uintptr(uint32(w[2*i])) | uintptr(uint32(w[2*i+1]))<<32}
	}
	for i := 0; i < count; i++ {
		if err := d.gemm(in, ta, tb, m, n, k, alpha, ptr(aPtrs, i), lda, ptr(bPtrs, i), ldb, beta, ptr(cPtrs, i), ldc); err != nil {
			return err
		}
	}
	return nil
}

// kargs reads launch arguments by kind.
type kargs struct {
	d    *fakeDevice
	args []any
}

// p, h and q are a Buffer argument's values (float32, 16-bit codes with N
// counting them, int32), cut to its N when set: a kernel reading or
// writing past the view it was given panics.
func (a kargs) p(i int) []float32 { return argView(a, i, a.d.f32) }
func (a kargs) h(i int) []uint16  { return argView(a, i, a.d.u16) }
func (a kargs) q(i int) []int32   { return argView(a, i, a.d.i32) }

// argView is argument i's values through view, cut to the Buffer's N.
func argView[T any](a kargs, i int, view func(uintptr) []T) []T {
	b := a.args[i].(Buffer)
	v := view(b.Ptr)
	if b.N > 0 {
		v = v[:b.N]
	}
	return v
}

func (a kargs) i(i int) int {
	switch v := a.args[i].(type) {
	case int:
		return int(int32(v))
	case int32:
		return int(v)
	}
	panic("not an int")
}
func (a kargs) f(i int) float32 {
	switch v := a.args[i].(type) {
	case float32:
		return v
	case float64:
		return float32(v)
	}
	panic("not a float")
}

func (d *fakeDevice) Launch(name string, grid, block [3]uint32, args ...any) error {
	if err := checkArgs(name, args); err != nil {
		return err
	}
	if d.source != nil {
		d.launches[name]++
		d.issue()
		return d.runSource(name, grid, block, args)
	}
	k, ok := fakeKernels[name]
	if !ok {
		return fmt.Errorf("fake: kernel %s is not emulated", name)
	}
	d.launches[name]++
	d.issue()
	k(kargs{d, args})
	return nil
}

// runSource launches name on d.source: each Buffer argument's slot gets
// the host address of the Go memory behind its fake address (checked as
// words and u16 check it; a zero Buffer stays a null pointer), and the
// allocations stay reachable until the kernel returned. Go's collector
// does not move heap memory.
func (d *fakeDevice) runSource(name string, grid, block [3]uint32, args []any) error {
	slots := packArgs(args)
	var keep [][]uint32
	for i, a := range args {
		b, ok := a.(Buffer)
		if !ok || b.Ptr == 0 {
			continue
		}
		if KernelParams[name][i] == 'h' {
			d.u16(b.Ptr)
		} else {
			d.words(b.Ptr)
		}
		m := d.mem[b.Ptr>>32]
		slots[i] = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(m))) + b.Ptr&0xffffffff)
		keep = append(keep, m)
	}
	var twin *fakeDevice
	if d.cross != nil {
		twin = d.argsCopy(args)
	}
	err := d.source.run(name, grid, block, slots)
	runtime.KeepAlive(keep)
	if err != nil {
		return err
	}
	if err := d.checkGuards(name); err != nil || twin == nil {
		return err
	}
	k, ok := fakeKernels[name]
	if !ok {
		return fmt.Errorf("fake: kernel %s has no Go transcription to compare with", name)
	}
	k(kargs{twin, args})
	d.cross.launches[name]++
	if err := d.cross.compare(name, args, d, twin); err != nil {
		if d.cross.mismatches[name]++; d.cross.mismatches[name] == 1 {
			d.cross.first[name] = err.Error()
		}
	}
	return nil
}

// argsCopy is a device holding copies of the allocations of args' Buffers
// (same addresses), without guards or a source runner.
func (d *fakeDevice) argsCopy(args []any) *fakeDevice {
	twin := &fakeDevice{mem: map[uintptr][]uint32{}, launches: map[string]int{}}
	for _, a := range args {
		if b, ok := a.(Buffer); ok && b.Ptr != 0 {
			twin.mem[b.Ptr>>32] = slices.Clone(d.mem[b.Ptr>>32])
		}
	}
	return twin
}

// compare checks every allocation that kernel name's arguments reach on
// got (the source's results) against want (the transcription's).
func (c *crossCheck) compare(name string, args []any, got, want *fakeDevice) error {
	for i, a := range args {
		b, ok := a.(Buffer)
		if !ok || b.Ptr == 0 {
			continue
		}
		g, w := got.mem[b.Ptr>>32], want.mem[b.Ptr>>32]
		if KernelParams[name][i] != 'p' {
			if !slices.Equal(g, w) {
				return fmt.Errorf("%s, allocation of argument %d: the source and the Go transcription differ (int or 16-bit values)", name, i)
			}
			continue
		}
		gf := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(g))), len(g))
		wf := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(w))), len(w))
		scale := 0.0
		for _, v := range wf {
			if v := math.Abs(float64(v)); !math.IsInf(v, 1) && !math.IsNaN(v) {
				scale = math.Max(scale, v)
			}
		}
		for j := range wf {
			x, y := float64(gf[j]), float64(wf[j])
			if x == y || math.IsNaN(x) && math.IsNaN(y) {
				continue
			}
			if !(math.Abs(x-y) <= c.tol*scale+1e-7) {
				return fmt.Errorf("%s, allocation of argument %d, value %d: source %g, Go transcription %g (allowed %.3g)", name, i, j, x, y, c.tol*scale+1e-7)
			}
		}
	}
	return nil
}

// fakePack is lsf_pack_f16 or lsf_pack_bf16: y[i] = bits(a[i]).
func fakePack(bits func(float32) uint16) func(kargs) {
	return func(a kargs) {
		x, y := a.p(0), a.h(1)
		for i := range a.i(2) {
			y[i] = bits(x[i])
		}
	}
}

func sigmoid32(x float32) float32 {
	if x >= 0 {
		return 1 / (1 + float32(math.Exp(float64(-x))))
	}
	e := float32(math.Exp(float64(x)))
	return e / (1 + e)
}

// surrogate32 is lsf_surrogate.
func surrogate32(x float32, kind int, k, m float32) float32 {
	var d float32
	switch kind {
	case 0:
		q := 1 + k*float32(math.Abs(float64(x)))
		d = 1 / (q * q)
	case 1:
		q := 1.5707963 * k * x
		d = 0.5 * k / (1 + q*q)
	case 2:
		s := 1 / (1 + float32(math.Exp(float64(-k*x))))
		d = k * s * (1 - s)
	case 3:
		d = k * float32(math.Max(0, float64(1-k*float32(math.Abs(float64(x))))))
	default:
		d = 1
	}
	return m * d
}

// lifNeuron32 is lsf_lif_neuron: neuron j's β (clamped), θ and graded
// factor from the LIF kernels' arguments, whose parameter pointers start
// at argument ptr (β, θ, g) and whose learn, beta, theta arguments at
// learn.
func lifNeuron32(a kargs, ptr, learn, j int) (beta, theta, g float32) {
	bits := a.i(learn)
	beta, theta, g = a.f(learn+1), a.f(learn+2), 1
	if bits&1 != 0 {
		beta = min(max(a.p(ptr)[j], 0), 1)
	}
	if bits&2 != 0 {
		theta = a.p(ptr + 1)[j]
	}
	if bits&4 != 0 {
		g = a.p(ptr + 2)[j]
	}
	return beta, theta, g
}

// unary32 transcribes an elementwise kernel y = f(x).
func unary32(f func(x float32) float32) func(a kargs) {
	return func(a kargs) {
		x, y := a.p(0), a.p(1)
		for i := range a.i(2) {
			y[i] = f(x[i])
		}
	}
}

// zip32 transcribes an elementwise kernel y = f(a, b).
func zip32(f func(a, b float32) float32) func(a kargs) {
	return func(a kargs) {
		x, g, y := a.p(0), a.p(1), a.p(2)
		for i := range a.i(3) {
			y[i] = f(x[i], g[i])
		}
	}
}

func tanh32(x float32) float32 { return float32(math.Tanh(float64(x))) }
func exp32(x float32) float32  { return float32(math.Exp(float64(x))) }
func erf32(x float32) float32  { return float32(math.Erf(float64(x))) }

// moreKernels are the elementwise kernels, registered in init.
var moreKernels = map[string]func(a kargs){
	"lsf_sub":             zip32(func(a, b float32) float32 { return a - b }),
	"lsf_div":             zip32(func(a, b float32) float32 { return a / b }),
	"lsf_neg":             unary32(func(x float32) float32 { return -x }),
	"lsf_log":             unary32(func(x float32) float32 { return float32(math.Log(float64(x))) }),
	"lsf_exp":             unary32(exp32),
	"lsf_tanh":            unary32(tanh32),
	"lsf_tanh_grad":       zip32(func(y, g float32) float32 { return g * (1 - y*y) }),
	"lsf_sigmoid":         unary32(sigmoid32),
	"lsf_sigmoid_grad":    zip32(func(y, g float32) float32 { return g * y * (1 - y) }),
	"lsf_silu":            unary32(func(x float32) float32 { return x / (1 + exp32(-x)) }),
	"lsf_silu_grad":       zip32(func(x, g float32) float32 { s := 1 / (1 + exp32(-x)); return g * s * (1 + x*(1-s)) }),
	"lsf_lecun_tanh":      unary32(func(x float32) float32 { return 1.7159 * tanh32(0.666*x) }),
	"lsf_lecun_tanh_grad": zip32(func(x, g float32) float32 { t := tanh32(0.666 * x); return g * 1.7159 * 0.666 * (1 - t*t) }),
	"lsf_gelu":            unary32(func(x float32) float32 { return 0.5 * x * (1 + erf32(x*0.70710678)) }),
	"lsf_gelu_grad": zip32(func(x, g float32) float32 {
		return g * (0.5*(1+erf32(x*0.70710678)) + x*0.39894228*exp32(-0.5*x*x))
	}),
	"lsf_heaviside": unary32(func(x float32) float32 {
		if x > 0 {
			return 1
		}
		return 0
	}),
	"lsf_spike_stats": func(a kargs) {
		x, y, rows, n := a.p(0), a.p(1), a.i(2), a.i(3)
		for j := 0; j < n; j++ {
			f := 0
			for r := 0; r < rows; r++ {
				if x[r*n+j] != 0 {
					f++
				}
			}
			y[j], y[n+j], y[2*n+j] = float32(f)/float32(rows), 0, 0
			if f == 0 {
				y[n+j] = 1
			}
			if f == rows {
				y[2*n+j] = 1
			}
		}
	},
	"lsf_spike_grad": func(a kargs) {
		x, g, dx, kind, k, m := a.p(0), a.p(1), a.p(2), a.i(4), a.f(5), a.f(6)
		for i := range a.i(3) {
			dx[i] = g[i] * surrogate32(x[i], kind, k, m)
		}
	},
}

// cfcAct32 and cfcActDy32 are lsf_cfc_act and lsf_cfc_act_dy (the
// derivative from the output, or for silu and gelu from the input).
func cfcAct32(a float32, act int) float32 {
	switch act {
	case 0:
		return 1.7159 * tanh32(0.666*a)
	case 1:
		return tanh32(a)
	case 2:
		return sigmoid32(a)
	case 3:
		return max(a, 0)
	case 5:
		return a * sigmoid32(a)
	case 6:
		return float32(0.5 * float64(a) * (1 + math.Erf(float64(a)/math.Sqrt2)))
	}
	return a
}

func cfcActDy32(v float32, act int) float32 {
	switch act {
	case 0:
		t := v / 1.7159
		return 1.7159 * 0.666 * (1 - t*t)
	case 1:
		return 1 - v*v
	case 2:
		return v * (1 - v)
	case 3:
		if v > 0 {
			return 1
		}
		return 0
	case 5:
		s := sigmoid32(v)
		return s * (1 + v*(1-s))
	case 6:
		a := float64(v)
		return float32(0.5*(1+math.Erf(a/math.Sqrt2)) + a*math.Exp(-0.5*a*a)/math.Sqrt(2*math.Pi))
	}
	return 1
}

// cfcKernels are kernels/cfc.cu, registered in init.
var cfcKernels = map[string]func(a kargs){
	"lsf_cfc_bias_act": func(a kargs) {
		c, bias, rows, n, ld, act, keep := a.p(0), a.p(1), a.i(2), a.i(3), a.i(4), a.i(5), a.i(6)
		for i := 0; i < rows*n; i++ {
			r, j := i/n, i%n
			v := c[r*ld+j] + bias[j]
			if keep > 0 {
				c[r*ld+keep+j] = v
			}
			c[r*ld+j] = cfcAct32(v, act)
		}
	},
	"lsf_cfc_act_grad": func(a kargs) {
		g, y, da, rows, n, ld, act := a.p(0), a.p(1), a.p(2), a.i(3), a.i(4), a.i(5), a.i(6)
		for i := 0; i < rows*n; i++ {
			da[i] = g[i] * cfcActDy32(y[(i/n)*ld+i%n], act)
		}
	},
	"lsf_cfc_heads": func(a kargs) {
		hd, hb, cache, h, rows, u, rc, off, ts, mode := a.p(0), a.p(1), a.p(4), a.p(5), a.i(6), a.i(7), a.i(8), a.i(9), a.f(10), a.i(11)
		for i := 0; i < rows*u; i++ {
			r, j := i/u, i%u
			c := cache[r*rc+off:]
			if mode == 2 {
				tau, amp := a.p(2), a.p(3)
				f := hd[i] + hb[j]
				e := float32(math.Exp(float64(-ts * (abs32(tau[j]) + abs32(f)))))
				c[j], c[u+j] = f, e
				h[i] = amp[j] - e*f*amp[j]
				continue
			}
			x := hd[r*4*u:]
			f1, f2 := tanh32(x[j]+hb[j]), tanh32(x[u+j]+hb[u+j])
			g := sigmoid32((x[2*u+j]+hb[2*u+j])*ts + x[3*u+j] + hb[3*u+j])
			c[j], c[u+j], c[2*u+j] = f1, f2, g
			if mode == 1 {
				h[i] = f1*(1-g) + g*f2
			} else {
				h[i] = f1 + g*f2
			}
		}
	},
	"lsf_cfc_heads_grad": func(a kargs) {
		g, carry, cache, dhd, rows, u, rc, off := a.p(0), a.p(1), a.p(4), a.p(5), a.i(7), a.i(8), a.i(9), a.i(10)
		ts, mode, hasCarry := a.f(11), a.i(12), a.i(13)
		for i := 0; i < rows*u; i++ {
			r, j := i/u, i%u
			d := g[i]
			if hasCarry != 0 {
				d += carry[i]
			}
			c := cache[r*rc+off:]
			if mode == 2 {
				tau, amp, part := a.p(2), a.p(3), a.p(6)
				f, e, A := c[j], c[u+j], amp[j]
				var sw float32
				switch {
				case tau[j] > 0:
					sw = 1
				case tau[j] < 0:
					sw = -1
				}
				dhd[i] = -d * A * e * (1 - ts*abs32(f))
				part[r*2*u+j] = d * A * f * e * ts * sw
				part[r*2*u+u+j] = d * (1 - e*f)
				continue
			}
			f1, f2, s := c[j], c[u+j], c[2*u+j]
			da, ds := d, d*f2
			if mode == 1 {
				da, ds = d*(1-s), d*(f2-f1)
			}
			dz := ds * s * (1 - s)
			o := dhd[r*4*u:]
			o[j], o[u+j], o[2*u+j], o[3*u+j] = da*(1-f1*f1), d*s*(1-f2*f2), dz*ts, dz
		}
	},
}

// abs32 is |x| in float32.
func abs32(x float32) float32 { return float32(math.Abs(float64(x))) }

func init() {
	for k, f := range fusionKernels {
		fakeKernels[k] = f
	}
	for k, f := range cfcKernels {
		fakeKernels[k] = f
	}
	for k, f := range moreKernels {
		fakeKernels[k] = f
	}
}

// fusionKernels are kernels/fusion.cu, registered in init.
var fusionKernels = map[string]func(a kargs){
	"lsf_substitute": func(a kargs) {
		f, e, mask, y, b, d, m, col := a.p(0), a.p(1), a.p(2), a.p(3), a.i(4), a.i(5), a.i(6), a.i(7)
		for i := 0; i < b*d; i++ {
			k := mask[(i/d)*m+col]
			y[i] = k*f[i] + (1-k)*e[i%d]
		}
	},
	"lsf_mask_rows": func(a kargs) {
		g, mask, y, b, d, m, col := a.p(0), a.p(1), a.p(2), a.i(3), a.i(4), a.i(5), a.i(6)
		for i := 0; i < b*d; i++ {
			y[i] = g[i] * mask[(i/d)*m+col]
		}
	},
	"lsf_missing_grad": func(a kargs) {
		g, mask, de, b, d, m, col := a.p(0), a.p(1), a.p(2), a.i(3), a.i(4), a.i(5), a.i(6)
		for k := 0; k < d; k++ {
			var s float32
			for r := 0; r < b; r++ {
				s += (1 - mask[r*m+col]) * g[r*d+k]
			}
			de[k] = s
		}
	},
	"lsf_weighted": func(a kargs) {
		x, logits, y, n, m, col, factor := a.p(0), a.p(1), a.p(2), a.i(3), a.i(4), a.i(5), a.f(6)
		w := fakeSoftmax(logits[:m])
		for i := 0; i < n; i++ {
			y[i] = factor * w[col] * x[i]
		}
	},
	"lsf_weighted_logit_grad": func(a kargs) {
		g, x, logits, dl, n, m, col, factor := a.p(0), a.p(1), a.p(2), a.p(3), a.i(4), a.i(5), a.i(6), a.f(7)
		w := fakeSoftmax(logits[:m])
		var s float32
		for i := 0; i < n; i++ {
			s += g[i] * x[i]
		}
		for j := 0; j < m; j++ {
			delta := float32(0)
			if j == col {
				delta = 1
			}
			dl[j] = factor * s * w[col] * (delta - w[j])
		}
	},
}

// fakeSoftmax is the softmax lsf_weight_of computes per thread.
func fakeSoftmax(l []float32) []float32 {
	m, s := fakeLogSumExp(l)
	w := make([]float32, len(l))
	for j, v := range l {
		w[j] = exp32(v-m) / s
	}
	return w
}

// fakeKernels transcribes the kernels the executor's tests reach.
var fakeKernels = map[string]func(a kargs){
	"lsf_add": func(a kargs) {
		x, y, o := a.p(0), a.p(1), a.p(2)
		for i := range a.i(3) {
			o[i] = x[i] + y[i]
		}
	},
	"lsf_mul": func(a kargs) {
		x, y, o := a.p(0), a.p(1), a.p(2)
		for i := range a.i(3) {
			o[i] = x[i] * y[i]
		}
	},
	"lsf_add_row": func(a kargs) {
		x, y, o, m := a.p(0), a.p(1), a.p(2), a.i(4)
		for i := range a.i(3) {
			o[i] = x[i] + y[i%m]
		}
	},
	"lsf_mul_row": func(a kargs) {
		x, y, o, m := a.p(0), a.p(1), a.p(2), a.i(4)
		for i := range a.i(3) {
			o[i] = x[i] * y[i%m]
		}
	},
	"lsf_square": func(a kargs) {
		x, o := a.p(0), a.p(1)
		for i := range a.i(2) {
			o[i] = x[i] * x[i]
		}
	},
	"lsf_scale": func(a kargs) {
		x, s, o := a.p(0), a.f(1), a.p(2)
		for i := range a.i(3) {
			o[i] = s * x[i]
		}
	},

	"lsf_pack_f16":  fakePack(FP16Bits),
	"lsf_pack_bf16": fakePack(BF16Bits),
	"lsf_fill": func(a kargs) {
		o, v := a.p(0), a.f(1)
		for i := range a.i(2) {
			o[i] = v
		}
	},
	"lsf_accum": func(a kargs) {
		x, o := a.p(0), a.p(1)
		for i := range a.i(2) {
			o[i] += x[i]
		}
	},
	"lsf_relu": func(a kargs) {
		x, o := a.p(0), a.p(1)
		for i := range a.i(2) {
			o[i] = max(x[i], 0)
		}
	},
	"lsf_relu_grad": func(a kargs) {
		x, g, o := a.p(0), a.p(1), a.p(2)
		for i := range a.i(3) {
			o[i] = 0
			if x[i] > 0 {
				o[i] = g[i]
			}
		}
	},
	"lsf_sum_rows": func(a kargs) {
		x, y, rows, cols := a.p(0), a.p(1), a.i(2), a.i(3)
		for c := 0; c < cols; c++ {
			var part [8]float32 // lane l sums rows l, l+8, …
			for r := 0; r < rows; r++ {
				part[r%8] += x[r*cols+c]
			}
			var s float32
			for _, p := range part {
				s += p
			}
			y[c] = s
		}
	},
	"lsf_sum_mid": func(a kargs) {
		x, y, outer, n, inner, scale := a.p(0), a.p(1), a.i(2), a.i(3), a.i(4), a.f(5)
		for i := 0; i < outer*inner; i++ {
			o, k := i/inner, i%inner
			var s float32
			for j := 0; j < n; j++ {
				s += x[(o*n+j)*inner+k]
			}
			y[i] = scale * s
		}
	},
	"lsf_sum_all": func(a kargs) {
		x, y := a.p(0), a.p(1)
		var s float32
		for i := range a.i(2) {
			s += x[i]
		}
		y[0] = s
	},
	"lsf_sum_sq": func(a kargs) {
		x, y, n, sc := a.p(0), a.p(1), a.i(2), a.f(3)
		var part [256]float32 // thread t sums i ≡ t mod 256, then a tree
		for i := range n {
			v := sc * x[i]
			part[i%256] += v * v
		}
		for w := 128; w > 0; w >>= 1 {
			for t := range w {
				part[t] += part[t+w]
			}
		}
		y[0] = part[0]
	},
	"lsf_broadcast_mid": func(a kargs) {
		g, y, outer, n, inner, scale := a.p(0), a.p(1), a.i(2), a.i(3), a.i(4), a.f(5)
		for i := 0; i < outer*n*inner; i++ {
			y[i] = scale * g[(i/(n*inner))*inner+i%inner]
		}
	},
	"lsf_slice_get": func(a kargs) { fakeSlice(a, false) },
	"lsf_slice_put": func(a kargs) { fakeSlice(a, true) },
	"lsf_swap12": func(a kargs) {
		x, y, d0, d1, d2, inner := a.p(0), a.p(1), a.i(2), a.i(3), a.i(4), a.i(5)
		for i := 0; i < d0*d1*d2*inner; i++ {
			k, r, b, o := i%inner, (i/inner)%d1, (i/(inner*d1))%d2, i/(inner*d1*d2)
			y[i] = x[((o*d1+r)*d2+b)*inner+k]
		}
	},
	"lsf_mix_rows": func(a kargs) {
		x, ptr, src, w, y := a.p(0), a.q(1), a.q(2), a.p(3), a.p(4)
		outer, inRows, outRows, inner := a.i(5), a.i(6), a.i(7), a.i(8)
		for i := 0; i < outer*outRows*inner; i++ {
			k, r, o := i%inner, (i/inner)%outRows, i/(inner*outRows)
			var acc float32
			for e := ptr[r]; e < ptr[r+1]; e++ {
				acc += w[e] * x[(o*inRows+int(src[e]))*inner+k]
			}
			y[i] = acc
		}
	},
	"lsf_channel_sum": func(a kargs) {
		x, y, b, c, s := a.p(0), a.p(1), a.i(2), a.i(3), a.i(4)
		for ch := 0; ch < c; ch++ {
			var sum float32
			for i := 0; i < b*s; i++ {
				sum += x[((i/s)*c+ch)*s+i%s]
			}
			y[ch] = sum
		}
	},
	"lsf_add_channel": func(a kargs) {
		y, bias, b, c, s := a.p(0), a.p(1), a.i(2), a.i(3), a.i(4)
		for i := 0; i < b*c*s; i++ {
			y[i] += bias[(i/s)%c]
		}
	},
	"lsf_gather_cols": func(a kargs) {
		x, idx, y, rows, n, m := a.p(0), a.q(1), a.p(2), a.i(3), a.i(4), a.i(5)
		for i := 0; i < rows*m; i++ {
			y[i] = 0
			if j := int(idx[i%m]); j >= 0 {
				y[i] = x[(i/m)*n+j]
			}
		}
	},

	"lsf_gather_rows": func(a kargs) {
		x, idx, y, rows, cols := a.p(0), a.q(1), a.p(2), a.i(3), a.i(4)
		for i := 0; i < rows*cols; i++ {
			y[i] = 0
			if j := int(idx[i/cols]); j >= 0 {
				y[i] = x[j*cols+i%cols]
			}
		}
	},
	"lsf_scatter_add_rows": func(a kargs) {
		g, idx, dx, rows, cols := a.p(0), a.q(1), a.p(2), a.i(3), a.i(4)
		for i := 0; i < rows*cols; i++ {
			if j := int(idx[i/cols]); j >= 0 {
				dx[j*cols+i%cols] += g[i]
			}
		}
	},
	"lsf_weighted_sum_l": func(a kargs) {
		x, w, y, b, l, d := a.p(0), a.p(1), a.p(2), a.i(3), a.i(4), a.i(5)
		for i := 0; i < b*d; i++ {
			r, k := i/d, i%d
			var s float32
			for j := 0; j < l; j++ {
				s += w[r*l+j] * x[(r*l+j)*d+k]
			}
			y[i] = s
		}
	},
	"lsf_spread_l": func(a kargs) {
		g, w, dx, b, l, d := a.p(0), a.p(1), a.p(2), a.i(3), a.i(4), a.i(5)
		for i := 0; i < b*l*d; i++ {
			dx[i] = w[i/d] * g[(i/(l*d))*d+i%d]
		}
	},
	"lsf_lif_seq_forward": func(a kargs) {
		cur, spikes, mem, n, units, steps, perStep, reset := a.p(0), a.p(4), a.p(5), a.i(6), a.i(7), a.i(8), a.i(9), a.i(10)
		for i := 0; i < n; i++ {
			beta, theta, g := lifNeuron32(a, 1, 11, i%units)
			var u float32
			for t := 0; t < steps; t++ {
				x := cur[i]
				if perStep != 0 {
					x = cur[t*n+i]
				}
				fired := u-theta > 0
				switch {
				case reset == 0 && fired:
					u = beta*u + x - theta
				case reset == 1 && fired:
					u = x
				default:
					u = beta*u + x
				}
				mem[t*n+i] = u
				spikes[t*n+i] = 0
				if u-theta > 0 {
					spikes[t*n+i] = g
				}
			}
		}
	},
	"lsf_lif_seq_backward": func(a kargs) {
		mem, g, dcur, n, units, steps, perStep, reset := a.p(0), a.p(1), a.p(5), a.i(7), a.i(8), a.i(9), a.i(10), a.i(11)
		learn, kind, k, m := a.i(12), a.i(15), a.f(16), a.f(17)
		for i := 0; i < n; i++ {
			j := i % units
			beta, theta, gf := lifNeuron32(a, 2, 12, j)
			var carry, sum, sb, st, sg float32
			for t := steps - 1; t >= 0; t-- {
				ut, p := mem[t*n+i], float32(0)
				if t > 0 {
					p = mem[(t-1)*n+i]
				}
				gt := g[t*n+i]
				gs := gt * gf * surrogate32(ut-theta, kind, k, m)
				delta := gs + carry
				if perStep != 0 {
					dcur[t*n+i] = delta
				} else {
					sum += delta
				}
				fired := p-theta > 0
				keep := float32(1)
				if reset == 1 && fired {
					keep = 0
				}
				sb += delta * keep * p
				st -= gs
				if reset == 0 && fired {
					st -= delta
				}
				if ut-theta > 0 {
					sg += gt
				}
				carry = delta * beta * keep
			}
			if perStep == 0 {
				dcur[i] = sum
			}
			if learn == 0 {
				continue
			}
			var vals []float32
			if learn&1 != 0 {
				if bv := a.p(2)[j]; !(bv >= 0 && bv <= 1) {
					sb = 0
				}
				vals = append(vals, sb)
			}
			if learn&2 != 0 {
				vals = append(vals, st)
			}
			if learn&4 != 0 {
				vals = append(vals, sg)
			}
			part := a.p(6)[(i/units)*len(vals)*units:]
			for s, v := range vals {
				part[s*units+j] = v
			}
		}
	},
	"lsf_layernorm": func(a kargs) {
		x, w, b, y, mean, rstd, rows, cols, eps := a.p(0), a.p(1), a.p(2), a.p(3), a.p(4), a.p(5), a.i(6), a.i(7), a.f(8)
		for r := 0; r < rows; r++ {
			xr := x[r*cols : (r+1)*cols]
			var s, q float32
			for _, v := range xr {
				s += v
			}
			mu := s / float32(cols)
			for _, v := range xr {
				q += (v - mu) * (v - mu)
			}
			rs := 1 / float32(math.Sqrt(float64(q/float32(cols)+eps)))
			for c, v := range xr {
				y[r*cols+c] = (v-mu)*rs*w[c] + b[c]
			}
			mean[r], rstd[r] = mu, rs
		}
	},
	"lsf_layernorm_grad_x": func(a kargs) {
		x, w, g, mean, rstd, dx, rows, cols := a.p(0), a.p(1), a.p(2), a.p(3), a.p(4), a.p(5), a.i(6), a.i(7)
		for r := 0; r < rows; r++ {
			mu, rs := mean[r], rstd[r]
			var s1, s2 float32
			for c := 0; c < cols; c++ {
				gh, xh := g[r*cols+c]*w[c], (x[r*cols+c]-mu)*rs
				s1 += gh
				s2 += gh * xh
			}
			s1 /= float32(cols)
			s2 /= float32(cols)
			for c := 0; c < cols; c++ {
				gh, xh := g[r*cols+c]*w[c], (x[r*cols+c]-mu)*rs
				dx[r*cols+c] = rs * (gh - s1 - xh*s2)
			}
		}
	},
	"lsf_layernorm_grad_wb": func(a kargs) {
		x, g, mean, rstd, dw, db, rows, cols := a.p(0), a.p(1), a.p(2), a.p(3), a.p(4), a.p(5), a.i(6), a.i(7)
		for c := 0; c < cols; c++ {
			var sw, sb float32
			for r := 0; r < rows; r++ {
				gv := g[r*cols+c]
				sw += gv * (x[r*cols+c] - mean[r]) * rstd[r]
				sb += gv
			}
			dw[c], db[c] = sw, sb
		}
	},
	"lsf_softmax": func(a kargs) {
		x, mask, y, rows, cols, div := a.p(0), a.p(1), a.p(2), a.i(3), a.i(4), a.i(5)
		for r := 0; r < rows; r++ {
			keep := func(c int) bool { return div == 0 || mask[(r/div)*cols+c] > 0 }
			m := float32(-3e38)
			for c := 0; c < cols; c++ {
				if keep(c) {
					m = max(m, x[r*cols+c])
				}
			}
			var s float32
			e := make([]float32, cols)
			for c := 0; c < cols; c++ {
				if keep(c) {
					e[c] = float32(math.Exp(float64(x[r*cols+c] - m)))
					s += e[c]
				}
			}
			for c := 0; c < cols; c++ {
				y[r*cols+c] = e[c] / s
			}
		}
	},
	"lsf_softmax_grad": func(a kargs) {
		y, g, dx, rows, cols := a.p(0), a.p(1), a.p(2), a.i(3), a.i(4)
		for r := 0; r < rows; r++ {
			var s float32
			for c := 0; c < cols; c++ {
				s += g[r*cols+c] * y[r*cols+c]
			}
			for c := 0; c < cols; c++ {
				dx[r*cols+c] = y[r*cols+c] * (g[r*cols+c] - s)
			}
		}
	},
	"lsf_xent": func(a kargs) {
		x, labels, loss, count, rows, cols, ignore := a.p(0), a.q(1), a.p(2), a.p(3), a.i(4), a.i(5), a.i(6)
		for r := 0; r < rows; r++ {
			m, s := fakeLogSumExp(x[r*cols : (r+1)*cols])
			l := int(labels[r])
			loss[r], count[r] = 0, 0
			if l != ignore && l >= 0 && l < cols {
				loss[r], count[r] = float32(math.Log(float64(s)))+m-x[r*cols+l], 1
			}
		}
	},
	"lsf_xent_grad": func(a kargs) {
		x, labels, dx, rows, cols, ignore, scale := a.p(0), a.q(1), a.p(2), a.i(3), a.i(4), a.i(5), a.f(6)
		for r := 0; r < rows; r++ {
			m, s := fakeLogSumExp(x[r*cols : (r+1)*cols])
			l := int(labels[r])
			use := l != ignore && l >= 0 && l < cols
			for c := 0; c < cols; c++ {
				dx[r*cols+c] = 0
				if use {
					oh := float32(0)
					if c == l {
						oh = 1
					}
					dx[r*cols+c] = scale * (float32(math.Exp(float64(x[r*cols+c]-m)))/s - oh)
				}
			}
		}
	},
	"lsf_maxpool1d": func(a kargs) {
		x, y, arg, rows, l, outLen, k, stride, pad := a.p(0), a.p(1), a.q(2), a.i(3), a.i(4), a.i(5), a.i(6), a.i(7), a.i(8)
		for i := 0; i < rows*outLen; i++ {
			r, o := i/outLen, i%outLen
			best, bi := float32(-3e38), -1
			for j := 0; j < k; j++ {
				if p := o*stride - pad + j; p >= 0 && p < l && x[r*l+p] > best {
					best, bi = x[r*l+p], p
				}
			}
			y[i], arg[i] = best, int32(bi)
		}
	},
	"lsf_maxpool2d": func(a kargs) {
		x, y, arg := a.p(0), a.p(1), a.q(2)
		planes, h, w, oh, ow := a.i(3), a.i(4), a.i(5), a.i(6), a.i(7)
		kh, kw, sh, sw, ph, pw := a.i(8), a.i(9), a.i(10), a.i(11), a.i(12), a.i(13)
		for i := 0; i < planes*oh*ow; i++ {
			oj, oi, pl := i%ow, (i/ow)%oh, i/(ow*oh)
			xp := x[pl*h*w:]
			h0, w0 := oi*sh-ph, oj*sw-pw
			var best float32
			bi := -1
			for r := max(h0, 0); r < h0+kh && r < h; r++ {
				for c := max(w0, 0); c < w0+kw && c < w; c++ {
					if v := xp[r*w+c]; bi < 0 || v > best || v != v {
						best, bi = v, r*w+c
					}
				}
			}
			y[i], arg[i] = best, int32(bi)
		}
	},
	"lsf_maxpool1d_grad": func(a kargs) {
		g, arg, dx, rows, l, outLen := a.p(0), a.q(1), a.p(2), a.i(3), a.i(4), a.i(5)
		for i := 0; i < rows*outLen; i++ {
			if arg[i] >= 0 {
				dx[(i/outLen)*l+int(arg[i])] += g[i]
			}
		}
	},
	"lsf_channel_stats": func(a kargs) {
		x, mean, vr, b, c, sz := a.p(0), a.p(1), a.p(2), a.i(3), a.i(4), a.i(5)
		for ch := 0; ch < c; ch++ {
			var s, q float32
			for i := 0; i < b*sz; i++ {
				s += x[((i/sz)*c+ch)*sz+i%sz]
			}
			mu := s / float32(b*sz)
			for i := 0; i < b*sz; i++ {
				d := x[((i/sz)*c+ch)*sz+i%sz] - mu
				q += d * d
			}
			mean[ch], vr[ch] = mu, q/float32(b*sz)
		}
	},
	"lsf_channel_affine": func(a kargs) {
		x, mean, vr, w, bias, y, b, c, sz, eps := a.p(0), a.p(1), a.p(2), a.p(3), a.p(4), a.p(5), a.i(6), a.i(7), a.i(8), a.f(9)
		for i := 0; i < b*c*sz; i++ {
			ch := (i / sz) % c
			y[i] = (x[i]-mean[ch])/float32(math.Sqrt(float64(vr[ch]+eps)))*w[ch] + bias[ch]
		}
	},
	"lsf_bn_running": func(a kargs) {
		rm, rv, mean, vr, c, m, n := a.p(0), a.p(1), a.p(2), a.p(3), a.i(4), a.f(5), a.f(6)
		for i := 0; i < c; i++ {
			rm[i] = (1-m)*rm[i] + m*mean[i]
			rv[i] = (1-m)*rv[i] + m*vr[i]*n/(n-1)
		}
	},
	"lsf_bn_grad_sums": func(a kargs) {
		x, g, mean, vr, sg, sgx, b, c, sz, eps := a.p(0), a.p(1), a.p(2), a.p(3), a.p(4), a.p(5), a.i(6), a.i(7), a.i(8), a.f(9)
		for ch := 0; ch < c; ch++ {
			rs := 1 / float32(math.Sqrt(float64(vr[ch]+eps)))
			var s1, s2 float32
			for i := 0; i < b*sz; i++ {
				k := ((i/sz)*c+ch)*sz + i%sz
				s1 += g[k]
				s2 += g[k] * (x[k] - mean[ch]) * rs
			}
			sg[ch], sgx[ch] = s1, s2
		}
	},
	"lsf_bn_grad_x": func(a kargs) {
		x, g, gamma, mean, vr, sg, sgx, dx := a.p(0), a.p(1), a.p(2), a.p(3), a.p(4), a.p(5), a.p(6), a.p(7)
		b, c, sz, eps, train := a.i(8), a.i(9), a.i(10), a.f(11), a.i(12)
		for i := 0; i < b*c*sz; i++ {
			ch := (i / sz) % c
			rs := 1 / float32(math.Sqrt(float64(vr[ch]+eps)))
			if train == 0 {
				dx[i] = gamma[ch] * rs * g[i]
				continue
			}
			n, xh := float32(b*sz), (x[i]-mean[ch])*rs
			dx[i] = gamma[ch] * rs * (g[i] - sg[ch]/n - xh*sgx[ch]/n)
		}
	},
	"lsf_im2col2d": func(a kargs) { fakeIm2col(a, false) },
	"lsf_col2im2d": func(a kargs) { fakeIm2col(a, true) },
	"lsf_adam": func(a kargs) {
		p, g, m, v, n := a.p(0), a.p(1), a.p(2), a.p(3), a.i(4)
		lr, b1, b2, eps, wd, keep := a.f(5), a.f(6), a.f(7), a.f(8), a.f(9), a.f(10)
		for i := 0; i < n; i++ {
			pi := keep * p[i]
			gi := g[i] + wd*pi
			m[i] = b1*m[i] + (1-b1)*gi
			v[i] = b2*v[i] + (1-b2)*gi*gi
			p[i] = pi - lr*m[i]/(float32(math.Sqrt(float64(v[i])))+eps)
			g[i] = 0
		}
	},
}

// fakeSlice is lsf_slice_get (put false) and lsf_slice_put.
func fakeSlice(a kargs, put bool) {
	x, y, outer, n, inner, start, count := a.p(0), a.p(1), a.i(2), a.i(3), a.i(4), a.i(5), a.i(6)
	for i := 0; i < outer*count*inner; i++ {
		k, j, o := i%inner, (i/inner)%count, i/(inner*count)
		at := (o*n+start+j)*inner + k
		if put {
			y[at] = x[i]
		} else {
			y[i] = x[at]
		}
	}
}

// fakeIm2col is lsf_im2col2d (col false) and lsf_col2im2d.
func fakeIm2col(a kargs, back bool) {
	src, dst := a.p(0), a.p(1)
	ch, h, w, kh, kw, sh, sw, ph, pw, oh, ow := a.i(2), a.i(3), a.i(4), a.i(5), a.i(6), a.i(7), a.i(8), a.i(9), a.i(10), a.i(11), a.i(12)
	for i := 0; i < ch*kh*kw*oh*ow; i++ {
		ox, oy, row := i%ow, (i/ow)%oh, i/(ow*oh)
		kx, ky, c := row%kw, (row/kw)%kh, row/(kw*kh)
		y, x := oy*sh-ph+ky, ox*sw-pw+kx
		inside := y >= 0 && y < h && x >= 0 && x < w
		switch {
		case back && inside:
			dst[(c*h+y)*w+x] += src[i]
		case !back && inside:
			dst[i] = src[(c*h+y)*w+x]
		case !back:
			dst[i] = 0
		}
	}
}

// fakeLogSumExp returns a row's max and Σ exp(x − max).
func fakeLogSumExp(x []float32) (m, s float32) {
	m = float32(-3e38)
	for _, v := range x {
		m = max(m, v)
	}
	for _, v := range x {
		s += float32(math.Exp(float64(v - m)))
	}
	return m, s
}
