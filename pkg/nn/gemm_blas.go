package nn

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
)

// The micro-kernels chosen for this CPU, fixed at start-up.
var (
	gemmKernel32 = selectKernel32(detected)
	gemmKernel64 = selectKernel64(detected)
)

// Gemm computes C = α·op(A)·op(B) + β·C for row-major matrices, with
// op(X) = Xᵀ when the matching trans flag is set: op(A) is m×k, op(B) is
// k×n and C is m×n, with leading (row) dimensions lda, ldb, ldc. T must be
// exactly float32 or float64.
//
// It runs lsfuse's pure-Go GEMM (assembly micro-kernels for AVX-512 or
// AVX2+FMA, chosen at run time; gonum's GEMM on other CPUs), splitting
// large products over the cores. When another BLAS has been installed with
// gonum's blas32.Use / blas64.Use (e.g. OpenBLAS through cgo) that one is
// called instead. Invalid arguments panic with gonum's messages, as any
// BLAS does.
func Gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	gemmDispatch(true, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GemmSerial is Gemm on the calling goroutine only, for kernels that
// already split their work over the cores (ParallelFor).
func GemmSerial[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	gemmDispatch(false, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmDispatch is Gemm; parallel allows splitting a large product over
// the cores.
func gemmDispatch[T Float](parallel, transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch cc := any(c).(type) {
	case []float32:
		aa, bb := any(a).([]float32), any(b).([]float32)
		if impl := blas32.Implementation(); !isOwnBLAS(impl) {
			impl.Sgemm(blasTrans(transA), blasTrans(transB), m, n, k, float32(alpha), aa, lda, bb, ldb, float32(beta), cc, ldc)
			return
		}
		gemmChecked(gemmKernel32, parallel, transA, transB, m, n, k, float32(alpha), aa, lda, bb, ldb, float32(beta), cc, ldc)
	case []float64:
		aa, bb := any(a).([]float64), any(b).([]float64)
		if impl := blas64.Implementation(); !isOwnBLAS(impl) {
			impl.Dgemm(blasTrans(transA), blasTrans(transB), m, n, k, float64(alpha), aa, lda, bb, ldb, float64(beta), cc, ldc)
			return
		}
		gemmChecked(gemmKernel64, parallel, transA, transB, m, n, k, float64(alpha), aa, lda, bb, ldb, float64(beta), cc, ldc)
	default:
		panic("nn: Gemm needs []float32 or []float64")
	}
}

// isOwnBLAS reports whether impl is gonum's default or lsfuse's BLAS, both
// of which Gemm replaces by the fast kernels.
func isOwnBLAS(impl any) bool {
	switch impl.(type) {
	case gonum.Implementation, BLAS, *BLAS:
		return true
	}
	return false
}

func blasTrans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// gemmTinyMACs is the product size m·n·k up to which gonum's GEMM is
// faster than the blocked one (measured: 2×2×32 takes 66 ns in gonum, 310
// ns blocked; 8×8×8 takes 315 ns in gonum, 160 ns blocked).
const gemmTinyMACs = 256

// gemmChecked validates the arguments (invalid ones are handed to gonum,
// which panics with the standard message) and runs the kernel; a nil
// kernel (no assembly for this CPU) means gonum's GEMM.
func gemmChecked[T Float](kern *gemmKernel[T], parallel, transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if kern == nil || !gemmValid(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc) {
		gonumGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if m == 0 || n == 0 {
		return
	}
	if m*n*k <= gemmTinyMACs {
		// Tiny products (attention heads of a few tokens): packing and edge
		// tiles cost more than gonum's plain loops.
		gonumGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemmRun(kern, parallel, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gonumGemm calls gonum's pure-Go GEMM (the reference in tests).
func gonumGemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	tA, tB := blasTrans(transA), blasTrans(transB)
	switch cc := any(c).(type) {
	case []float32:
		gonum.Implementation{}.Sgemm(tA, tB, m, n, k, float32(alpha), any(a).([]float32), lda, any(b).([]float32), ldb, float32(beta), cc, ldc)
	case []float64:
		gonum.Implementation{}.Dgemm(tA, tB, m, n, k, float64(alpha), any(a).([]float64), lda, any(b).([]float64), ldb, float64(beta), cc, ldc)
	}
}

// gemmValid reports whether GEMM arguments satisfy the BLAS rules (the
// same checks, in the same order of severity, as gonum).
func gemmValid(transA, transB bool, m, n, k, lenA, lda, lenB, ldb, lenC, ldc int) bool {
	if m < 0 || n < 0 || k < 0 {
		return false
	}
	rowsA, colsA := m, k
	if transA {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if transB {
		rowsB, colsB = n, k
	}
	if lda < max(1, colsA) || ldb < max(1, colsB) || ldc < max(1, n) {
		return false
	}
	if m == 0 || n == 0 {
		return true
	}
	need := func(rows, cols, ld int) int {
		if rows == 0 || cols == 0 {
			return 0
		}
		return (rows-1)*ld + cols
	}
	return lenA >= need(rowsA, colsA, lda) && lenB >= need(rowsB, colsB, ldb) && lenC >= need(m, n, ldc)
}

// BLAS is gonum's pure-Go BLAS with lsfuse's faster Sgemm and Dgemm (see
// Gemm). It satisfies Gorgonia's and gonum's BLAS interfaces; UseFastBLAS
// installs it.
type BLAS struct{ gonum.Implementation }

// Sgemm computes C = α·op(A)·op(B) + β·C in float32 (BLAS semantics,
// row-major; see Gemm).
func (BLAS) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	transA, okA := fromBlasTrans(tA)
	transB, okB := fromBlasTrans(tB)
	if !okA || !okB {
		gonum.Implementation{}.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemmChecked(gemmKernel32, true, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dgemm computes C = α·op(A)·op(B) + β·C in float64 (BLAS semantics,
// row-major; see Gemm).
func (BLAS) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	transA, okA := fromBlasTrans(tA)
	transB, okB := fromBlasTrans(tB)
	if !okA || !okB {
		gonum.Implementation{}.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemmChecked(gemmKernel64, true, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func fromBlasTrans(t blas.Transpose) (trans, ok bool) {
	switch t {
	case blas.NoTrans:
		return false, true
	case blas.Trans, blas.ConjTrans:
		return true, true
	}
	return false, false
}

// UseFastBLAS makes Gorgonia's own matrix products (Mul of matrices, hence
// Linear and MatMulT) and gonum's blas32/blas64 use BLAS, lsfuse's fast
// pure-Go GEMM. It changes process-wide settings of those libraries: call it
// once at start-up (the trainer and the bench command do), not from library
// code. lsfuse's own kernels (Gemm: convolution, attention, fused cells)
// use the fast GEMM whether or not it is called.
func UseFastBLAS() {
	G.Use(BLAS{})
	blas32.Use(BLAS{})
	blas64.Use(BLAS{})
}
