package cuda

import (
	"errors"
	"fmt"
	"sync"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// device is what a Machine needs of a GPU: memory, copies, kernel
// launches and GEMMs. *Device implements it; CPU tests use a fake that
// keeps "device" memory in Go slices.
type device interface {
	// Alloc returns n zeroed float32 (or int32) values.
	Alloc(n int) (Buffer, error)
	Free(b Buffer) error
	// Launch runs a kernel of kernels/*.cu (arguments as Device.Launch).
	Launch(name string, grid, block [3]uint32, args ...any) error
	// Gemm and GemmBatched are Device.Gemm and Device.GemmBatched
	// (row-major, float32 inputs); GemmEx and GemmBatchedEx take inputs
	// in a given format (mixed precision: packed 16-bit operands).
	Gemm(transA, transB bool, m, n, k int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int) error
	GemmBatched(transA, transB bool, m, n, k int, alpha float32, aPtrs Buffer, lda int, bPtrs Buffer, ldb int, beta float32, cPtrs Buffer, ldc int, count int) error
	GemmEx(in Precision, transA, transB bool, m, n, k int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int) error
	GemmBatchedEx(in Precision, transA, transB bool, m, n, k int, alpha float32, aPtrs Buffer, lda int, bPtrs Buffer, ldb int, beta float32, cPtrs Buffer, ldc int, count int) error
	// Pointers uploads device addresses as an array for GemmBatched.
	Pointers(addrs []uintptr) (Buffer, error)
	// Sync waits for the queued work: queued downloads have landed.
	Sync() error
	// hold pins the calling goroutine's OS thread with the context
	// current for a batch of calls (Device.Hold); release undoes it.
	hold() (release func(), err error)
	// upload queues a copy of src into b; src may be reused on return.
	upload(b Buffer, src []float32) error
	uploadInts(b Buffer, src []int32) error
	// downloadAsync queues a copy of b into dst, in order with the work
	// queued before it; dst holds the values only after Sync.
	downloadAsync(dst []float32, b Buffer) error
}

// download copies b into dst and waits for it (one Sync).
func download(d device, dst []float32, b Buffer) error {
	if err := d.downloadAsync(dst, b); err != nil {
		return err
	}
	return d.Sync()
}

// at is the view of b starting off values in, n values long.
func (b Buffer) at(off, n int) Buffer { return Buffer{Ptr: b.Ptr + uintptr(4*off), N: n} }

// at16 is at for a buffer of 16-bit values (packed GEMM operands, 2
// bytes each): the view starting off values in, n values long.
func (b Buffer) at16(off, n int) Buffer { return Buffer{Ptr: b.Ptr + uintptr(2*off), N: n} }

// Session is one open GPU shared by the machines of a run: the device,
// the device copies of the parameters (keyed by their host tensors, so
// every graph built on the same nn.Store shares them) and the optimiser's
// moments.
type Session struct {
	dev    device
	params map[uintptr]*param
	order  []*param
	close  func() error
	// Info describes the GPU (zero for test devices).
	Info DeviceInfo
}

// param is a parameter resident on the device.
type param struct {
	host *tensor.Dense
	buf  Buffer
	// Adam state: first and second moments (allocated at the first step)
	// and the step count.
	m, v Buffer
	t    int
}

// newSession wraps a device.
func newSession(dev device, closeFn func() error) *Session {
	return &Session{dev: dev, params: map[uintptr]*param{}, close: closeFn}
}

var (
	defaultOnce sync.Once
	defaultSess *Session
	defaultErr  error
)

// DefaultSession opens device 0 once per process (OpenSession(0)); it is
// what NewMachine uses without WithSession.
func DefaultSession() (*Session, error) {
	defaultOnce.Do(func() { defaultSess, defaultErr = OpenSession(0) })
	return defaultSess, defaultErr
}

// lookup returns the resident parameter whose host tensor is v (same
// memory and size), or nil.
func (s *Session) lookup(v *tensor.Dense) *param {
	if p, ok := s.params[v.Uintptr()]; ok && p.buf.N == v.Shape().TotalSize() {
		return p
	}
	return nil
}

// param returns the device copy of a host parameter tensor, uploading it
// the first time.
func (s *Session) param(v *tensor.Dense) (*param, error) {
	if v.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("dtype %v, want float32", v.Dtype())
	}
	if p := s.lookup(v); p != nil {
		return p, nil
	}
	if _, clash := s.params[v.Uintptr()]; clash {
		return nil, fmt.Errorf("its host tensor shares memory with a parameter of another size")
	}
	data, err := floats(v)
	if err != nil {
		return nil, err
	}
	buf, err := s.dev.Alloc(max(len(data), 1))
	if err != nil {
		return nil, err
	}
	if err := s.dev.upload(buf, data); err != nil {
		return nil, err
	}
	p := &param{host: v, buf: buf}
	s.params[v.Uintptr()] = p
	s.order = append(s.order, p)
	return p, nil
}

// Download copies every resident parameter into its host tensor: call it
// before checkpoints or before reading the weights on the CPU.
func (s *Session) Download() error {
	release, err := s.dev.hold()
	if err != nil {
		return err
	}
	defer release()
	for _, p := range s.order {
		if err := s.dev.downloadAsync(nn.Slice[float32](p.host), p.buf); err != nil {
			return fmt.Errorf("cuda: download parameters: %w", err)
		}
	}
	return s.dev.Sync()
}

// Upload copies every resident parameter from its host tensor to the
// device: call it after changing weights on the host (a restored
// checkpoint, a host optimiser step).
func (s *Session) Upload() error {
	release, err := s.dev.hold()
	if err != nil {
		return err
	}
	defer release()
	for _, p := range s.order {
		if err := s.dev.upload(p.buf, nn.Slice[float32](p.host)); err != nil {
			return fmt.Errorf("cuda: upload parameters: %w", err)
		}
	}
	return nil
}

// ResetOptimizer forgets the Adam moments and step counts (a new stage
// with a fresh optimiser).
func (s *Session) ResetOptimizer() error {
	var errs []error
	for _, p := range s.order {
		for _, b := range []Buffer{p.m, p.v} {
			if b.N > 0 {
				errs = append(errs, s.dev.Free(b))
			}
		}
		p.m, p.v, p.t = Buffer{}, Buffer{}, 0
	}
	return errors.Join(errs...)
}

// Close frees the parameters and closes the device. Machines of the
// session must be closed first.
func (s *Session) Close() error {
	errs := []error{s.ResetOptimizer()}
	for _, p := range s.order {
		errs = append(errs, s.dev.Free(p.buf))
	}
	s.params, s.order = map[uintptr]*param{}, nil
	if s.close != nil {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}
