//go:build linux && (amd64 || arm64)

package cuda

// probe lists the devices of a loaded runtime.
func (r *Runtime) probe() (*ProbeResult, error) {
	n, err := r.DeviceCount()
	if err != nil {
		return nil, &MissingError{What: "device", Name: "cuDeviceGetCount failed", Err: err}
	}
	if n == 0 {
		return nil, &MissingError{What: "device", Name: "the driver sees no GPU"}
	}
	p := &ProbeResult{Paths: r.Paths, DriverVersion: r.DriverVersion}
	for i := 0; i < n; i++ {
		info, err := r.Info(i)
		if err != nil {
			return nil, &MissingError{What: "device", Name: "cuDeviceGet failed", Err: err}
		}
		p.Devices = append(p.Devices, info)
	}
	return p, nil
}
