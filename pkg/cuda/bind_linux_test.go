//go:build linux && (amd64 || arm64)

package cuda

import (
	"strings"
	"testing"

	"github.com/ebitengine/purego"
)

// TestBindLibc exercises the purego loading path without a GPU: it binds
// libc functions into a struct the way driverAPI is bound (by field name
// and through the rename map) and calls them; then a missing symbol must
// name itself.
func TestBindLibc(t *testing.T) {
	h, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		t.Skipf("no libc.so.6: %v", err)
	}
	var api struct {
		strlen func(s string) uint64
		abs    func(v int32) int32
		note   string // not a func: skipped
	}
	if err := bind(&api, h, map[string]string{"abs": "abs"}); err != nil {
		t.Fatal(err)
	}
	if got := api.strlen("lsfuse"); got != 6 {
		t.Errorf("strlen = %d, want 6", got)
	}
	if got := api.abs(-7); got != 7 {
		t.Errorf("abs(-7) = %d", got)
	}
	var bad struct{ cuNoSuchFunction func() int32 }
	err = bind(&bad, h, nil)
	if err == nil || !strings.Contains(err.Error(), "symbol cuNoSuchFunction") {
		t.Errorf("bind of a missing symbol: %v", err)
	}
	var renamed struct{ cuMemAlloc func() int32 }
	err = bind(&renamed, h, map[string]string{"cuMemAlloc": "cuMemAlloc_v2"})
	if err == nil || !strings.Contains(err.Error(), "symbol cuMemAlloc_v2") {
		t.Errorf("bind reports %v, want the renamed symbol", err)
	}
}

// TestBindBLASSignatures registers every blasAPI function with purego,
// which refuses (panics on) a signature it cannot call: cublasGemmEx
// takes 19 arguments and cublasGemmBatchedEx 20, past purego's limit
// before v0.11 (15). Each is bound to libc's abs, which reads only its
// first argument, so calling the widest one exercises the call path with
// 14 arguments on the stack and returns |handle|.
func TestBindBLASSignatures(t *testing.T) {
	h, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		t.Skipf("no libc.so.6: %v", err)
	}
	abs, err := purego.Dlsym(h, "abs")
	if err != nil {
		t.Fatal(err)
	}
	var api blasAPI
	err = bindFields(&api, func(string) (uintptr, string, error) { return abs, "abs", nil }, purego.RegisterFunc)
	if err != nil {
		t.Fatal(err)
	}
	alpha, beta := float32(1), float32(0)
	got := api.cublasGemmBatchedEx(uintptr(uint32(0xfffffff9)), 0, 1, 2, 3, 4, &alpha, 5, cudaR16F, 6, 7, cudaR16F, 8,
		&beta, 9, cudaR32F, 10, 11, cublasCompute32F, cublasGemmDefault)
	if got != 7 {
		t.Errorf("cublasGemmBatchedEx bound to abs(-7) returned %d", got)
	}
}
