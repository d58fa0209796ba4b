package dist

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSingleCommunicator(t *testing.T) {
	c := Single()
	if c.Rank() != 0 || c.Size() != 1 {
		t.Fatalf("rank %d size %d, want 0 and 1", c.Rank(), c.Size())
	}
	buf := []float64{1.5, -2, 3}
	if err := c.AllreduceSum(buf); err != nil {
		t.Fatal(err)
	}
	if err := c.AllreduceMax(buf); err != nil {
		t.Fatal(err)
	}
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
	if buf[0] != 1.5 || buf[1] != -2 || buf[2] != 3 {
		t.Fatalf("one-process allreduce changed the buffer: %v", buf)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.AllreduceSum(buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("allreduce after Close: %v, want ErrClosed", err)
	}
}

func TestLaunched(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		size int
		via  string
		ok   bool
	}{
		{"plain", nil, 0, "", false},
		{"openmpi", map[string]string{"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "1"}, 4, "OMPI_COMM_WORLD_SIZE", true},
		{"openmpi one process", map[string]string{"OMPI_COMM_WORLD_SIZE": "1"}, 0, "", false},
		{"hydra", map[string]string{"PMI_SIZE": "2"}, 2, "PMI_SIZE", true},
		{"mvapich", map[string]string{"MV2_COMM_WORLD_SIZE": "8"}, 8, "MV2_COMM_WORLD_SIZE", true},
		{"pmix without size", map[string]string{"PMIX_RANK": "0"}, 0, "PMIX_RANK", true},
		{"garbage size", map[string]string{"PMI_SIZE": "many"}, 0, "PMI_SIZE", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size, via, ok := Launched(func(k string) string { return tc.env[k] })
			if size != tc.size || via != tc.via || ok != tc.ok {
				t.Fatalf("Launched = (%d, %q, %v), want (%d, %q, %v)", size, via, ok, tc.size, tc.via, tc.ok)
			}
		})
	}
}

func TestLocalRank(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		rank int
		via  string
		ok   bool
	}{
		{"plain", nil, 0, "", false},
		{"openmpi", map[string]string{"OMPI_COMM_WORLD_LOCAL_RANK": "3", "OMPI_COMM_WORLD_RANK": "7"}, 3, "OMPI_COMM_WORLD_LOCAL_RANK", true},
		{"hydra", map[string]string{"MPI_LOCALRANKID": "1"}, 1, "MPI_LOCALRANKID", true},
		{"slurm", map[string]string{"SLURM_LOCALID": "2"}, 2, "SLURM_LOCALID", true},
		{"garbage then torchrun", map[string]string{"MPI_LOCALRANKID": "x", "LOCAL_RANK": "5"}, 5, "LOCAL_RANK", true},
		{"negative", map[string]string{"SLURM_LOCALID": "-1"}, 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rank, via, ok := LocalRank(func(k string) string { return tc.env[k] })
			if rank != tc.rank || via != tc.via || ok != tc.ok {
				t.Fatalf("LocalRank = (%d, %q, %v), want (%d, %q, %v)", rank, via, ok, tc.rank, tc.via, tc.ok)
			}
		})
	}
}

func TestInitUnderLauncherWithoutMPI(t *testing.T) {
	if Enabled() {
		t.Skip("MPI build: Init would initialise MPI")
	}
	for _, k := range []string{"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_RANK"} {
		t.Setenv(k, "")
	}
	c, err := Init()
	if err != nil || c.Size() != 1 {
		t.Fatalf("Init outside a launcher: %v, %v", c, err)
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "2")
	_, err = Init()
	var nb *NotBuiltError
	if !errors.As(err, &nb) || nb.Size != 2 || nb.Via != "OMPI_COMM_WORLD_SIZE" {
		t.Fatalf("Init under mpirun -np 2 without the mpi tag: %v, want a *NotBuiltError for 2 processes", err)
	}
	for _, want := range []string{"2 processes", "OMPI_COMM_WORLD_SIZE", "built without MPI support", "go build -tags mpi ./cmd/lsfuse"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

func TestLocalCollectives(t *testing.T) {
	const n = 3
	comms := Local(n)
	got := make([][]float64, n)
	errs := make([]error, n)
	done := make(chan int)
	for r, c := range comms {
		go func() {
			defer func() { done <- r }()
			if c.Rank() != r || c.Size() != n {
				errs[r] = fmt.Errorf("rank %d size %d", c.Rank(), c.Size())
				return
			}
			sum := []float64{float64(r), 1, float64(r * r)}
			if errs[r] = c.AllreduceSum(sum); errs[r] != nil {
				return
			}
			mx := []float64{float64(r), 5 - float64(r)}
			if errs[r] = c.AllreduceMax(mx); errs[r] != nil {
				return
			}
			if errs[r] = c.Barrier(); errs[r] != nil {
				return
			}
			got[r] = append(sum, mx...)
		}()
	}
	for range n {
		<-done
	}
	want := []float64{0 + 1 + 2, 3, 0 + 1 + 4, 2, 5}
	for r := range n {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		if fmt.Sprint(got[r]) != fmt.Sprint(want) {
			t.Errorf("rank %d got %v, want %v", r, got[r], want)
		}
	}
}

func TestLocalAbortAndMismatch(t *testing.T) {
	comms := Local(2)
	errc := make(chan error, 1)
	go func() { errc <- comms[0].AllreduceSum([]float64{1}) }()
	go func() { comms[1].Abort(3) }()
	err := <-errc
	if err == nil || !strings.Contains(err.Error(), "aborted by rank 1 with code 3") {
		t.Fatalf("a rank waiting in a collective when another aborts: %v", err)
	}

	comms = Local(2)
	errs := make(chan error, 2)
	go func() { errs <- comms[0].AllreduceSum([]float64{1, 2}) }()
	go func() { errs <- comms[1].AllreduceSum([]float64{1}) }()
	for range 2 {
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "collectives must match") {
			t.Fatalf("mismatched buffer lengths: %v", err)
		}
	}
}

func TestFailSingleProcessDoesNothing(t *testing.T) {
	var sb strings.Builder
	Fail(Single(), &sb, errors.New("boom"), 1)
	Fail(nil, &sb, errors.New("boom"), 1)
	if sb.Len() != 0 {
		t.Fatalf("Fail wrote %q for a one-process job", sb.String())
	}
}
