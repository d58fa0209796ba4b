//go:build mpi

package dist

import (
	"fmt"
	"os"
	"testing"
)

var world Communicator

func TestMain(m *testing.M) {
	c, err := Init()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	world = c
	code := m.Run()
	if code != 0 {
		Fail(c, os.Stderr, fmt.Errorf("tests failed"), code)
	}
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// TestMPICollectives checks the MPI binding on however many ranks the job
// has: sums and maxima of rank-dependent values, a barrier, and a buffer
// longer than one chunk would be cheap to get wrong (10⁵ values).
func TestMPICollectives(t *testing.T) {
	n, r := world.Size(), world.Rank()
	if !Enabled() {
		t.Fatal("Enabled() is false in an mpi build")
	}
	buf := make([]float64, 100000)
	for i := range buf {
		buf[i] = float64(r + i)
	}
	if err := world.AllreduceSum(buf); err != nil {
		t.Fatal(err)
	}
	rankSum := float64(n * (n - 1) / 2)
	for i, v := range buf {
		if want := rankSum + float64(n*i); v != want {
			t.Fatalf("rank %d: sum[%d] = %g, want %g", r, i, v, want)
		}
	}
	mx := []float64{float64(r), -float64(r) + 0.5}
	if err := world.AllreduceMax(mx); err != nil {
		t.Fatal(err)
	}
	if mx[0] != float64(n-1) || mx[1] != 0.5 {
		t.Fatalf("rank %d: max = %v, want [%d 0.5]", r, mx, n-1)
	}
	if err := world.Barrier(); err != nil {
		t.Fatal(err)
	}
	if err := world.AllreduceSum(nil); err != nil {
		t.Fatalf("empty allreduce: %v", err)
	}
	t.Logf("rank %d of %d ok", r, n)
}
