//go:build cudagpu && linux && (amd64 || arm64)

package cuda

import "testing"

// TestGPUConv3dColumns runs checkConv3dColumns (conv3d_test.go) on the
// GPU: lsf_im2col3d against the direct convolution and lsf_col2im3d as
// its adjoint, with a different kernel, stride, padding and dilation per
// axis.
func TestGPUConv3dColumns(t *testing.T) { checkConv3dColumns(t, gpu(t)) }
