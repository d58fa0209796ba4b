package model

import (
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/safetensors"
)

func storeWith(t *testing.T, seed int64, shapes map[string][]int) *nn.Store {
	t.Helper()
	s, err := nn.NewStore(tensor.Float32, seed)
	if err != nil {
		t.Fatal(err)
	}
	for name, shape := range shapes {
		if _, err := s.Get(name, shape, nn.Normal(0, 1), name != "bn.running_mean"); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestCheckpointRoundTrip(t *testing.T) {
	shapes := map[string][]int{"a.weight": {3, 2}, "a.bias": {3}, "bn.running_mean": {3}}
	src := storeWith(t, 1, shapes)
	dst := storeWith(t, 2, shapes)
	path := filepath.Join(t.TempDir(), "last.ckpt")
	state := map[string]safetensors.Tensor{"adam.step": {Shape: []int{1}, I64: []int64{42}}}
	if err := SaveCheckpoint(path, src, state, map[string]string{"epoch": "3"}); err != nil {
		t.Fatal(err)
	}
	gotState, meta, err := LoadCheckpoint(path, dst)
	if err != nil {
		t.Fatal(err)
	}
	if meta["epoch"] != "3" || gotState["adam.step"].I64[0] != 42 {
		t.Fatalf("meta %v state %v", meta, gotState)
	}
	for _, p := range src.Params() {
		a, _ := nn.ToFloat64(p.Value)
		b, _ := nn.ToFloat64(dst.Lookup(p.Name).Value)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s[%d]: %g != %g after load", p.Name, i, b[i], a[i])
			}
		}
	}
}

func TestCheckpointRejectsOtherModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.ckpt")
	if err := SaveCheckpoint(path, storeWith(t, 1, map[string][]int{"a.weight": {3, 2}, "old": {1}}), nil, nil); err != nil {
		t.Fatal(err)
	}
	dst := storeWith(t, 1, map[string][]int{"a.weight": {4, 2}, "new": {1}})
	before, _ := nn.ToFloat64(dst.Lookup("a.weight").Value)
	_, _, err := LoadCheckpoint(path, dst)
	if err == nil {
		t.Fatal("incompatible checkpoint loaded")
	}
	for _, want := range []string{"missing new", "a.weight (model (4, 2), checkpoint [3 2])", "unexpected old"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	after, _ := nn.ToFloat64(dst.Lookup("a.weight").Value)
	if before[0] != after[0] {
		t.Error("a failed load modified the store")
	}
}
