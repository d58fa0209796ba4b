//go:build linux && (amd64 || arm64)

package cuda

// OpenSession loads the CUDA stack (Load), opens GPU ordinal and returns
// a session on it. The error is a *MissingError when the driver, a
// library or the device is missing.
func OpenSession(ordinal int) (*Session, error) {
	rt, err := Load()
	if err != nil {
		return nil, err
	}
	d, err := rt.Open(ordinal)
	if err != nil {
		return nil, err
	}
	s := newSession(d, d.Close)
	s.Info = d.Info
	return s, nil
}
