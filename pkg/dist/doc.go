// Package dist is lsfuse's link to the processes of a data-parallel job.
//
// A job is Size processes ("ranks", numbered 0..Size-1) started by an MPI
// launcher (`mpirun -np 4 lsfuse train ...`). Each rank trains on its own
// shard of every global batch; the trainer averages their gradients with one
// AllreduceSum of a flattened buffer per optimiser step and lets rank 0 alone
// write files. The Communicator interface is all the trainer sees.
//
// Builds. The default build (CGO_ENABLED=0) has only the single-process
// communicator: Init returns it, unless the process was started by an MPI
// launcher with more than one rank, in which case Init fails with a
// *NotBuiltError (the command line exits with code 2) instead of letting
// every rank train the whole model alone. Building with `-tags mpi` (cgo,
// pkg-config ompi-c: Debian libopenmpi-dev) links the system MPI; Init then
// calls MPI_Init_thread and returns a communicator over MPI_COMM_WORLD.
package dist
