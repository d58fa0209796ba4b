package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lsfuse/lsfuse/pkg/config"
)

// tinyQuickstart are flags that shrink configs/quickstart.yaml to a few
// batches, so the whole train → eval → resume → export path runs in seconds.
func tinyQuickstart(runDir string) []string {
	return []string{"-c", quickstart, "--run-dir", runDir, "--epochs", "1",
		"--set", "data.max_train_samples=32", "--set", "data.max_eval_samples=16",
		"--set", "train.batch_size=16", "--set", "train.schedule.warmup=0", "--set", "train.log_every=1"}
}

// epochLines counts the epoch records of a metrics.jsonl.
func epochLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: bad line %q: %v", path, sc.Text(), err)
		}
		if rec["type"] == "epoch" || rec["kind"] == "epoch" {
			n++
		}
	}
	return n
}

// TestTrainEvalRoundTrip trains the quickstart experiment on a few batches
// of the committed avdigits subset, then evaluates, resumes and exports
// the run.
func TestTrainEvalRoundTrip(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := lsfuse(t, append([]string{"train"}, tinyQuickstart(dir)...)...)
	if code != 0 {
		t.Fatalf("train: exit %d\n%s", code, errOut)
	}
	run := filepath.Join(dir, "quickstart")
	for _, f := range []string{"config.yaml", "stats.json", "metrics.jsonl", "last.ckpt", "best.ckpt"} {
		if _, err := os.Stat(filepath.Join(run, f)); err != nil {
			t.Errorf("run file: %v", err)
		}
	}
	if !strings.Contains(out, "trained 1 epochs") || !strings.Contains(out, "test (16 samples, best.ckpt): loss") {
		t.Errorf("train stdout:\n%s", out)
	}
	// Not a terminal: plain progress lines, no bar redraws.
	if !strings.Contains(errOut, "epoch 1/1 batch 2/2 loss") || !strings.Contains(errOut, "epoch 1/1: train loss") || strings.Contains(errOut, "\r") {
		t.Errorf("progress on stderr:\n%q", errOut)
	}
	if n := epochLines(t, filepath.Join(run, "metrics.jsonl")); n != 1 {
		t.Errorf("metrics.jsonl has %d epoch lines, want 1", n)
	}

	// The saved config is complete: it loads on its own and names the
	// sizes the data gave.
	saved, err := config.Load(config.LoadOptions{Files: []string{filepath.Join(run, "config.yaml")}})
	if err != nil {
		t.Fatalf("saved config.yaml: %v", err)
	}
	if saved.Model.OutputDim != 10 || saved.Model.Modalities["text"].Preprocessing["vocab_size"] == 0 || !filepath.IsAbs(saved.Data.Train) {
		t.Errorf("saved config: output_dim %d, text preprocessing %v, data.train %q",
			saved.Model.OutputDim, saved.Model.Modalities["text"].Preprocessing, saved.Data.Train)
	}

	code, out, errOut = lsfuse(t, "eval", "--checkpoint", filepath.Join(run, "best.ckpt"), "--split", "val", "--json")
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s", code, errOut)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	// max_eval_samples does not apply to eval: the whole validation part
	// (10% of the 700 training rows) is evaluated.
	if rep.Metrics.N != 70 || len(rep.Confusion) != 10 || len(rep.Classes) != 10 || len(rep.Ablation) != 3 {
		t.Errorf("eval report: n %d, confusion %d rows, classes %v, ablation %v", rep.Metrics.N, len(rep.Confusion), rep.Classes, rep.Ablation)
	}
	// Hybrid fusion: one "self" attention map for each of the default 4
	// samples, next to the checkpoint.
	if len(rep.AttentionPNGs) != 4 {
		t.Errorf("eval wrote %d attention PNGs, want 4: %v", len(rep.AttentionPNGs), rep.AttentionPNGs)
	}
	for _, p := range rep.AttentionPNGs {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 || filepath.Dir(p) != filepath.Join(run, "attention") {
			t.Errorf("attention PNG %s: %v", p, err)
		}
	}
	total := 0
	for _, row := range rep.Confusion {
		for _, v := range row {
			total += v
		}
	}
	if total != 70 || rep.Metrics.Accuracy < 0 || rep.Metrics.Accuracy > 1 {
		t.Errorf("confusion matrix counts %d samples, accuracy %g", total, rep.Metrics.Accuracy)
	}
	code, out, _ = lsfuse(t, "eval", "--checkpoint", filepath.Join(run, "best.ckpt"), "--split", "val", "--no-ablation")
	if code != 0 || !strings.Contains(out, "confusion matrix") || !strings.Contains(out, "70 samples") {
		t.Errorf("eval text: exit %d\n%s", code, out)
	}

	// Resume from last.ckpt for a second epoch: the log keeps the first.
	code, out, errOut = lsfuse(t, append([]string{"train"}, append(tinyQuickstart(dir), "--epochs", "2", "--resume", "last")...)...)
	if code != 0 || !strings.Contains(errOut, "resuming at epoch 2") || !strings.Contains(out, "trained 2 epochs") {
		t.Fatalf("resume: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if n := epochLines(t, filepath.Join(run, "metrics.jsonl")); n != 2 {
		t.Errorf("metrics.jsonl has %d epoch lines after resuming, want 2", n)
	}
	// A checkpoint of another model is refused with the differences.
	code, _, errOut = lsfuse(t, append([]string{"train"}, append(tinyQuickstart(dir), "--epochs", "3", "--resume", "last",
		"--set", "model.modalities.text.encoder_dim=32", "--fusion-strategy", "late")...)...)
	if code != 2 || !strings.Contains(errOut, "was trained with a different model") || !strings.Contains(errOut, "model.modalities.text.encoder_dim: 64 ≠ 32") {
		t.Errorf("resume with another model: exit %d\n%s", code, errOut)
	}

	out2 := filepath.Join(dir, "w.safetensors")
	code, out, errOut = lsfuse(t, "export", "--checkpoint", filepath.Join(run, "last.ckpt"), "--format", "safetensors", "--out", out2)
	if code != 0 || !strings.Contains(out, "wrote "+out2) {
		t.Errorf("export: exit %d\n%s%s", code, out, errOut)
	}
	onnx := filepath.Join(dir, "m.onnx")
	code, out, errOut = lsfuse(t, "export", "--checkpoint", filepath.Join(run, "best.ckpt"), "--format", "onnx", "--out", onnx)
	if st, err := os.Stat(onnx); code != 0 || err != nil || st.Size() < 1000 || !strings.Contains(out, "(onnx, ") {
		t.Errorf("export onnx: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if code, _, errOut = lsfuse(t, "export", "--checkpoint", filepath.Join(run, "best.ckpt"), "--format", "onnx", "--opset", "9", "--out", onnx); code != 2 || !strings.Contains(errOut, "opsets 13 to 21") {
		t.Errorf("export --opset 9: exit %d %s", code, errOut)
	}
}

// TestBench runs a few bench-small steps and checks the report's format.
func TestBench(t *testing.T) {
	code, out, errOut := lsfuse(t, "bench", "-c", "../../configs/bench-small.yaml", "--mode", "infer", "--batch", "4", "--spike-steps", "2", "--warmup", "1", "--steps", "2")
	if code != 0 {
		t.Fatalf("bench: exit %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	for _, w := range []string{"lsfuse-bench: mode=infer batch=4 T=2 median_ms_per_step=", " steps_per_s=", " peak_rss_mb=", " allocs_per_step=", " params=315210"} {
		if !strings.Contains(last, w) {
			t.Errorf("last line %q lacks %q", last, w)
		}
	}
}
