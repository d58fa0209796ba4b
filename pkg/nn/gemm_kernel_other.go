//go:build !amd64 || purego

package nn

// Without assembly kernels Gemm calls gonum's Sgemm/Dgemm, which measured
// faster than the portable Go micro-kernel (gemmTileGo, kept for testing
// the driver).

func selectKernel32(cpuFeatures) *gemmKernel[float32] { return nil }

func selectKernel64(cpuFeatures) *gemmKernel[float64] { return nil }
