package train

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
)

// TestFitLearnsAndWritesRun: a short run on the synthetic task beats
// chance (1/3) by a wide margin on held-out samples, calls every hook the
// documented number of times, and leaves metrics.jsonl, the checkpoints
// and the curves in the run directory.
func TestFitLearnsAndWritesRun(t *testing.T) {
	net := tinyNet(t, netOpts{})
	store := newStore(t, tensor.Float32)
	dir := t.TempDir()
	rec := newRecorder()
	cfg := baseConfig()
	cfg.Epochs, cfg.BatchSize, cfg.LogEvery = 5, 8, 2
	tr, val := newSynth(96, 1), newSynth(45, 2)
	res := fit(t, net, store, tr, val, cfg, Options{RunDir: dir, Hooks: []Hook{rec}, Meta: map[string]string{"config": "x: 1\n"}})

	const batches = 12 // 96 / 8
	if len(rec.starts) != 1 || len(rec.ends) != 1 || len(rec.epochs) != 5 || len(rec.steps) != 5*batches {
		t.Fatalf("hooks: %d starts, %d steps, %d epoch ends, %d finishes; want 1, %d, 5, 1",
			len(rec.starts), len(rec.steps), len(rec.epochs), len(rec.ends), 5*batches)
	}
	if s := rec.starts[0]; s.BatchesPerEpoch != batches || s.TotalSteps != 5*batches || s.TrainSamples != 96 || s.ValSamples != 45 || s.Resumed {
		t.Errorf("start info %+v", s)
	}
	last := res.Last
	t.Logf("final: train loss %.3f acc %.3f, val loss %.3f acc %.3f f1 %.3f, weights %v, spikes %v",
		last.Train.Loss, last.Train.Accuracy, last.Val.Loss, last.Val.Accuracy, last.Val.MacroF1, last.ModalityWeights, last.ModalitySpikeRates)
	if last.Val == nil || last.Val.Accuracy < 0.8 {
		t.Fatalf("validation accuracy %v after 5 epochs, want ≥ 0.8 (chance 1/3)", last.Val)
	}
	if last.Val.N != 45 || last.Train.N != 96 {
		t.Errorf("metric counts train %d val %d, want 96 and 45", last.Train.N, last.Val.N)
	}
	if first := rec.epochs[0]; !(last.Val.Loss < first.Val.Loss) {
		t.Errorf("validation loss did not fall: %g → %g", first.Val.Loss, last.Val.Loss)
	}
	if w := last.ModalityWeights; len(w) != 2 || w["a"]+w["b"] < 0.999 || w["a"]+w["b"] > 1.001 {
		t.Errorf("modality weights %v", w)
	}
	if len(last.ModalitySpikeRates) != 2 || len(last.SpikeRates) != 2 {
		t.Errorf("spike rates %v / %v, want one layer per modality", last.SpikeRates, last.ModalitySpikeRates)
	}
	if res.Monitor != MonitorValLoss || res.BestEpoch < 1 || res.Epochs != 5 || res.Steps != 5*batches {
		t.Errorf("result %+v", res)
	}

	// The run directory.
	for _, f := range []string{LastCheckpoint, BestCheckpoint, MetricsFile, LossPlot, AccuracyPlot} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	png, _ := os.ReadFile(filepath.Join(dir, LossPlot))
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Errorf("loss.png is not a PNG")
	}
	_, meta, err := model.LoadCheckpoint(filepath.Join(dir, LastCheckpoint), newStoreFor(t, net))
	if err != nil {
		t.Fatal(err)
	}
	if meta["config"] != "x: 1\n" || meta[metaOptimizer] != "adam" {
		t.Errorf("checkpoint metadata %q / %q", meta["config"], meta[metaOptimizer])
	}

	// metrics.jsonl: a step line every 2 batches, an epoch line per epoch.
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kinds := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		kinds[line["type"].(string)]++
		if line["type"] == "epoch" {
			for _, k := range []string{"train", "val", "lr", "loss_scale", "samples_per_sec", "spike_rates", "modality_spike_rates", "modality_weights"} {
				if _, ok := line[k]; !ok {
					t.Errorf("epoch line lacks %q: %s", k, sc.Text())
				}
			}
		}
	}
	if kinds["step"] != 5*batches/2 || kinds["epoch"] != 5 {
		t.Errorf("metrics.jsonl has %v, want %d step and 5 epoch lines", kinds, 5*batches/2)
	}
}
