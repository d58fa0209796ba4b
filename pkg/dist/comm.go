package dist

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Communicator connects the ranks of a job. Collective calls (the
// Allreduce*, Barrier) must be made by every rank, in the same order, with
// buffers of the same length; they return when every rank has contributed.
// A Communicator is not safe for concurrent use by several goroutines.
type Communicator interface {
	// Rank is this process's number in [0, Size).
	Rank() int
	// Size is the number of processes in the job (≥ 1).
	Size() int
	// AllreduceSum replaces buf, element-wise, by the sum of every rank's
	// buf (MPI_Allreduce, MPI_SUM, in place). Every rank receives the same
	// values.
	AllreduceSum(buf []float64) error
	// AllreduceMax replaces buf, element-wise, by the maximum over ranks.
	AllreduceMax(buf []float64) error
	// Barrier returns once every rank has called it.
	Barrier() error
	// Abort ends every process of the job with exit code code
	// (MPI_Abort); it does not return. With one process it is os.Exit.
	Abort(code int)
	// Close ends this process's part in the job (MPI_Finalize) after a
	// successful run. Calls after Close fail.
	Close() error
}

// ErrClosed is returned by a collective called after Close.
var ErrClosed = errors.New("dist: communicator is closed")

// single is the communicator of a job of one process: every collective is
// the identity.
type single struct{ closed bool }

// Single returns the communicator of a one-process job: Rank 0, Size 1,
// collectives that leave their buffers as they are.
func Single() Communicator { return &single{} }

func (s *single) Rank() int { return 0 }
func (s *single) Size() int { return 1 }

func (s *single) AllreduceSum(buf []float64) error { return s.check() }
func (s *single) AllreduceMax(buf []float64) error { return s.check() }
func (s *single) Barrier() error                   { return s.check() }
func (s *single) Abort(code int)                   { os.Exit(code) }

func (s *single) Close() error {
	if err := s.check(); err != nil {
		return err
	}
	s.closed = true
	return nil
}

func (s *single) check() error {
	if s.closed {
		return ErrClosed
	}
	return nil
}

// launcherVars are the environment variables MPI launchers set in the
// processes they start, with the job size when the variable holds it:
// Open MPI's mpirun (OMPI_COMM_WORLD_*), MPICH/Intel MPI Hydra (PMI_*),
// MVAPICH (MV2_*), and PMIx launchers such as srun --mpi=pmix (PMIX_RANK,
// no size).
var launcherVars = []struct {
	name   string
	isSize bool
}{
	{"OMPI_COMM_WORLD_SIZE", true},
	{"PMI_SIZE", true},
	{"MV2_COMM_WORLD_SIZE", true},
	{"PMIX_RANK", false},
}

// Launched reports whether the process was started by an MPI launcher as
// part of a job of more than one process, reading getenv (os.Getenv when
// nil). size is the job size when the launcher says (0 if it does not),
// and via names the variable that gave it away. A launcher variable that
// says the job has one process does not count.
func Launched(getenv func(string) string) (size int, via string, ok bool) {
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, v := range launcherVars {
		val := getenv(v.name)
		if val == "" {
			continue
		}
		if !v.isSize {
			return 0, v.name, true
		}
		n, err := strconv.Atoi(val)
		if err == nil && n <= 1 {
			return 0, "", false
		}
		if err != nil {
			n = 0
		}
		return n, v.name, true
	}
	return 0, "", false
}

// localRankVars are the environment variables in which launchers give a
// process its rank among the job's processes on the same node: Open MPI,
// MPICH/Intel MPI Hydra, MVAPICH, Slurm's srun, and torchrun-style
// launchers.
var localRankVars = []string{"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}

// LocalRank is the process's rank among the job's processes on its node,
// read from the launcher's environment (getenv; os.Getenv when nil), and
// the variable that gave it. ok is false when no launcher variable holds a
// non-negative integer (a single process, or an unknown launcher). A
// multi-GPU node runs one rank per GPU by choosing device LocalRank mod
// the number of GPUs.
func LocalRank(getenv func(string) string) (rank int, via string, ok bool) {
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, name := range localRankVars {
		if v := getenv(name); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return n, name, true
			}
		}
	}
	return 0, "", false
}

// NotBuiltError is Init's error when an MPI launcher started a binary built
// without MPI support: every rank would otherwise train the whole model on
// its own and they would overwrite each other's checkpoints.
type NotBuiltError struct {
	// Size is the job size the launcher announced (0: unknown); Via the
	// environment variable that revealed the launcher.
	Size int
	Via  string
}

// Error says what happened and how to fix it.
func (e *NotBuiltError) Error() string {
	procs := "several processes"
	if e.Size > 0 {
		procs = fmt.Sprintf("%d processes", e.Size)
	}
	return fmt.Sprintf("started by an MPI launcher as one of %s (%s is set), but this lsfuse binary was built without MPI support: "+
		"rebuild it with `go build -tags mpi ./cmd/lsfuse` (needs libopenmpi-dev), or run it without mpirun for a single-process run", procs, e.Via)
}

// Init returns the communicator of the job this process belongs to: the
// MPI one in a `-tags mpi` build, else Single — or a *NotBuiltError when
// an MPI launcher started this untagged binary in a job of several
// processes. Call it once, before any other use of MPI, and Close (or
// Abort) the communicator at the end.
func Init() (Communicator, error) { return initComm() }

// Enabled reports whether this binary was built with MPI support.
func Enabled() bool { return mpiEnabled }
