package export

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/safetensors"
)

// weightsStore returns a float64 store holding a Linear layer "lin"
// (trainable weight and bias) and a batch norm "bn" (parameters and
// running-statistics buffers), perturbed away from their initial values.
func weightsStore(t *testing.T) *nn.Store {
	t.Helper()
	store, err := nn.NewStore(tensor.Float64, 4)
	if err != nil {
		t.Fatal(err)
	}
	c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{})
	x := c.Input("x", 2, 3)
	if _, err := (nn.Linear{In: 3, Out: 2}).Forward(c.Sub("lin"), x); err != nil {
		t.Fatal(err)
	}
	if _, err := (nn.BatchNorm{Features: 3}).Forward(c.Sub("bn"), x); err != nil {
		t.Fatal(err)
	}
	perturb(t, store, 9)
	return store
}

// TestSafetensorsWeights checks the file against the store: every
// parameter and buffer under its store name and shape, float32 values,
// the metadata with the format key.
func TestSafetensorsWeights(t *testing.T) {
	store := weightsStore(t)
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := Safetensors(store, path, map[string]string{"config": "a: 1", "format": "overridden"}); err != nil {
		t.Fatal(err)
	}
	ts, meta, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta["format"] != WeightsFormat || meta["config"] != "a: 1" {
		t.Errorf("metadata %v, want format %q and the given config", meta, WeightsFormat)
	}
	want := []string{"bn.bias", "bn.running_mean", "bn.running_var", "bn.weight", "lin.bias", "lin.weight"}
	if len(ts) != len(want) {
		t.Errorf("file holds %d tensors, want %d (%v)", len(ts), len(want), want)
	}
	for _, name := range want {
		p := store.Lookup(name)
		got, ok := ts[name]
		if !ok || p == nil {
			t.Errorf("tensor %q missing (file %v, store %v)", name, ok, p != nil)
			continue
		}
		if got.F32 == nil || !equalInts(got.Shape, p.Value.Shape()) {
			t.Errorf("%s: dtype F32 %v shape %v, want float32 %v", name, got.F32 != nil, got.Shape, p.Value.Shape())
			continue
		}
		vals, _ := nn.ToFloat64(p.Value)
		for i, v := range vals {
			if got.F32[i] != float32(v) {
				t.Errorf("%s[%d] = %v, want %v", name, i, got.F32[i], float32(v))
				break
			}
		}
	}
	if err := Safetensors(nil, path, nil); err == nil {
		t.Error("nil store: no error")
	}
	empty, _ := nn.NewStore(tensor.Float32, 1)
	if err := Safetensors(empty, path, nil); err == nil || !strings.Contains(err.Error(), "no parameters") {
		t.Errorf("empty store: error %v, want one saying it holds no parameters", err)
	}
}

// TestSafetensorsLoadsInTorch reads the file with Debian's python3-torch
// through scripts/read_safetensors.py (a hand-written parser using
// torch.frombuffer) and compares tensors, names, dtypes and shapes.
func TestSafetensorsLoadsInTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP PyTorch check in -short mode (importing torch takes seconds)")
	}
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		t.Skipf("SKIP PyTorch check: %s cannot import torch (install Debian's python3-torch: apt-get install -y python3-torch)", python)
	}
	store := weightsStore(t)
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := Safetensors(store, path, map[string]string{"run": "test"}); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "read_safetensors.py"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"lin.weight", "bn.running_var"}
	cmd := exec.Command(python, append([]string{script, path}, names...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read_safetensors.py: %v", err)
	}
	var got struct {
		Metadata map[string]string `json:"metadata"`
		Tensors  map[string]struct {
			Dtype string `json:"dtype"`
			Shape []int  `json:"shape"`
		} `json:"tensors"`
		Values map[string][]float64 `json:"values"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("bad JSON from read_safetensors.py: %v\n%s", err, out)
	}
	if got.Metadata["format"] != WeightsFormat || got.Metadata["run"] != "test" {
		t.Errorf("metadata seen by torch: %v", got.Metadata)
	}
	params := store.Params()
	if len(got.Tensors) != len(params) {
		t.Errorf("torch sees %d tensors, the store has %d", len(got.Tensors), len(params))
	}
	for _, p := range params {
		tt, ok := got.Tensors[p.Name]
		if !ok || tt.Dtype != "float32" || !equalInts(tt.Shape, p.Value.Shape()) {
			t.Errorf("%s: torch sees %+v (present %v), want float32 %v", p.Name, tt, ok, p.Value.Shape())
		}
	}
	for _, name := range names {
		want, _ := nn.ToFloat64(store.Lookup(name).Value)
		vals := got.Values[name]
		if len(vals) != len(want) {
			t.Fatalf("%s: torch read %d values, want %d", name, len(vals), len(want))
		}
		for i := range want {
			if float32(vals[i]) != float32(want[i]) {
				t.Errorf("%s[%d]: torch read %v, want %v", name, i, vals[i], float32(want[i]))
			}
		}
	}
}
