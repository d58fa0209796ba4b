//go:build linux && (amd64 || arm64)

package cuda

import (
	"unsafe"

	"github.com/ebitengine/purego"
)

// Calls on the hot path. purego.RegisterFunc converts every call's
// arguments by reflection: about 0.8 µs and 11 allocations per call of
// cuLaunchKernel, against about 0.1 µs and one allocation for
// purego.SyscallN with the arguments already as machine words (measured
// with libcuda's cuLaunchKernel on a machine without a GPU, which returns
// at once). A bench-small training step makes about 800 kernel launches
// and cuBLAS calls, so bindDirect replaces those functions' bound fields
// by SyscallN closures. Every argument is an integer or a pointer (C int,
// unsigned, pointers; float scalars go by pointer), so each becomes one
// machine word; int32 values are sign-extended, and the callee reads the
// low 32 bits. The pointers they carry are device addresses or pinned
// host memory (the launch parameter block).

// bindDirect rebinds lib's hot functions in api (the *driverAPI or
// *blasAPI bindLibrary bound from handle h).
func bindDirect(lib Library, api any, h uintptr) error {
	sym := func(name string) (uintptr, error) {
		if s, ok := map[Library]map[string]string{Driver: driverSymbols, CuBLAS: blasSymbols}[lib][name]; ok {
			name = s
		}
		return purego.Dlsym(h, name)
	}
	switch api := api.(type) {
	case *driverAPI:
		p, err := sym("cuLaunchKernel")
		if err != nil {
			return err
		}
		api.cuLaunchKernel = func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params, extra unsafe.Pointer) int32 {
			return call(p, f, uarg(gx), uarg(gy), uarg(gz), uarg(bx), uarg(by), uarg(bz), uarg(shared), stream, uintptr(params), uintptr(extra))
		}
	case *blasAPI:
		ps := map[string]uintptr{}
		for _, n := range []string{"cublasSgemm", "cublasSgemmBatched", "cublasGemmEx", "cublasGemmBatchedEx"} {
			p, err := sym(n)
			if err != nil {
				return err
			}
			ps[n] = p
		}
		api.cublasSgemm = func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uintptr, lda int32, b uintptr, ldb int32, beta *float32, c uintptr, ldc int32) int32 {
			return call(ps["cublasSgemm"], h, iarg(ta), iarg(tb), iarg(m), iarg(n), iarg(k), parg(alpha), a, iarg(lda), b, iarg(ldb), parg(beta), c, iarg(ldc))
		}
		api.cublasSgemmBatched = func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uintptr, lda int32, b uintptr, ldb int32, beta *float32, c uintptr, ldc, count int32) int32 {
			return call(ps["cublasSgemmBatched"], h, iarg(ta), iarg(tb), iarg(m), iarg(n), iarg(k), parg(alpha), a, iarg(lda), b, iarg(ldb), parg(beta), c, iarg(ldc), iarg(count))
		}
		api.cublasGemmEx = func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uintptr, atype, lda int32, b uintptr, btype, ldb int32, beta *float32, c uintptr, ctype, ldc, compute, algo int32) int32 {
			return call(ps["cublasGemmEx"], h, iarg(ta), iarg(tb), iarg(m), iarg(n), iarg(k), parg(alpha), a, iarg(atype), iarg(lda), b, iarg(btype), iarg(ldb), parg(beta), c, iarg(ctype), iarg(ldc), iarg(compute), iarg(algo))
		}
		api.cublasGemmBatchedEx = func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uintptr, atype, lda int32, b uintptr, btype, ldb int32, beta *float32, c uintptr, ctype, ldc, count, compute, algo int32) int32 {
			return call(ps["cublasGemmBatchedEx"], h, iarg(ta), iarg(tb), iarg(m), iarg(n), iarg(k), parg(alpha), a, iarg(atype), iarg(lda), b, iarg(btype), iarg(ldb), parg(beta), c, iarg(ctype), iarg(ldc), iarg(count), iarg(compute), iarg(algo))
		}
	}
	return nil
}

// call calls the C function at p and returns its int result (CUresult,
// cublasStatus_t).
func call(p uintptr, args ...uintptr) int32 {
	r, _, _ := purego.SyscallN(p, args...)
	return int32(r)
}

// uarg, iarg and parg turn arguments into machine words: an unsigned
// int, a sign-extended int, a pointer to a float.
func uarg(v uint32) uintptr   { return uintptr(v) }
func iarg(v int32) uintptr    { return uintptr(int64(v)) }
func parg(v *float32) uintptr { return uintptr(unsafe.Pointer(v)) }
