// Package csrc holds small helpers for reading C source text (the CUDA
// kernels of pkg/cuda).
package csrc

import "strings"

// StripComments removes // and /* */ comments.
func StripComments(src string) string {
	var b strings.Builder
	for i := 0; i < len(src); i++ {
		switch {
		case strings.HasPrefix(src[i:], "//"):
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				return b.String()
			}
			i += j - 1
		case strings.HasPrefix(src[i:], "/*"):
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return b.String()
			}
			i += j + 3
		default:
			b.WriteByte(src[i])
		}
	}
	return b.String()
}
