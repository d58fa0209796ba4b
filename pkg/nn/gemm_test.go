package nn

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// testKernels returns every micro-kernel this CPU and build can run: the
// portable one always, the assembly ones the CPU supports.
func testKernels[T Float](sel func(cpuFeatures) *gemmKernel[T]) []*gemmKernel[T] {
	ks := []*gemmKernel[T]{goKernel[T]()}
	if detected.AVX2FMA {
		ks = append(ks, sel(cpuFeatures{AVX2FMA: true}))
	}
	if detected.AVX512 {
		ks = append(ks, sel(detected))
	}
	out := ks[:0]
	for _, k := range ks {
		if k != nil { // no assembly in this build (purego, other GOARCH)
			out = append(out, k)
		}
	}
	return out
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	pad            int // extra leading-dimension elements
	alpha, beta    float64
}

func (c gemmCase) String() string {
	return fmt.Sprintf("tA=%v,tB=%v,m=%d,n=%d,k=%d,pad=%d,α=%g,β=%g", c.transA, c.transB, c.m, c.n, c.k, c.pad, c.alpha, c.beta)
}

// gemmCases covers odd and aligned sizes around every kernel's tile (4, 6,
// 8 rows; 4, 8, 16, 32 columns), every transpose, padded leading
// dimensions, α/β special values, inner dimensions of several gemmKC
// blocks, and products large enough to run on several goroutines
// (m·n·k ≥ gemmParallelMACs), including a narrow one that splits rows.
func gemmCases() []gemmCase {
	var cs []gemmCase
	sizes := [][3]int{
		{1, 1, 1}, {1, 7, 3}, {3, 1, 5}, {2, 33, 9}, {5, 17, 1}, {7, 31, 8}, {8, 32, 16}, {9, 33, 17},
		{6, 16, 13}, {13, 40, 7}, {16, 64, 64}, {17, 65, 30}, {31, 15, 33}, {33, 100, 19},
		{70, 67, 65}, {300, 9, 111}, {64, 130, 40}, {130, 170, 200}, {2100, 10, 200}, {9, 40, 600}, {33, 70, 530},
	}
	ab := [][2]float64{{1, 0}, {-0.5, 1}, {1.5, 0.3}, {0, 0.5}, {1, 1}}
	i := 0
	for _, s := range sizes {
		for t := 0; t < 4; t++ {
			c := gemmCase{transA: t&1 != 0, transB: t&2 != 0, m: s[0], n: s[1], k: s[2], pad: i % 3}
			c.alpha, c.beta = ab[i%len(ab)][0], ab[i%len(ab)][1]
			cs = append(cs, c)
			i++
		}
	}
	return cs
}

// gemmOperands returns random A, B, C (C holds NaN where it is not part of
// the matrix, and everywhere when β = 0: neither may leak into the result).
func gemmOperands[T Float](c gemmCase, seed int64) (a []T, lda int, b []T, ldb int, cm []T, ldc int) {
	rng := rand.New(rand.NewSource(seed))
	rowsA, colsA := c.m, c.k
	if c.transA {
		rowsA, colsA = c.k, c.m
	}
	rowsB, colsB := c.k, c.n
	if c.transB {
		rowsB, colsB = c.n, c.k
	}
	lda, ldb, ldc = max(1, colsA)+c.pad, max(1, colsB)+c.pad, c.n+c.pad
	fill := func(rows, ld int) []T {
		x := make([]T, rows*ld)
		for i := range x {
			x[i] = T(rng.Float64()*2 - 1)
		}
		return x
	}
	a, b, cm = fill(rowsA, lda), fill(rowsB, ldb), fill(c.m, ldc)
	for i := 0; i < c.m; i++ {
		for j := c.n; j < ldc; j++ {
			cm[i*ldc+j] = T(math.NaN())
		}
		if c.beta == 0 {
			for j := 0; j < c.n; j++ {
				cm[i*ldc+j] = T(math.NaN())
			}
		}
	}
	return
}

// checkGemm compares got with gonum's result want, entry by entry, with a
// tolerance proportional to the accumulated magnitude: rounding error of a
// k-term dot product is at most ~k·ε·Σ|α·a·b| (+ |β·c|).
func checkGemm[T Float](t *testing.T, label string, c gemmCase, a []T, lda int, b []T, ldb int, c0, got, want []T, ldc int) {
	t.Helper()
	eps := 1.2e-7
	var z T
	if _, ok := any(z).(float64); ok {
		eps = 2.3e-16
	}
	bad := 0
	for i := 0; i < c.m; i++ {
		for j := 0; j < ldc; j++ {
			g, w := float64(got[i*ldc+j]), float64(want[i*ldc+j])
			if j >= c.n {
				if !math.IsNaN(g) {
					t.Errorf("%s %v: wrote C[%d,%d] outside the matrix", label, c, i, j)
					bad++
				}
				continue
			}
			var mag float64
			for p := 0; p < c.k; p++ {
				ai, bi := i*lda+p, p*ldb+j
				if c.transA {
					ai = p*lda + i
				}
				if c.transB {
					bi = j*ldb + p
				}
				mag += math.Abs(c.alpha * float64(a[ai]) * float64(b[bi]))
			}
			if c.beta != 0 {
				mag += math.Abs(c.beta * float64(c0[i*ldc+j]))
			}
			tol := 4*float64(c.k+2)*eps*mag + 1e-30
			if math.IsNaN(g) || math.Abs(g-w) > tol {
				t.Errorf("%s %v: C[%d,%d] = %g, gonum %g (tol %g)", label, c, i, j, g, w, tol)
				if bad++; bad > 5 {
					return
				}
			}
		}
	}
}

func testGemmKernels[T Float](t *testing.T, kernels []*gemmKernel[T]) {
	for ci, c := range gemmCases() {
		a, lda, b, ldb, c0, ldc := gemmOperands[T](c, int64(ci))
		want := append([]T(nil), c0...)
		gonumGemm(c.transA, c.transB, c.m, c.n, c.k, T(c.alpha), a, lda, b, ldb, T(c.beta), want, ldc)
		for _, kern := range kernels {
			got := append([]T(nil), c0...)
			// gemmRun directly: gemmChecked hands tiny products to gonum.
			gemmRun(kern, true, c.transA, c.transB, c.m, c.n, c.k, T(c.alpha), a, lda, b, ldb, T(c.beta), got, ldc)
			checkGemm(t, kern.name, c, a, lda, b, ldb, c0, got, want, ldc)
		}
	}
}

func TestGemmMatchesGonumFloat32(t *testing.T) {
	testGemmKernels(t, testKernels(selectKernel32))
}

func TestGemmMatchesGonumFloat64(t *testing.T) {
	testGemmKernels(t, testKernels(selectKernel64))
}

// TestGemmPackTransposed checks the block-transpose packers against the
// scalar one on ragged panels (k and w not multiples of the block).
func TestGemmPackTransposed(t *testing.T) {
	for _, kern := range testKernels(selectKernel32) {
		if kern.packT == nil {
			continue
		}
		for _, dims := range [][3]int{{8, 8, 40}, {17, 13, 37}, {3, 5, 9}, {64, 32, 64}} {
			k, w, lds := dims[0], dims[1], dims[2]
			src := make([]float32, w*lds)
			for i := range src {
				src[i] = float32(i)
			}
			nr := kern.nr
			if w > nr {
				w = nr
			}
			got, want := make([]float32, k*nr), make([]float32, k*nr)
			kern.packT(got, src, lds, k, w, nr)
			packTransposed(want, src, lds, k, w, nr)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s pack k=%d w=%d: dst[%d] = %g, want %g", kern.name, k, w, i, got[i], want[i])
				}
			}
		}
	}
}

func TestGemmPublicAPI(t *testing.T) {
	// Gemm, GemmSerial and the BLAS type on the selected kernel, against
	// gonum; a tiny product (handed to gonum) and a zero-size one.
	for _, c := range []gemmCase{
		{transA: false, transB: true, m: 19, n: 45, k: 23, pad: 1, alpha: 0.7, beta: 0.2},
		{transA: true, transB: false, m: 3, n: 4, k: 5, alpha: 1, beta: 0},
		{m: 0, n: 3, k: 2, alpha: 1, beta: 0},
	} {
		a, lda, b, ldb, c0, ldc := gemmOperands[float32](c, 3)
		want := append([]float32(nil), c0...)
		gonumGemm(c.transA, c.transB, c.m, c.n, c.k, float32(c.alpha), a, lda, b, ldb, float32(c.beta), want, ldc)
		for name, f := range map[string]func(c []float32){
			"Gemm": func(cm []float32) {
				Gemm(c.transA, c.transB, c.m, c.n, c.k, float32(c.alpha), a, lda, b, ldb, float32(c.beta), cm, ldc)
			},
			"GemmSerial": func(cm []float32) {
				GemmSerial(c.transA, c.transB, c.m, c.n, c.k, float32(c.alpha), a, lda, b, ldb, float32(c.beta), cm, ldc)
			},
			"BLAS.Sgemm": func(cm []float32) {
				BLAS{}.Sgemm(blasTrans(c.transA), blasTrans(c.transB), c.m, c.n, c.k, float32(c.alpha), a, lda, b, ldb, float32(c.beta), cm, ldc)
			},
		} {
			got := append([]float32(nil), c0...)
			f(got)
			checkGemm(t, name, c, a, lda, b, ldb, c0, got, want, ldc)
		}
	}

	// Invalid arguments panic with gonum's message.
	defer func() {
		if r := recover(); r == nil || fmt.Sprint(r) != "blas: bad leading dimension of A" {
			t.Errorf("bad lda: recovered %v, want gonum's bad-leading-dimension panic", r)
		}
	}()
	Gemm(false, false, 2, 2, 3, float32(1), make([]float32, 6), 2, make([]float32, 6), 2, 0, make([]float32, 4), 2)
}

// TestUseFastBLASGraphMatMul runs a Gorgonia matrix product with lsfuse's
// BLAS installed and compares it with gonum's.
func TestUseFastBLASGraphMatMul(t *testing.T) {
	run := func() []float64 {
		g := G.NewGraph()
		x := G.NewTensor(g, tensor.Float32, 2, G.WithShape(9, 37), G.WithName("x"), G.WithValue(randDense32(9, 37, 1)))
		w := G.NewTensor(g, tensor.Float32, 2, G.WithShape(41, 37), G.WithName("w"), G.WithValue(randDense32(41, 37, 2)))
		y, err := MatMulT(x, w)
		if err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g)
		defer vm.Close()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		v, err := ToFloat64(y.Value().(tensor.Tensor))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	want := run()
	UseFastBLAS()
	defer func() {
		G.Use(gonum.Implementation{})
		blas32.Use(gonum.Implementation{})
		blas64.Use(gonum.Implementation{})
	}()
	if _, ok := tensor.WhichBLAS().(BLAS); !ok {
		t.Fatalf("UseFastBLAS: Gorgonia uses %T", tensor.WhichBLAS())
	}
	got := run()
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-5*(1+math.Abs(want[i])) {
			t.Fatalf("y[%d] = %g with the fast BLAS, %g with gonum", i, got[i], want[i])
		}
	}
}

func randDense32(r, c int, seed int64) *tensor.Dense {
	rng := rand.New(rand.NewSource(seed))
	v := make([]float64, r*c)
	for i := range v {
		v[i] = rng.Float64()*2 - 1
	}
	return NewDense(tensor.Float32, []int{r, c}, v)
}
