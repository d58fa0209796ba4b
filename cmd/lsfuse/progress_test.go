package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/lsfuse/lsfuse/pkg/train"
)

// drive feeds a two-epoch run of three batches each to a progress hook.
func drive(t *testing.T, h train.Hook) {
	t.Helper()
	if err := h.OnStart(train.StartInfo{Epochs: 2, StartEpoch: 1, BatchesPerEpoch: 3, TrainSamples: 90, ValSamples: 10, NumParams: 1234}); err != nil {
		t.Fatal(err)
	}
	for e := 1; e <= 2; e++ {
		for b := 1; b <= 3; b++ {
			if err := h.OnStep(train.StepInfo{Epoch: e, Batch: b, Batches: 3, Loss: 1.5, Accuracy: 0.25, LR: 1e-3, SamplesPerSec: 300, Stage: "all"}); err != nil {
				t.Fatal(err)
			}
		}
		val := &train.Metrics{Loss: 1.25, Accuracy: 0.5}
		if err := h.OnEpochEnd(train.EpochInfo{Epoch: e, Epochs: 2, Stage: "all", Train: train.Metrics{Loss: 1.5, Accuracy: 0.25}, Val: val,
			LR: 1e-3, SamplesPerSec: 300, Seconds: 0.3, Improved: e == 1, Monitor: "val_loss", MonitorValue: 1.25}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.OnFinish(train.FinishInfo{}); err != nil {
		t.Fatal(err)
	}
}

func TestPlainProgress(t *testing.T) {
	var b bytes.Buffer
	drive(t, newProgress(&b, false, 2))
	out := b.String()
	for _, want := range []string{
		"training 1234 parameters on 90 samples, validating on 10: 2 epochs × 3 batches\n",
		"epoch 1/2 batch 2/3 loss 1.5000 acc 0.250 lr 1.00e-03 300 samples/s eta",
		"epoch 1/2 batch 3/3 ", // the last batch of an epoch always logs
		"epoch 1/2: train loss 1.5000 acc 0.250, val loss 1.2500 acc 0.500, lr 1.00e-03, 300 samples/s, 0.3s *best val_loss 1.2500\n",
		"epoch 2/2: train loss",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plain progress lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "batch 1/3") || strings.Contains(out, "\r") || strings.Contains(out, "[all]") {
		t.Errorf("unexpected output:\n%q", out)
	}
}

func TestTerminalProgress(t *testing.T) {
	var b bytes.Buffer
	drive(t, newProgress(&b, true, 2))
	out := b.String()
	if !strings.Contains(out, "\r") || !strings.Contains(out, "epoch 1/2 loss 1.5000 acc 0.250") || !strings.Contains(out, "epoch 2/2: train loss") {
		t.Errorf("terminal progress:\n%q", out)
	}
}

func TestETA(t *testing.T) {
	now := time.Unix(0, 0)
	p := &progress{now: func() time.Time { return now }, info: train.StartInfo{Epochs: 2}}
	p.started = now
	p.done = 2
	now = now.Add(4 * time.Second) // 2 s per batch
	// Epoch 1, batch 2 of 3 done: 1 + 3 batches left.
	if got := p.eta(train.StepInfo{Epoch: 1, Batch: 2, Batches: 3}); got != 8*time.Second {
		t.Errorf("eta %v, want 8s", got)
	}
}
