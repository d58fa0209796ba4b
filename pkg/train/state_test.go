package train

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/safetensors"
)

// TestOptimizerStateRoundTrip: four steps of one optimiser equal two steps,
// State, LoadState into a new optimiser, and two more steps — bit for bit,
// for Adam (moments and per-parameter step counts) and SGD with Nesterov
// momentum (buffers).
func TestOptimizerStateRoundTrip(t *testing.T) {
	makers := map[string]func() (optimizer, error){
		"adam": func() (optimizer, error) { return NewAdam(AdamConfig{LR: 0.1, WeightDecay: 0.01}) },
		"sgd":  func() (optimizer, error) { return NewSGD(SGDConfig{LR: 0.05, Momentum: 0.9, Nesterov: true}) },
	}
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			target := []float64{3, -2, 1}
			steps := func(store *nn.Store, opt optimizer, n int) {
				g, params, _ := quadGraph(t, store, target)
				vm := G.NewTapeMachine(g, G.BindDualValues(params...))
				defer vm.Close()
				for range n {
					if err := vm.RunAll(); err != nil {
						t.Fatal(err)
					}
					if err := opt.Step(params); err != nil {
						t.Fatal(err)
					}
					vm.Reset()
				}
			}
			ref, _ := nn.NewStore(tensor.Float32, 1)
			a, _ := mk()
			steps(ref, a, 4)

			store, _ := nn.NewStore(tensor.Float32, 1)
			b, _ := mk()
			steps(store, b, 2)
			c, _ := mk()
			if err := c.LoadState(b.State()); err != nil {
				t.Fatal(err)
			}
			steps(store, c, 2)
			if d, where := maxDiff(weights(t, ref), weights(t, store), nil); d != 0 {
				t.Errorf("resumed optimiser differs by %g (%s)", d, where)
			}
		})
	}
	a, _ := NewAdam(AdamConfig{})
	bad := map[string]safetensors.Tensor{"adam/m/w": {Shape: []int{1}, F64: []float64{1}}}
	if err := a.LoadState(bad); err == nil || !strings.Contains(err.Error(), "adam state of w") {
		t.Errorf("incomplete state: %v", err)
	}
}

func TestJFloatRoundTrip(t *testing.T) {
	for _, v := range []float64{0, -1.5, 1e-300, math.Pi, math.NaN(), math.Inf(1), math.Inf(-1)} {
		b, err := json.Marshal(jfloat(v))
		if err != nil {
			t.Fatal(err)
		}
		var back jfloat
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if got := float64(back); got != v && !(math.IsNaN(v) && math.IsNaN(got)) {
			t.Errorf("%v → %s → %v", v, b, got)
		}
	}
}

// TestMetricsLogTruncatesOnOpen: lines past the recorded offset (written
// after the checkpoint) are dropped; step lines follow every.
func TestMetricsLogTruncatesOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), MetricsFile)
	l, err := openMetricsLog(path, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	for b := 1; b <= 4; b++ {
		if err := l.step(StepInfo{Epoch: 1, Batch: b, Loss: math.NaN()}); err != nil {
			t.Fatal(err)
		}
	}
	off, _ := l.size()
	if err := l.epoch(EpochInfo{Epoch: 1, Train: Metrics{Loss: 1}}); err != nil {
		t.Fatal(err)
	}
	l.close()
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), "\n"); n != 3 || !strings.Contains(string(b), `"loss":"NaN"`) {
		t.Fatalf("log %q: want 2 step lines (batches 2, 4) with NaN as a string, and an epoch line", b)
	}
	l, err = openMetricsLog(path, 2, off)
	if err != nil {
		t.Fatal(err)
	}
	l.close()
	b, _ = os.ReadFile(path)
	if strings.Count(string(b), "\n") != 2 || strings.Contains(string(b), `"type":"epoch"`) {
		t.Errorf("after truncation: %q", b)
	}
}
