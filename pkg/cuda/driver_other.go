//go:build !(linux && (amd64 || arm64))

package cuda

// Runtime is the loaded CUDA stack; on this platform it never loads.
type Runtime struct {
	// Paths maps each library to the path it loaded from.
	Paths map[Library]string
	// DriverVersion is cuDriverGetVersion.
	DriverVersion int
}

// Load reports that the backend needs Linux on amd64 or arm64.
func Load() (*Runtime, error) {
	return nil, &MissingError{What: "driver", Name: "the CUDA backend needs Linux on amd64 or arm64"}
}

func (r *Runtime) probe() (*ProbeResult, error) {
	return nil, &MissingError{What: "driver", Name: "unsupported platform"}
}
