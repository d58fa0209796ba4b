package nn

// blasGemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices,
// op(X) = Xᵀ when the matching trans flag is set: op(A) is m×k, op(B) is
// k×n, C is m×n, with leading dimensions lda, ldb, ldc. It is Gemm: the
// fast pure-Go GEMM (assembly micro-kernels chosen at run time), or the
// BLAS registered with gonum's blas32.Use/blas64.Use when one (e.g.
// OpenBLAS) has been installed. T must be exactly float32 or float64.
func blasGemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
