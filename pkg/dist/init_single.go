//go:build !mpi

package dist

const mpiEnabled = false

func initComm() (Communicator, error) {
	if size, via, ok := Launched(nil); ok {
		return nil, &NotBuiltError{Size: size, Via: via}
	}
	return Single(), nil
}
