package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
)

func TestEarlyStopUpdate(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name     string
		mode     string
		patience int
		delta    float64
		values   []float64
		improved string // one letter per value: y improved, n not
		stopAt   int    // 1-based epoch of the stop, 0 none
	}{
		{"min", "min", 2, 0, []float64{1, 0.9, 0.95, 0.91, 0.8}, "yynny", 4},
		{"max", "max", 1, 0, []float64{0.5, 0.6, 0.6}, "yyn", 3},
		{"min delta", "min", 0, 0.1, []float64{1, 0.95, 0.85}, "yny", 0},
		{"nan never improves", "min", 0, 0, []float64{nan, 1, nan}, "nyn", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &earlyStop{Monitor: MonitorValLoss, Mode: c.mode, Patience: c.patience, MinDelta: c.delta}
			var got []byte
			stop := 0
			for i, v := range c.values {
				imp, st := s.update(v, i+1)
				got = append(got, map[bool]byte{true: 'y', false: 'n'}[imp])
				if st && stop == 0 {
					stop = i + 1
				}
			}
			if string(got) != c.improved || stop != c.stopAt {
				t.Errorf("improved %s stop %d, want %s stop %d", got, stop, c.improved, c.stopAt)
			}
		})
	}
}

func TestEarlyStopMonitorResolution(t *testing.T) {
	s, err := newEarlyStop(EarlyStopConfig{}, true)
	if err != nil || s.Monitor != MonitorValLoss || s.Mode != "min" {
		t.Errorf("default with validation: %+v %v", s, err)
	}
	s, err = newEarlyStop(EarlyStopConfig{Monitor: MonitorValMacroF1}, true)
	if err != nil || s.Mode != "max" {
		t.Errorf("macro F1 mode: %+v %v", s, err)
	}
	if s, _ := newEarlyStop(EarlyStopConfig{}, false); s.Monitor != MonitorTrainLoss {
		t.Errorf("default without validation: %s", s.Monitor)
	}
	if _, err := newEarlyStop(EarlyStopConfig{Monitor: MonitorValAccuracy}, false); err == nil || !strings.Contains(err.Error(), "needs a validation set") {
		t.Errorf("val monitor without validation: %v", err)
	}
}

// TestEarlyStoppingEndsRun: with a learning rate too small to change any
// prediction, validation accuracy cannot improve after epoch 1, so
// patience 2 ends a 10-epoch run after epoch 3.
func TestEarlyStoppingEndsRun(t *testing.T) {
	cfg := sgdConfig(4, 1)
	cfg.Epochs = 10
	cfg.LR = 1e-12
	cfg.EarlyStop = EarlyStopConfig{Monitor: MonitorValAccuracy, Patience: 2, StopOnNonFinite: true}
	res := fit(t, tinyNet(t, netOpts{}), newStore(t, tensor.Float32), newSynth(8, 4), newSynth(6, 5), cfg, Options{})
	if !res.EarlyStopped || res.Epochs != 3 || res.BestEpoch != 1 || !res.History[2].Stop || res.History[1].Stop {
		t.Errorf("early stop: stopped %v after %d epochs, best epoch %d; want true, 3, 1", res.EarlyStopped, res.Epochs, res.BestEpoch)
	}
}

// TestNonFiniteLoss: a NaN regression target makes a batch's loss NaN. By
// default the run stops with an error saying what to do; with
// stop_on_non_finite off the step is skipped and training carries on with
// finite weights.
func TestNonFiniteLoss(t *testing.T) {
	tr := newSynth(12, 4)
	tr.regress, tr.nanAt = true, 5
	net := tinyNet(t, netOpts{regression: true})
	cfg := sgdConfig(4, 1)
	tt, err := New(net, newStore(t, tensor.Float32), tr, nil, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tt.Fit(context.Background())
	if err == nil || !strings.Contains(err.Error(), "training loss is NaN") || !strings.Contains(err.Error(), "lower train.lr") {
		t.Fatalf("NaN loss: %v", err)
	}
	cfg.EarlyStop.StopOnNonFinite = false
	checkSkipsOne(t, net, tr, cfg)
}

// TestNonFiniteGradients: a NaN input stops at the spikes (the loss stays
// finite) but its gradients are NaN. Without loss scaling that is an error
// by default, and a skipped step with stop_on_non_finite off.
func TestNonFiniteGradients(t *testing.T) {
	tr := newSynth(12, 4)
	tr.nanAt = 5
	net := tinyNet(t, netOpts{})
	cfg := sgdConfig(4, 1)
	tt, err := New(net, newStore(t, tensor.Float32), tr, nil, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tt.Fit(context.Background())
	if err == nil || !strings.Contains(err.Error(), "gradients are not finite") {
		t.Fatalf("NaN gradients: %v", err)
	}
	cfg.EarlyStop.StopOnNonFinite = false
	checkSkipsOne(t, net, tr, cfg)
}

// checkSkipsOne trains one epoch and checks that exactly one step was
// skipped and every weight is finite.
func checkSkipsOne(t *testing.T, net *model.Network, tr *synth, cfg Config) {
	t.Helper()
	store := newStore(t, tensor.Float32)
	res := fit(t, net, store, tr, nil, cfg, Options{})
	if res.Last.SkippedSteps != 1 {
		t.Errorf("%d skipped steps, want 1", res.Last.SkippedSteps)
	}
	for name, v := range weights(t, store) {
		for _, x := range v {
			if !finite(x) {
				t.Fatalf("%s is not finite", name)
			}
		}
	}
}

// TestCheckpointFiles: epoch-N.ckpt every 2 epochs with the last 2 kept,
// best.ckpt following the monitor.
func TestCheckpointFiles(t *testing.T) {
	cfg := sgdConfig(4, 1)
	cfg.Epochs = 8
	cfg.CheckpointEvery = 2
	cfg.KeepLast = 2
	dir := t.TempDir()
	res := fit(t, tinyNet(t, netOpts{}), newStore(t, tensor.Float32), newSynth(8, 4), newSynth(6, 5), cfg, Options{RunDir: dir})
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ckpts []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".ckpt") {
			ckpts = append(ckpts, e.Name())
		}
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	sort.Strings(ckpts)
	if got := strings.Join(ckpts, " "); got != "best.ckpt epoch-6.ckpt epoch-8.ckpt last.ckpt" {
		t.Errorf("checkpoints %s", got)
	}
	if res.BestCheckpoint != filepath.Join(dir, BestCheckpoint) || res.LastCheckpoint != filepath.Join(dir, LastCheckpoint) {
		t.Errorf("result paths %q %q", res.BestCheckpoint, res.LastCheckpoint)
	}
	// best.ckpt resumes after the best epoch.
	tt, err := New(tinyNet(t, netOpts{}), newStore(t, tensor.Float32), newSynth(8, 4), newSynth(6, 5), cfg, Options{RunDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := tt.Resume("best"); err != nil {
		t.Fatal(err)
	}
	if tt.st.Epoch != res.BestEpoch || len(tt.history) != res.BestEpoch {
		t.Errorf("best.ckpt resumes at epoch %d with %d epochs of history, want %d", tt.st.Epoch, len(tt.history), res.BestEpoch)
	}
}
