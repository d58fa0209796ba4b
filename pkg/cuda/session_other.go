//go:build !(linux && (amd64 || arm64))

package cuda

// OpenSession reports that the backend needs Linux on amd64 or arm64.
func OpenSession(ordinal int) (*Session, error) {
	_, err := Load()
	return nil, err
}
