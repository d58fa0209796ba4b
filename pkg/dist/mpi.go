//go:build mpi

package dist

/*
#cgo pkg-config: ompi-c
#include <mpi.h>
#include <stdlib.h>

// Open MPI's MPI_COMM_WORLD, MPI_DOUBLE, MPI_SUM and MPI_MAX are macros
// over global structs, which cgo cannot name: wrap every call.
static int lsf_init(int *provided) {
	int argc = 0;
	char **argv = NULL;
	int rc = MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, provided);
	if (rc == MPI_SUCCESS) {
		MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	}
	return rc;
}
static int lsf_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int lsf_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int lsf_allreduce(double *buf, int n, int max) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, max ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD);
}
static int lsf_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static int lsf_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }
static int lsf_finalize(void) { return MPI_Finalize(); }
static void lsf_error_string(int code, char *out, int *len) { MPI_Error_string(code, out, len); }
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"unsafe"
)

const mpiEnabled = true

// mpiComm is MPI_COMM_WORLD. MPI is initialised with
// MPI_THREAD_SERIALIZED (goroutines migrate between OS threads) and a
// mutex serialises the calls.
type mpiComm struct {
	mu         sync.Mutex
	rank, size int
	closed     bool
}

var initOnce struct {
	sync.Mutex
	done bool
}

func mpiError(call string, rc C.int) error {
	buf := make([]byte, C.MPI_MAX_ERROR_STRING)
	var n C.int
	C.lsf_error_string(rc, (*C.char)(unsafe.Pointer(&buf[0])), &n)
	return fmt.Errorf("dist: %s failed: %s (MPI error %d)", call, string(buf[:n]), int(rc))
}

func initComm() (Communicator, error) {
	initOnce.Lock()
	defer initOnce.Unlock()
	if initOnce.done {
		return nil, fmt.Errorf("dist: Init called twice (MPI can be initialised once per process)")
	}
	var provided C.int
	if rc := C.lsf_init(&provided); rc != C.MPI_SUCCESS {
		return nil, mpiError("MPI_Init_thread", rc)
	}
	initOnce.done = true
	if provided < C.MPI_THREAD_SERIALIZED {
		C.lsf_finalize()
		return nil, fmt.Errorf("dist: the MPI library provides thread level %d, lsfuse needs MPI_THREAD_SERIALIZED", int(provided))
	}
	c := &mpiComm{}
	var r, s C.int
	if rc := C.lsf_rank(&r); rc != C.MPI_SUCCESS {
		return nil, mpiError("MPI_Comm_rank", rc)
	}
	if rc := C.lsf_size(&s); rc != C.MPI_SUCCESS {
		return nil, mpiError("MPI_Comm_size", rc)
	}
	c.rank, c.size = int(r), int(s)
	return c, nil
}

func (c *mpiComm) Rank() int { return c.rank }
func (c *mpiComm) Size() int { return c.size }

// maxChunk keeps each MPI call's count within a C int.
const maxChunk = 1 << 30

func (c *mpiComm) allreduce(buf []float64, max int, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	for len(buf) > 0 {
		n := min(len(buf), maxChunk)
		if rc := C.lsf_allreduce((*C.double)(unsafe.Pointer(&buf[0])), C.int(n), C.int(max)); rc != C.MPI_SUCCESS {
			return mpiError(name, rc)
		}
		buf = buf[n:]
	}
	return nil
}

func (c *mpiComm) AllreduceSum(buf []float64) error { return c.allreduce(buf, 0, "MPI_Allreduce(SUM)") }
func (c *mpiComm) AllreduceMax(buf []float64) error { return c.allreduce(buf, 1, "MPI_Allreduce(MAX)") }

func (c *mpiComm) Barrier() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if rc := C.lsf_barrier(); rc != C.MPI_SUCCESS {
		return mpiError("MPI_Barrier", rc)
	}
	return nil
}

// Abort does not take the mutex: it must work while another goroutine is
// blocked in a collective.
func (c *mpiComm) Abort(code int) {
	C.lsf_abort(C.int(code))
	os.Exit(code) // MPI_Abort returned: make sure this process ends anyway
}

func (c *mpiComm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.closed = true
	if rc := C.lsf_finalize(); rc != C.MPI_SUCCESS {
		return mpiError("MPI_Finalize", rc)
	}
	return nil
}
