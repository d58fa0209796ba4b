package nn

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// blasGemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices,
// op(X) = Xᵀ when the matching trans flag is set: op(A) is m×k, op(B) is
// k×n, C is m×n, with leading dimensions lda, ldb, ldc. It calls the BLAS
// implementation registered with gonum's blas64/blas32 (pure-Go gonum by
// default; blas64.Use/blas32.Use can swap in OpenBLAS). T must be exactly
// float32 or float64.
func blasGemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	tA, tB := blas.NoTrans, blas.NoTrans
	if transA {
		tA = blas.Trans
	}
	if transB {
		tB = blas.Trans
	}
	switch cc := any(c).(type) {
	case []float64:
		blas64.Implementation().Dgemm(tA, tB, m, n, k, float64(alpha), any(a).([]float64), lda,
			any(b).([]float64), ldb, float64(beta), cc, ldc)
	case []float32:
		blas32.Implementation().Sgemm(tA, tB, m, n, k, float32(alpha), any(a).([]float32), lda,
			any(b).([]float32), ldb, float32(beta), cc, ldc)
	default:
		panic("nn: blasGemm needs []float32 or []float64")
	}
}
