package nn

import (
	"math/bits"
	"sync"
)

// This file is lsfuse's pure-Go GEMM driver (no cgo): C = α·op(A)·op(B) + β·C
// for row-major matrices, split into register tiles computed by a
// micro-kernel (assembly where the CPU allows, gemm_kernel_amd64.s; the
// portable Go kernel gemmTileGo exercises the same driver in tests). The
// design follows the GotoBLAS/BLIS structure reduced to what lsfuse's small
// shapes need:
//
//   - A is never packed: the kernel reads element (r, p) of an mr-row block
//     at a[r·sai + p·sak], which covers both A and Aᵀ without copying; only
//     a last block of fewer than mr rows is copied, zero-padded.
//   - op(B) is read in column panels of nr columns. A panel of an
//     untransposed B is read in place (row stride ldb); a transposed B and
//     the last, narrower panel are packed into a contiguous k×nr panel
//     (transposed by an 8×8 AVX block transpose when available).
//   - The inner dimension goes in blocks of gemmKC, so a packed panel stays
//     in the L1 cache (measured: NT 256×256×4096 at 172 GFLOP/s blocked,
//     75 unblocked).
//   - Tiles that lie inside C are written in place with α and β; edge tiles
//     go through a small scratch tile.
//   - Large products split their column panels (or row blocks) over the
//     cores; small ones run on the calling goroutine.

// gemmTileFunc computes one mr×nr tile:
//
//	C[r, j] = α·Σ_{p<k} a[r·sai + p·sak]·b[p·sbk + j] + β·C[r, j]   (r < mr, j < nr)
//
// with C[r, j] at c[r·ldc + j]. C is not read when useBeta is false (so
// NaNs in it do not propagate, as BLAS requires for β = 0). k ≥ 1 and the
// slices hold every element addressed.
type gemmTileFunc[T Float] func(k int, a []T, sai, sak int, b []T, sbk int, c []T, ldc int, alpha, beta T, useBeta bool)

// gemmKernel is a micro-kernel with its tile size.
type gemmKernel[T Float] struct {
	name   string
	mr, nr int
	tile   gemmTileFunc[T]
	// packT packs rows [0, w) of a row-major matrix src (row stride lds, a
	// transposed op(B)) into dst[p·nr + j] = src[j·lds + p] for p < k;
	// nil uses the scalar packer.
	packT func(dst, src []T, lds, k, w, nr int)
}

// gemmParallelMACs is the product size m·n·k from which a GEMM is split
// over several goroutines (below it, the hand-off costs more than it
// saves).
const gemmParallelMACs = 1 << 22

// gemmKC is the block of the inner dimension k computed per pass (a
// 256×32 float32 panel of B is 32 KiB: it stays in the L1 cache).
const gemmKC = 256

// gemmRowBlockBytes bounds the rows of A a worker sweeps per column panel, so
// that the block of A stays in the L2 cache while the panels stream by.
const gemmRowBlockBytes = 128 << 10

// gemmRun computes C = α·op(A)·op(B) + β·C with the given kernel, on
// several goroutines when parallel is set and the product is large. The
// arguments must already be valid (see gemmValid); m, n > 0.
func gemmRun[T Float](kern *gemmKernel[T], parallel, transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if alpha == 0 || k == 0 {
		scaleRows(m, n, beta, c, ldc)
		return
	}
	mr, nr := kern.mr, kern.nr
	sai, sak := lda, 1
	if transA {
		sai, sak = 1, lda
	}
	mFull := m - m%mr
	panels := (n + nr - 1) / nr
	blocks := mFull / mr

	// The last partial row block, copied and zero-padded to mr rows (row
	// stride k), shared read-only by the workers.
	var edge *[]T
	if mFull < m {
		edge = getScratch[T](mr * k)
		ae := (*edge)[:mr*k]
		clear(ae)
		for r := mFull; r < m; r++ {
			row := ae[(r-mFull)*k : (r-mFull+1)*k]
			for p := range row {
				row[p] = a[r*sai+p*sak]
			}
		}
		defer putScratch(edge)
	}

	job := gemmJob[T]{kern: kern, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: a, sai: sai, sak: sak, b: b, ldb: ldb, c: c, ldc: ldc, mFull: mFull}
	if edge != nil {
		job.edge = (*edge)[:mr*k]
	}
	workers := 1
	if parallel && m*n*k >= gemmParallelMACs {
		workers = workersFor(max(panels, blocks+1))
	}
	if workers == 1 {
		job.run(0, panels, 0, blocks, true)
		return
	}
	job.runParallel(workers, panels, blocks)
}

// runParallel splits the job over workers goroutines: by column panels
// (each worker packs only its own), or by row blocks when C has fewer
// panels than workers (the last worker also takes the partial block).
func (j gemmJob[T]) runParallel(workers, panels, blocks int) {
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer wg.Done()
			if panels >= workers {
				j.run(w*panels/workers, (w+1)*panels/workers, 0, blocks, true)
			} else {
				j.run(0, panels, w*blocks/workers, (w+1)*blocks/workers, w == workers-1)
			}
		}()
	}
	wg.Wait()
}

// gemmJob is one GEMM's arguments, shared by its workers.
type gemmJob[T Float] struct {
	kern        *gemmKernel[T]
	transB      bool
	m, n, k     int
	alpha, beta T
	a           []T
	sai, sak    int
	b           []T
	ldb         int
	c           []T
	ldc         int
	mFull       int
	edge        []T // partial row block, mr×k, or nil
}

// run computes column panels [p0, p1) for row blocks [i0, i1) (in units of
// mr rows) and, with doEdge, for the partial row block.
func (j *gemmJob[T]) run(p0, p1, i0, i1 int, doEdge bool) {
	withEdge := doEdge && j.edge != nil
	if i0 >= i1 && !withEdge {
		return
	}
	kern := j.kern
	mr, nr := kern.mr, kern.nr
	kc := min(j.k, gemmKC)
	buf := getScratch[T](kc*nr + mr*nr)
	defer putScratch(buf)
	panel, tmp := (*buf)[:kc*nr], (*buf)[kc*nr:kc*nr+mr*nr]
	// Blocks of kc steps of the inner dimension, so that a k×nr panel of B
	// stays in the L1 cache while the row blocks stream by; the first block
	// applies β, the later ones accumulate.
	for kb := 0; kb < j.k; kb += kc {
		kk := min(kc, j.k-kb)
		beta := j.beta
		if kb > 0 {
			beta = 1
		}
		useBeta := beta != 0
		sweep := max(1, gemmRowBlockBytes/(mr*kk*sizeOf[T]()))
		for ib := i0; ; ib += sweep {
			ie := min(i1, ib+sweep)
			last := ie >= i1
			for p := p0; p < p1; p++ {
				j0 := p * nr
				w := min(nr, j.n-j0)
				bp, sbk := j.panel(panel, kb, kk, j0, w)
				for i := ib; i < ie; i++ {
					r0 := i * mr
					ct := j.c[r0*j.ldc+j0:]
					at := j.a[r0*j.sai+kb*j.sak:]
					if w == nr {
						kern.tile(kk, at, j.sai, j.sak, bp, sbk, ct, j.ldc, j.alpha, beta, useBeta)
						continue
					}
					kern.tile(kk, at, j.sai, j.sak, bp, sbk, tmp, nr, 1, 0, false)
					addTile(ct, j.ldc, tmp, nr, mr, w, j.alpha, beta)
				}
				if last && withEdge {
					kern.tile(kk, j.edge[kb:], j.k, 1, bp, sbk, tmp, nr, 1, 0, false)
					addTile(j.c[j.mFull*j.ldc+j0:], j.ldc, tmp, nr, j.m-j.mFull, w, j.alpha, beta)
				}
			}
			if last {
				break
			}
		}
	}
}

// panel returns rows [kb, kb+kk) of op(B)'s columns [j0, j0+w) as a kk×nr
// panel with its row stride: in place for an untransposed B and a full
// panel, else packed into buf (zero-padded to nr columns).
func (j *gemmJob[T]) panel(buf []T, kb, kk, j0, w int) ([]T, int) {
	nr := j.kern.nr
	if !j.transB {
		if w == nr {
			return j.b[kb*j.ldb+j0:], j.ldb
		}
		for p := 0; p < kk; p++ {
			row := buf[p*nr : (p+1)*nr]
			src := j.b[(kb+p)*j.ldb+j0:]
			copy(row, src[:w])
			clear(row[w:])
		}
		return buf, nr
	}
	if w < nr {
		clear(buf[:kk*nr])
	}
	src := j.b[j0*j.ldb+kb:]
	if j.kern.packT != nil {
		j.kern.packT(buf, src, j.ldb, kk, w, nr)
	} else {
		packTransposed(buf, src, j.ldb, kk, w, nr)
	}
	return buf, nr
}

// packTransposed is the scalar packer: dst[p·nr + r] = src[r·lds + p] for
// r < w, p < k.
func packTransposed[T Float](dst, src []T, lds, k, w, nr int) {
	for r := 0; r < w; r++ {
		s := src[r*lds : r*lds+k]
		d := dst[r:]
		for p, v := range s {
			d[p*nr] = v
		}
	}
}

// addTile writes C[r, j] = α·t[r·ldt + j] + β·C[r, j] for r < rows, j < w
// (C not read when β = 0).
func addTile[T Float](c []T, ldc int, t []T, ldt, rows, w int, alpha, beta T) {
	for r := 0; r < rows; r++ {
		cr := c[r*ldc : r*ldc+w]
		tr := t[r*ldt : r*ldt+w]
		if beta == 0 {
			for j, v := range tr {
				cr[j] = alpha * v
			}
			continue
		}
		for j, v := range tr {
			cr[j] = alpha*v + beta*cr[j]
		}
	}
}

// scaleRows sets C = β·C for an m×n C (zeros when β = 0, without reading C).
func scaleRows[T Float](m, n int, beta T, c []T, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// gemmTileGo is the portable micro-kernel: 4×4 tiles in scalar Go.
func gemmTileGo[T Float](k int, a []T, sai, sak int, b []T, sbk int, c []T, ldc int, alpha, beta T, useBeta bool) {
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 T
	a0, a1, a2, a3 := 0, sai, 2*sai, 3*sai
	_ = a[a3+(k-1)*sak]
	_ = b[(k-1)*sbk+3]
	for p, bo := 0, 0; p < k; p, bo = p+1, bo+sbk {
		bb := b[bo : bo+4 : bo+4]
		b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
		x := a[a0]
		c00 += x * b0
		c01 += x * b1
		c02 += x * b2
		c03 += x * b3
		x = a[a1]
		c10 += x * b0
		c11 += x * b1
		c12 += x * b2
		c13 += x * b3
		x = a[a2]
		c20 += x * b0
		c21 += x * b1
		c22 += x * b2
		c23 += x * b3
		x = a[a3]
		c30 += x * b0
		c31 += x * b1
		c32 += x * b2
		c33 += x * b3
		a0, a1, a2, a3 = a0+sak, a1+sak, a2+sak, a3+sak
	}
	rows := [4][4]T{{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23}, {c30, c31, c32, c33}}
	for r := range rows {
		cr := c[r*ldc : r*ldc+4]
		for j, v := range rows[r] {
			if useBeta {
				cr[j] = alpha*v + beta*cr[j]
			} else {
				cr[j] = alpha * v
			}
		}
	}
}

// sizeOf is the size in bytes of T (4 or 8).
func sizeOf[T Float]() int {
	var z T
	if _, ok := any(z).(float32); ok {
		return 4
	}
	return 8
}

// Scratch buffers come from per-dtype pools, one per power-of-two size
// class, so that a training step's kernels allocate nothing in steady
// state: a request is served by a buffer of its own class, never by a
// smaller one that would have to be replaced (with one mixed pool, the
// CfC backward's megabyte buffers kept meeting small GEMM packs and
// reallocating, ~3 MB of garbage per bench-small step at B=128, T=32).
var (
	scratch32 [scratchClasses]sync.Pool
	scratch64 [scratchClasses]sync.Pool
)

const scratchClasses = 48

// scratchClass returns the size class of n elements: the smallest c with
// 2^c ≥ n.
func scratchClass(n int) int { return bits.Len(uint(max(n, 1) - 1)) }

// scratchPool returns the pool of T buffers of class c.
func scratchPool[T Float](c int) *sync.Pool {
	var z T
	if _, ok := any(z).(float32); ok {
		return &scratch32[c]
	}
	return &scratch64[c]
}

// getScratch returns a pooled slice of n elements (contents undefined);
// give it back with putScratch.
func getScratch[T Float](n int) *[]T {
	c := scratchClass(n)
	p, _ := scratchPool[T](c).Get().(*[]T)
	if p == nil {
		b := make([]T, 1<<c)
		p = &b
	}
	*p = (*p)[:n]
	return p
}

func putScratch[T Float](p *[]T) {
	c := scratchClass(cap(*p))
	if cap(*p) != 1<<c {
		return // not one of ours: let it go
	}
	scratchPool[T](c).Put(p)
}

// goKernel returns the portable micro-kernel.
func goKernel[T Float]() *gemmKernel[T] {
	return &gemmKernel[T]{name: "go", mr: 4, nr: 4, tile: gemmTileGo[T]}
}
