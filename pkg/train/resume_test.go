package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// resumeConfig is a run that exercises every piece of state a resume must
// restore: Adam moments, an accumulation window of 2 over 22 samples in
// batches of 4 (a short last batch of 2 and a final window of one batch),
// dynamic loss scaling with growth every 3 steps, and a network with
// dropout and modality dropout (random ops).
func resumeConfig() Config {
	cfg := baseConfig()
	cfg.Epochs = 3
	cfg.AccumSteps = 2
	cfg.LossScale = LossScaleConfig{Enabled: true, Init: 256, GrowthInterval: 3}
	cfg.ClipNorm = 5
	return cfg
}

// TestResumeIsBitIdentical: a run interrupted after k micro-batches
// (the context cancelled from a hook) and resumed from last.ckpt by a new
// trainer on a fresh store ends with exactly the weights, history and
// loss scale of an uninterrupted run with the same seed — mid-window,
// at a window boundary, and at the end of an epoch.
func TestResumeIsBitIdentical(t *testing.T) {
	tr, val := newSynth(22, 5), newSynth(9, 6)
	cfg := resumeConfig()
	const perEpoch = 6 // batches of 4,4,4,4,4,2

	ref := newStore(t, tensor.Float32)
	refRes := fit(t, tinyNet(t, netOpts{noisy: true}), ref, tr, val, cfg, Options{RunDir: t.TempDir()})
	want := weights(t, ref)

	for _, k := range []int{3, perEpoch + 2, perEpoch} {
		dir := t.TempDir()
		// Interrupted run.
		net := tinyNet(t, netOpts{noisy: true})
		ctx, cancel := context.WithCancel(context.Background())
		seen := 0
		stopper := HookFuncs{Step: func(StepInfo) error {
			if seen++; seen == k {
				cancel()
			}
			return nil
		}}
		tt, err := New(net, newStore(t, tensor.Float32), tr, val, cfg, Options{RunDir: dir, Hooks: []Hook{stopper}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tt.Fit(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("k=%d: interrupted Fit returned %v, want context.Canceled", k, err)
		}
		cancel()
		if !tt.noisy {
			t.Fatal("the test network has no random ops: the noise replay is not exercised")
		}

		// Resumed run: new network value, new store, new trainer.
		store := newStore(t, tensor.Float32)
		rec := newRecorder()
		tr2, err := New(tinyNet(t, netOpts{noisy: true}), store, tr, val, cfg, Options{RunDir: dir, Hooks: []Hook{rec}})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr2.Resume("last"); err != nil {
			t.Fatal(err)
		}
		res, err := tr2.Fit(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s := rec.starts[0]; !s.Resumed || s.StartEpoch != (k-1)/perEpoch+1 || s.StartBatch != (k-1)%perEpoch+1 {
			t.Errorf("k=%d: start info %+v", k, s)
		}
		if len(rec.steps) != 3*perEpoch-k {
			t.Errorf("k=%d: resumed run trained %d batches, want %d", k, len(rec.steps), 3*perEpoch-k)
		}
		if d, where := maxDiff(want, weights(t, store), nil); d != 0 {
			t.Errorf("k=%d: resumed weights differ from the uninterrupted run's by %g (%s)", k, d, where)
		}
		if len(res.History) != 3 {
			t.Fatalf("k=%d: history of %d epochs", k, len(res.History))
		}
		for i, e := range res.History {
			r := refRes.History[i]
			if e.Train.Loss != r.Train.Loss || e.Train.Accuracy != r.Train.Accuracy || e.Val.Loss != r.Val.Loss || e.LossScale != r.LossScale || e.Step != r.Step {
				t.Errorf("k=%d epoch %d: train loss %v acc %v val %v scale %v step %d, uninterrupted %v %v %v %v %d",
					k, i+1, e.Train.Loss, e.Train.Accuracy, e.Val.Loss, e.LossScale, e.Step, r.Train.Loss, r.Train.Accuracy, r.Val.Loss, r.LossScale, r.Step)
			}
		}
		// The log holds each epoch once, although the interrupted run
		// wrote lines up to its interruption.
		b, err := os.ReadFile(filepath.Join(dir, MetricsFile))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), `"type":"epoch"`); n != 3 {
			t.Errorf("k=%d: metrics.jsonl has %d epoch lines, want 3", k, n)
		}
		if n := strings.Count(string(b), `"type":"step"`); n != 3*perEpoch {
			t.Errorf("k=%d: metrics.jsonl has %d step lines, want %d", k, n, 3*perEpoch)
		}
	}
	if refRes.History[2].LossScale <= 256 {
		t.Errorf("loss scale %v never grew: the scaler state is not exercised", refRes.History[2].LossScale)
	}
}

// TestResumeNeedsNoiseReplay is the control of the test above: skipping
// the replay of the interrupted epoch's noise makes the resumed weights
// differ, so the bit-identical result depends on it.
func TestResumeNeedsNoiseReplay(t *testing.T) {
	tr := newSynth(22, 5)
	cfg := resumeConfig()
	cfg.Epochs = 1
	ref := newStore(t, tensor.Float32)
	fit(t, tinyNet(t, netOpts{noisy: true}), ref, tr, nil, cfg, Options{})

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := HookFuncs{Step: func(s StepInfo) error {
		if s.Batch == 2 {
			cancel()
		}
		return nil
	}}
	tt, err := New(tinyNet(t, netOpts{noisy: true}), newStore(t, tensor.Float32), tr, nil, cfg, Options{RunDir: dir, Hooks: []Hook{stop}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tt.Fit(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fit: %v", err)
	}
	store := newStore(t, tensor.Float32)
	t2, err := New(tinyNet(t, netOpts{noisy: true}), store, tr, nil, cfg, Options{RunDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := t2.Resume(filepath.Join(dir, LastCheckpoint)); err != nil {
		t.Fatal(err)
	}
	t2.replay = 0
	if _, err := t2.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, _ := maxDiff(weights(t, ref), weights(t, store), nil); d == 0 {
		t.Error("resuming without the noise replay gave identical weights: the noise is not seeded per epoch as documented")
	}
}

// TestResumeErrors: incompatible settings and missing files are refused
// with a message naming the key.
func TestResumeErrors(t *testing.T) {
	tr := newSynth(12, 5)
	cfg := baseConfig()
	cfg.Epochs = 1
	dir := t.TempDir()
	fit(t, tinyNet(t, netOpts{}), newStore(t, tensor.Float32), tr, nil, cfg, Options{RunDir: dir})

	for _, c := range []struct {
		name   string
		change func(*Config)
		spec   string
		want   string
	}{
		{"batch size", func(c *Config) { c.BatchSize = 3 }, "last", "train.batch_size 4"},
		{"optimizer", func(c *Config) { c.Optimizer = OptSGD }, "last", "train.optimizer adam"},
		{"accumulation", func(c *Config) { c.AccumSteps = 2 }, "last", "train.accum_steps 1"},
		{"missing", func(*Config) {}, filepath.Join(dir, "nope.ckpt"), "start without --resume"},
		{"empty spec", func(*Config) {}, "", "no checkpoint given"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc := cfg
			c.change(&cc)
			tt, err := New(tinyNet(t, netOpts{}), newStore(t, tensor.Float32), tr, nil, cc, Options{RunDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			err = tt.Resume(c.spec)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Resume(%q): %v, want an error containing %q", c.spec, err, c.want)
			}
		})
	}
}
