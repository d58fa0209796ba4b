package train

import (
	"context"
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// sgdConfig is a float64-friendly plain-SGD run over one epoch.
func sgdConfig(batch, accum int) Config {
	cfg := baseConfig()
	cfg.Epochs = 1
	cfg.Optimizer = OptSGD
	cfg.LR = 0.1
	cfg.BatchSize = batch
	cfg.AccumSteps = accum
	return cfg
}

// TestAccumulationEqualsLargeBatch: accumulating 2 micro-batches of 4 gives
// the update of one batch of 8, including the epoch's final partial window
// (one short micro-batch of 2) against the short last batch of 2. The
// loader's order does not depend on the batch size, so both runs see the
// same samples in the same groups. Float64: agreement to 1e-12.
func TestAccumulationEqualsLargeBatch(t *testing.T) {
	tr := newSynth(18, 4) // accumulated: [4 4] [4 4] [2]; large: [8] [8] [2]
	net := tinyNet(t, netOpts{})
	big, acc := newStore(t, tensor.Float64), newStore(t, tensor.Float64)
	recBig, recAcc := newRecorder(), newRecorder()
	fit(t, net, big, tr, nil, sgdConfig(8, 1), Options{Hooks: []Hook{recBig}})
	fit(t, net, acc, tr, nil, sgdConfig(4, 2), Options{Hooks: []Hook{recAcc}})
	if d, where := maxDiff(weights(t, big), weights(t, acc), nil); d > 1e-12 {
		t.Errorf("accumulated weights differ from the large-batch weights by %g (%s)", d, where)
	}
	if len(recAcc.steps) != 5 || recAcc.steps[4].Samples != 2 || !recAcc.steps[4].Updated || recAcc.steps[4].Step != 3 {
		t.Fatalf("accumulated run: %d batches, last %+v; want 5 batches, the last of 2 samples closing step 3", len(recAcc.steps), recAcc.steps[len(recAcc.steps)-1])
	}
	for i, s := range recAcc.steps {
		if want := i%2 == 1 || i == 4; s.Updated != want {
			t.Errorf("batch %d: updated %v, want %v", i+1, s.Updated, want)
		}
	}
	// A control: the same micro-batches without averaging over the
	// window would double the step, and must not match.
	ctl := newStore(t, tensor.Float64)
	cfg := sgdConfig(4, 2)
	cfg.LR = 0.2
	fit(t, net, ctl, tr, nil, cfg, Options{})
	if d, _ := maxDiff(weights(t, big), weights(t, ctl), nil); d < 1e-6 {
		t.Errorf("doubling the rate changed nothing (%g): the comparison cannot fail", d)
	}
}

// TestShortLastBatch: without DropLast the epoch trains on every sample
// once (a last batch of 2 on its own graph); with it the short batch is
// dropped.
func TestShortLastBatch(t *testing.T) {
	tr := newSynth(10, 4)
	net := tinyNet(t, netOpts{})
	for _, drop := range []bool{false, true} {
		cfg := sgdConfig(4, 1)
		cfg.DropLast = drop
		rec := newRecorder()
		res := fit(t, net, newStore(t, tensor.Float32), tr, nil, cfg, Options{Hooks: []Hook{rec}})
		wantN, wantBatches := 10, 3
		if drop {
			wantN, wantBatches = 8, 2
		}
		if res.Last.Train.N != wantN || len(rec.steps) != wantBatches || res.Steps != wantBatches {
			t.Errorf("drop_last %v: %d samples in %d batches (%d steps), want %d in %d", drop, res.Last.Train.N, len(rec.steps), res.Steps, wantN, wantBatches)
		}
	}
}

// TestLossScalingUnscalesExactly: with a power-of-two scale S and no
// overflow, scaling the loss by S and the gradients by 1/S leaves the
// float64 run unchanged to rounding.
func TestLossScalingUnscalesExactly(t *testing.T) {
	tr := newSynth(16, 4)
	net := tinyNet(t, netOpts{})
	plain, scaled := newStore(t, tensor.Float64), newStore(t, tensor.Float64)
	fit(t, net, plain, tr, nil, sgdConfig(4, 2), Options{})
	cfg := sgdConfig(4, 2)
	cfg.LossScale = LossScaleConfig{Enabled: true, Init: 1024, GrowthInterval: 1}
	rec := newRecorder()
	fit(t, net, scaled, tr, nil, cfg, Options{Hooks: []Hook{rec}})
	if d, where := maxDiff(weights(t, plain), weights(t, scaled), nil); d > 1e-12 {
		t.Errorf("loss-scaled run differs by %g (%s)", d, where)
	}
	// Growth every good step: 1024, 1024 | 2048, 2048 (per batch).
	if s := rec.steps; s[0].LossScale != 1024 || s[2].LossScale != 2048 {
		t.Errorf("loss scales %v, %v; want 1024 then 2048", s[0].LossScale, s[2].LossScale)
	}
}

// TestForcedOverflowSkipsOneStep: an Inf planted in one gradient of the
// second accumulation window (loss scaling on) skips exactly that step:
// the weights are bit-for-bit those before it, its gradients are zeroed,
// the scale halves, and the following steps train normally.
func TestForcedOverflowSkipsOneStep(t *testing.T) {
	tr := newSynth(24, 4) // 6 batches of 4, 3 windows of 2
	cfg := sgdConfig(4, 2)
	cfg.LossScale = LossScaleConfig{Enabled: true, Init: 1024, GrowthInterval: 100}
	store := newStore(t, tensor.Float32)
	var tt *Trainer
	snap := map[int]map[string][]float64{}
	gradsZero := true
	h := HookFuncs{Step: func(s StepInfo) error {
		snap[s.Batch] = weights(t, store)
		if s.Batch == 4 {
			for _, n := range tt.graphs[4].learn {
				gv, err := n.Grad()
				if err != nil {
					return err
				}
				for _, x := range gv.(tensor.Tensor).Data().([]float32) {
					if x != 0 {
						gradsZero = false
					}
				}
			}
		}
		return nil
	}}
	rec := newRecorder()
	tt, err := New(tinyNet(t, netOpts{}), store, tr, nil, cfg, Options{Hooks: []Hook{h, rec}})
	if err != nil {
		t.Fatal(err)
	}
	tt.inject = func(step int, learn G.Nodes) {
		if step == 1 && learn[0] != nil {
			gv, _ := learn[0].Grad()
			gv.(tensor.Tensor).Data().([]float32)[0] = float32(math.Inf(1))
		}
	}
	if _, err := tt.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	var skipped []int
	for _, s := range rec.steps {
		if s.Skipped {
			skipped = append(skipped, s.Batch)
		}
	}
	if len(skipped) != 1 || skipped[0] != 4 {
		t.Fatalf("skipped steps closed by batches %v, want exactly [4]", skipped)
	}
	if d, where := maxDiff(snap[2], snap[4], nil); d != 0 {
		t.Errorf("the skipped step changed the weights by %g (%s)", d, where)
	}
	if d, _ := maxDiff(snap[4], snap[6], nil); d == 0 {
		t.Error("the step after the skipped one did not train")
	}
	if !gradsZero {
		t.Error("gradients not zeroed after the skipped step")
	}
	if s := rec.steps; s[3].LossScale != 1024 || s[4].LossScale != 512 {
		t.Errorf("loss scale %v during the overflow, %v after; want 1024 then 512", s[3].LossScale, s[4].LossScale)
	}
	for name, v := range snap[6] {
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("%s is not finite after training", name)
			}
		}
	}
	if rec.epochs[0].SkippedSteps != 1 {
		t.Errorf("epoch reports %d skipped steps, want 1", rec.epochs[0].SkippedSteps)
	}
}

// TestClipNorm: with plain SGD at rate 1 and a clip of 1e-3, the first
// update moves the weights by 1e-3 in global L2 norm (less torch's
// 1e-6 guard).
func TestClipNorm(t *testing.T) {
	tr := newSynth(8, 4)
	cfg := sgdConfig(8, 1)
	cfg.LR = 1
	cfg.ClipNorm = 1e-3
	init := newStore(t, tensor.Float64)
	rec := newRecorder()
	tt, err := New(tinyNet(t, netOpts{}), init, tr, nil, cfg, Options{Hooks: []Hook{rec}})
	if err != nil {
		t.Fatal(err)
	}
	w0 := weights(t, init)
	if _, err := tt.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	ss := 0.0
	for name, v := range weights(t, init) {
		for i := range v {
			d := v[i] - w0[name][i]
			ss += d * d
		}
	}
	// torch's clip_grad_norm_ scales by max/(norm+1e-6), as ClipGlobalNorm.
	norm := rec.steps[0].GradNorm
	want := 1e-3 * norm / (norm + 1e-6)
	if got := math.Sqrt(ss); math.Abs(got-want) > 1e-12 {
		t.Errorf("update norm %.12g, want %.12g (gradient norm before clipping %g)", got, want, norm)
	}
	if rec.steps[0].GradNorm <= 1e-3 {
		t.Errorf("gradient norm %g: the clip was not active", rec.steps[0].GradNorm)
	}
}

// TestModalityLR: a multiplier of 0 leaves a modality's parameters
// untouched, 0.5 halves the first SGD update of them exactly, and the
// longest prefix wins.
func TestModalityLR(t *testing.T) {
	tr := newSynth(8, 4)
	net := tinyNet(t, netOpts{})
	run := func(mults map[string]float64) (w0, w1 map[string][]float64) {
		cfg := sgdConfig(8, 1)
		cfg.ModalityLR = mults
		store := newStore(t, tensor.Float64)
		tt, err := New(net, store, tr, nil, cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		w0 = weights(t, store)
		if _, err := tt.Fit(context.Background()); err != nil {
			t.Fatal(err)
		}
		return w0, weights(t, store)
	}
	under := func(p string) func(string) bool {
		return func(n string) bool { return strings.HasPrefix(n, p+".") }
	}
	w0, ref := run(nil)
	_, frozen := run(map[string]float64{"a": 0, "a.encoder": 0})
	if d, where := maxDiff(w0, frozen, under("a")); d != 0 {
		t.Errorf("modality a with rate 0 moved by %g (%s)", d, where)
	}
	if d, _ := maxDiff(w0, frozen, under("b")); d == 0 {
		t.Error("modality b did not train")
	}
	_, half := run(map[string]float64{"a": 0.5, "a.pre": 0.25})
	for name, v := range half {
		want := 1.0
		switch {
		case strings.HasPrefix(name, "a.pre."):
			want = 0.25
		case strings.HasPrefix(name, "a."):
			want = 0.5
		}
		for i := range v {
			full := ref[name][i] - w0[name][i]
			got := v[i] - w0[name][i]
			if math.Abs(got-want*full) > 1e-12 {
				t.Fatalf("%s[%d]: update %g, want %g × %g", name, i, got, want, full)
			}
		}
	}
}

// TestScheduleDrivesLR: the step schedule halves the rate every 2
// optimiser steps, and the reported rate includes the stage scale.
func TestScheduleDrivesLR(t *testing.T) {
	tr := newSynth(24, 4)
	cfg := sgdConfig(4, 1)
	cfg.Schedule = ScheduleConfig{Kind: "step", StepSize: 2, Gamma: 0.5}
	cfg.Stages = []StageConfig{{Name: "only", LRScale: 0.5}}
	rec := newRecorder()
	fit(t, tinyNet(t, netOpts{}), newStore(t, tensor.Float32), tr, nil, cfg, Options{Hooks: []Hook{rec}})
	want := []float64{0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125}
	for i, s := range rec.steps {
		if math.Abs(s.LR-want[i]) > 1e-15 {
			t.Errorf("batch %d: lr %g, want %g", i+1, s.LR, want[i])
		}
	}
}
