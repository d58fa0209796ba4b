//go:build mpi

package train

// Data-parallel tests across real processes. Build and run them with
// scripts/mpi-test.sh (go test -tags mpi -c, then mpirun -np 2).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/dist"
)

// world is this process's MPI communicator (MPI is initialised once per
// process, so here rather than in a test); World is the same, for the
// external test package (mpi_bench_test.go).
var world dist.Communicator

// World is world for package train_test.
func World() dist.Communicator { return world }

func TestMain(m *testing.M) {
	c, err := dist.Init()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	world, failOut = c, os.Stderr
	code := m.Run()
	if code != 0 {
		dist.Fail(c, os.Stderr, errors.New("tests failed"), code)
	}
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func needRanks(t *testing.T, n int) {
	if world.Size() != n {
		t.Skipf("needs mpirun -np %d (this job has %d processes)", n, world.Size())
	}
}

// TestMPIDataParallelMatchesSingleProcess: two MPI ranks training with a
// local batch of B/2 end with the weights of one process training with
// batch B (computed by each rank alone, in-process), within 1e-10 in
// float64. Same network as TestDataParallelMatchesSingleProcess: no batch
// norm, no dropout.
func TestMPIDataParallelMatchesSingleProcess(t *testing.T) {
	needRanks(t, 2)
	ds := newSynth(21, 5)
	cfg := baseConfig()
	cfg.Epochs = 3
	ref := fitRanks(t, []dist.Communicator{dist.Single()}, ds, cfg, "", "", nil)[0]
	if ref.err != nil {
		t.Fatal(ref.err)
	}
	got := fitRanks(t, []dist.Communicator{world}, ds, cfg, "", "", nil)[0]
	if got.err != nil {
		t.Fatal(got.err)
	}
	d, where := maxDiff(ref.w, got.w, nil)
	if d > 1e-10 {
		t.Errorf("rank %d: weights differ from the single-process run by %g (%s)", world.Rank(), d, where)
	}
	if got.res.Steps != ref.res.Steps {
		t.Errorf("rank %d: %d steps, want %d", world.Rank(), got.res.Steps, ref.res.Steps)
	}
	t.Logf("rank %d of %d: %d steps, max weight difference %.3g", world.Rank(), world.Size(), got.res.Steps, d)
}

// TestMPIRankFailure makes rank 1 fail in the middle of training, by an
// error (LSFUSE_MPI_TEST_FAIL=error) or by SIGKILL (=kill). The job must
// end with a non-zero exit and a message naming the rank, not hang:
// scripts/mpi-test.sh checks that from outside.
func TestMPIRankFailure(t *testing.T) {
	mode := os.Getenv("LSFUSE_MPI_TEST_FAIL")
	if mode == "" {
		t.Skip("set LSFUSE_MPI_TEST_FAIL=error or kill (scripts/mpi-test.sh)")
	}
	needRanks(t, 2)
	opts := Options{Comm: world}
	if world.Rank() == 1 {
		opts.Hooks = []Hook{HookFuncs{Step: func(i StepInfo) error {
			if i.Batch < 3 {
				return nil
			}
			if mode == "kill" {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
			return errors.New("injected failure at batch 3")
		}}}
	}
	tr, err := New(tinyNet(t, netOpts{}), newStore(t, tensor.Float64), newSynth(21, 5), nil, baseConfig(), opts)
	if err == nil {
		_, err = tr.Fit(context.Background())
	}
	if err != nil {
		dist.Fail(world, os.Stderr, err, 1)
	}
	t.Fatalf("rank %d: training finished although rank 1 failed", world.Rank())
}
