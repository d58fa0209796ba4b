//go:build linux && (amd64 || arm64)

package cuda

import (
	"math"
	"testing"
	"unsafe"
)

// TestLaunchParameterBlock drives Device.Launch with a stand-in for
// cuLaunchKernel that reads the parameters the way the driver does
// (through the pointer array, 4 bytes for an int or a float, 8 for a
// pointer): every argument arrives, a second launch reuses the pinned
// block, and a launch allocates nothing on the Go heap.
func TestLaunchParameterBlock(t *testing.T) {
	type call struct {
		f            uintptr
		grid, block  [3]uint32
		ptr          uintptr
		n            int32
		scale        float32
		stream       uintptr
		paramsAtCall unsafe.Pointer
	}
	var got call
	d := &Device{rt: &Runtime{}, funcs: map[string]uintptr{"lsf_scale": 0xf00d}, held: 1, stream: 0x5eed}
	d.rt.drv.cuLaunchKernel = func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params, extra unsafe.Pointer) int32 {
		p := unsafe.Slice((*unsafe.Pointer)(params), 4)
		got = call{f: f, grid: [3]uint32{gx, gy, gz}, block: [3]uint32{bx, by, bz}, stream: stream, paramsAtCall: params,
			ptr: *(*uintptr)(p[0]), scale: *(*float32)(p[1]), n: *(*int32)(p[3])}
		if *(*uintptr)(p[2]) != 0xbeef00 || shared != 0 || extra != nil {
			return 1
		}
		return 0
	}
	x, y := Buffer{Ptr: 0xabc000, N: 10}, Buffer{Ptr: 0xbeef00, N: 10}
	if err := d.Launch1D("lsf_scale", 300, x, float32(0.5), y, 300); err != nil {
		t.Fatal(err)
	}
	want := call{f: 0xf00d, grid: [3]uint32{2, 1, 1}, block: block256, ptr: 0xabc000, n: 300, scale: 0.5, stream: 0x5eed, paramsAtCall: got.paramsAtCall}
	if got != want {
		t.Fatalf("launch got %+v, want %+v", got, want)
	}
	first := got.paramsAtCall
	if err := d.Launch1D("lsf_scale", 1, x, -2.0, y, -7); err != nil {
		t.Fatal(err)
	}
	if got.paramsAtCall != first || got.scale != -2 || got.n != -7 || got.grid[0] != 1 {
		t.Errorf("second launch %+v: want the same block with the new values", got)
	}
	args := []any{x, float32(math.Pi), y, 1000} // boxed once, as the executor's plan does
	if a := testing.AllocsPerRun(100, func() {
		if err := d.Launch1D("lsf_scale", 1000, args...); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per launch, want 0", a)
	}
	if err := d.Launch1D("lsf_scale", 1, x, y, y, 1); err == nil {
		t.Error("a Buffer where a float is due was accepted")
	}
	d.launchPin.Unpin()
}

// TestKernelParamsFitTheLauncher: no kernel has more parameters than the
// launch parameter block holds.
func TestKernelParamsFitTheLauncher(t *testing.T) {
	for name, kinds := range KernelParams {
		if len(kinds) > maxKernelArgs {
			t.Errorf("%s has %d parameters, the launcher %d", name, len(kinds), maxKernelArgs)
		}
	}
}

// TestGemmScalars drives Device.Gemm with a stand-in for cublasSgemm: the
// row-major call arrives as cuBLAS's column-major one (operands swapped),
// alpha and beta are read through their pointers during the call, and a
// call allocates nothing.
func TestGemmScalars(t *testing.T) {
	d := &Device{rt: &Runtime{}, held: 1, blas: 0xb1a5}
	var got [2]float32
	var dims [3]int32
	var first uintptr
	d.rt.blas.cublasSgemm = func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uintptr, lda int32, b uintptr, ldb int32, beta *float32, c uintptr, ldc int32) int32 {
		got, dims = [2]float32{*alpha, *beta}, [3]int32{m, n, k}
		if first == 0 {
			first = uintptr(unsafe.Pointer(alpha))
		}
		if h != 0xb1a5 || a != 0xb00 || b != 0xa00 || ta != 1 || tb != 0 || lda != 5 || ldb != 5 || ldc != 7 {
			return 7
		}
		return 0
	}
	a, b, c := Buffer{Ptr: 0xa00}, Buffer{Ptr: 0xb00}, Buffer{Ptr: 0xc00}
	// C[3,7] = 2·A[3,5]·Bᵀ with B stored [7,5] (transB): cuBLAS computes Cᵀ = B·Aᵀ, column-major.
	if err := d.Gemm(false, true, 3, 7, 5, 2, a, 5, b, 5, 0.5, c, 7); err != nil {
		t.Fatal(err)
	}
	if got != [2]float32{2, 0.5} || dims != [3]int32{7, 3, 5} {
		t.Fatalf("alpha, beta %v, m n k %v", got, dims)
	}
	if a := testing.AllocsPerRun(100, func() {
		if err := d.Gemm(false, true, 3, 7, 5, 1, a, 5, b, 5, 0, c, 7); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per GEMM, want 0", a)
	}
	if got != [2]float32{1, 0} {
		t.Errorf("alpha, beta %v after the reuse", got)
	}
	d.launchPin.Unpin()
}
