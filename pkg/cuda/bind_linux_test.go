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
