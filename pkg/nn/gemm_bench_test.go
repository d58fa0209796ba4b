package nn

import (
	"fmt"
	"testing"
)

// BenchmarkSgemm compares lsfuse's GEMM (per micro-kernel, and single
// goroutine) with gonum's pure-Go Sgemm on the shapes that dominate
// bench-small (batch 32 through Linear 128→128, the CfC and conv shapes)
// and on 512³. Run side by side:
//
//	go test ./pkg/nn -run '^$' -bench 'gemm' -count 5
func BenchmarkSgemm(b *testing.B) {
	benchGemm[float32](b, testKernels(selectKernel32))
}

// BenchmarkDgemm is BenchmarkSgemm in float64.
func BenchmarkDgemm(b *testing.B) {
	benchGemm[float64](b, testKernels(selectKernel64))
}

func benchGemm[T Float](b *testing.B, kernels []*gemmKernel[T]) {
	shapes := []struct {
		name           string
		m, n, k        int
		transA, transB bool
	}{
		{"32x128x128/NT", 32, 128, 128, false, true},
		{"32x128x128/NN", 32, 128, 128, false, false},
		{"128x128x32/TN", 128, 128, 32, true, false},
		{"256x64x128/NN", 256, 64, 128, false, false},
		{"32x64x128/NT", 32, 64, 128, false, true},
		{"512x512x512/NN", 512, 512, 512, false, false},
	}
	for _, s := range shapes {
		c := gemmCase{transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: 1, beta: 0}
		a, lda, bm, ldb, cm, ldc := gemmOperands[T](c, 1)
		flops := 2 * float64(s.m*s.n*s.k)
		run := func(name string, f func()) {
			b.Run(fmt.Sprintf("%s/%s", s.name, name), func(b *testing.B) {
				f()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					f()
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		run("gonum", func() { gonumGemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, cm, ldc) })
		for _, kern := range kernels {
			run(kern.name, func() { gemmRun(kern, true, s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, cm, ldc) })
		}
	}
}
