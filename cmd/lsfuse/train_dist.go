package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/lsfuse/lsfuse/pkg/dist"
)

// initRanks joins the data-parallel job this process was launched in
// (mpirun with a `-tags mpi` build), or returns the single-process
// communicator. A binary without MPI support started by mpirun is a usage
// error (exit 2) with the rebuild command.
func initRanks() (dist.Communicator, error) {
	comm, err := dist.Init()
	var nb *dist.NotBuiltError
	if errors.As(err, &nb) {
		return nil, usageError{err}
	}
	return comm, err
}

// finishRanks ends this process's part in the job: MPI_Finalize after a
// successful run; after a failure (or a panic) with several ranks, the
// error naming this rank on w and MPI_Abort of the whole job (exit code 2
// for a usage error, else 1), so that no rank waits forever for this one.
// With one process it returns err unchanged.
func finishRanks(comm dist.Communicator, w io.Writer, err error, panicked any) error {
	if panicked != nil {
		if comm.Size() == 1 {
			panic(panicked)
		}
		err = fmt.Errorf("internal error: %v (please report this)", panicked)
	}
	if err != nil {
		code := 1
		var ue usageError
		if errors.As(err, &ue) {
			code = 2
		}
		dist.Fail(comm, w, err, code) // returns only with one process
		return err
	}
	return comm.Close()
}
