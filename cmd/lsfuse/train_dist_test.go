//go:build !mpi

package main

import (
	"strings"
	"testing"
)

// TestTrainUnderMPIWithoutMPIBuild: mpirun starting a binary built without
// -tags mpi must not let every rank train alone; it exits 2 at once with
// the rebuild command.
func TestTrainUnderMPIWithoutMPIBuild(t *testing.T) {
	t.Setenv("OMPI_COMM_WORLD_SIZE", "4")
	t.Setenv("OMPI_COMM_WORLD_RANK", "0")
	var out, errb strings.Builder
	code := run([]string{"train", "--config", "does-not-matter.yaml"}, &out, &errb)
	if code != 2 {
		t.Fatalf("exit code %d, want 2 (stderr %q)", code, errb.String())
	}
	for _, want := range []string{"one of 4 processes", "built without MPI support", "go build -tags mpi ./cmd/lsfuse"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr %q lacks %q", errb.String(), want)
		}
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q, want nothing", out.String())
	}
}
