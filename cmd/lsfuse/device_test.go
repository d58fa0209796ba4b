package main

import (
	"strings"
	"testing"
)

// TestGPUOrdinal: a plain process opens GPU 0; the ranks a launcher starts
// on one node spread over its GPUs by their node-local rank.
func TestGPUOrdinal(t *testing.T) {
	for _, tc := range []struct {
		env   map[string]string
		count int
		want  int
		why   string
	}{
		{nil, 8, 0, ""},
		{map[string]string{"OMPI_COMM_WORLD_LOCAL_RANK": "3"}, 8, 3, "node-local rank 3 (OMPI_COMM_WORLD_LOCAL_RANK) of a job, 8 GPU(s) visible"},
		{map[string]string{"OMPI_COMM_WORLD_LOCAL_RANK": "5"}, 4, 1, "rank 5"},
		{map[string]string{"SLURM_LOCALID": "2"}, 1, 0, "1 GPU(s) visible"},
		{map[string]string{"MPI_LOCALRANKID": "1"}, 0, 0, ""},
	} {
		got, why := gpuOrdinal(func(k string) string { return tc.env[k] }, tc.count)
		if got != tc.want || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("env %v, %d GPUs: GPU %d (%q), want %d (%q)", tc.env, tc.count, got, why, tc.want, tc.why)
		}
	}
}
