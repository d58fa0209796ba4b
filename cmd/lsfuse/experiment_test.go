package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/lsfuse/lsfuse/pkg/experiment"
)

// childEnv makes this test binary act as the lsfuse executable: the
// table's runs are child processes, and in tests the child is
// TestLsfuseChild.
const childEnv = "GO_TEST_LSFUSE_CHILD"

// TestLsfuseChild is not a test of its own: with childEnv set it runs the
// command line after "--" and exits, standing in for the lsfuse binary in
// TestExperimentTable's child processes.
func TestLsfuseChild(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		return
	}
	os.Exit(run(flag.Args(), os.Stdout, os.Stderr))
}

// experimentCmd runs `lsfuse experiment <args>` in-process under a root
// named lsfuse, with the runs' children executed by this test binary.
func experimentCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	ios := &IOStreams{Out: &out, ErrOut: &errb}
	root := &cobra.Command{Use: "lsfuse", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newExperimentCmd(ios, func(ctx context.Context, o *tableOptions) error {
		o.Argv = []string{os.Args[0], "-test.run=^TestLsfuseChild$", "--"}
		o.Env = append(os.Environ(), childEnv+"=1")
		return runTable(ctx, o)
	}))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

// smallTestManifest writes a manifest of the first n test rows of the
// committed avdigits subset, with absolute file paths.
func smallTestManifest(t *testing.T, dir string, n int) string {
	t.Helper()
	src, err := filepath.Abs("../../testdata/avdigits")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(src, "manifest.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	out := [][]string{recs[0]}
	for _, r := range recs[1:] {
		if r[col["split"]] != "test" || len(out) > n {
			continue
		}
		r[col["image"]] = filepath.Join(src, r[col["image"]])
		r[col["audio"]] = filepath.Join(src, r[col["audio"]])
		out = append(out, r)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.WriteAll(out); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "test.csv")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExperimentTable runs the whole table at a tiny size (one seed, one
// epoch of 32 samples, 16 test rows) with configs/quickstart.yaml and checks
// that every row, run directory and measurement is there.
func TestExperimentTable(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 16 child processes, about 10 s of CPU")
	}
	dir := t.TempDir()
	test := smallTestManifest(t, dir, 16)
	work, md := filepath.Join(dir, "work"), filepath.Join(dir, "out", "TABLE.md")
	out, errOut, err := experimentCmd(t, "experiment", "table", "--config", "../../configs/quickstart.yaml", "--seeds", "1", "--epochs", "1",
		"--set", "data.max_train_samples=32", "--set", "data.max_eval_samples=16", "--set", "train.batch_size=16",
		"--set", "train.schedule.warmup=0", "--set", "train.log_every=0",
		"--test-manifest", test, "--work-dir", work, "--out", md)
	if err != nil {
		t.Fatalf("experiment table: %v\nstderr:\n%s", err, errOut)
	}
	written, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if string(written) != out {
		t.Errorf("%s differs from the printed table", md)
	}
	for _, label := range []string{"vision alone", "audio alone", "text alone", "**early**", "late", "hybrid (modality dropout on)",
		"hierarchical", "hybrid, modality dropout off"} {
		found := false
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "| "+label+" | ") {
				found = true
				if !strings.HasSuffix(l, " | 1/1 |") || strings.Count(l, "|") != 12 {
					t.Errorf("row %q: %s", label, l)
				}
			}
		}
		if !found {
			t.Errorf("table lacks the row %q:\n%s", label, out)
		}
	}
	for _, want := range []string{
		"Reproduce with `lsfuse experiment table --config ../../configs/quickstart.yaml --epochs 1 ", " --seeds 1 --set data.max_train_samples=32 ",
		"- seeds 1 (run.seed", "1 epoch, batch 16", "data: 32 training and 16 validation rows", "(16 rows evaluated)",
		"modality dropout vision 0.1, audio 0.1, text 0.3",
		"| **early** | ", " | 1.00x (", "Measured order of the strategies", "Modality dropout: hybrid reaches",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Failed runs") {
		t.Errorf("failed runs:\n%s", out)
	}
	if !strings.Contains(errOut, "[8/8] hybrid-no-dropout seed 1: test accuracy") {
		t.Errorf("progress:\n%s", errOut)
	}

	// --render-only redraws the same table from results.json.
	md2 := filepath.Join(dir, "again.md")
	again, errOut, err := experimentCmd(t, "experiment", "table", "--render-only", "--work-dir", work, "--out", md2)
	if err != nil || again != out {
		t.Errorf("--render-only: %v\n%s\n%s", err, errOut, again)
	}

	b, err := os.ReadFile(filepath.Join(work, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res tableResults
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 8 || len(res.Variants) != 8 {
		t.Fatalf("results.json: %d runs, %d variants", len(res.Runs), len(res.Variants))
	}
	for _, r := range res.Runs {
		fused := r.Variant != "vision" && r.Variant != "audio" && r.Variant != "text"
		if !r.OK() || r.TestN != 16 || r.Epochs != 1 || r.TrainN != 32 || r.SamplesPerSec <= 0 || r.TrainCPUSeconds <= 0 || r.Accuracy < 0 || r.Accuracy > 1 || fused != (len(r.Ablation) == 3) {
			t.Errorf("run %+v", r)
		}
		if runtime.GOOS == "linux" && r.PeakRSS < 10<<20 {
			t.Errorf("%s: peak RSS %d bytes: not the training process's", r.Variant, r.PeakRSS)
		}
		if filepath.Base(r.Dir) != r.Variant+"-seed1" {
			t.Errorf("run dir %s", r.Dir)
		}
		for _, f := range []string{"best.ckpt", "metrics.jsonl", experiment.EvalJSON, experiment.TableLog} {
			if _, err := os.Stat(filepath.Join(r.Dir, f)); err != nil {
				t.Errorf("run file: %v", err)
			}
		}
	}
}

// TestExperimentTableUsage checks the errors raised before any run.
func TestExperimentTableUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := "../../configs/quickstart.yaml"
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--config is required"},
		{[]string{"-c", cfg, "--seeds", "0"}, "--seeds 0: want at least 1"},
		{[]string{"-c", cfg, "--set", "model.modality_dropout.text=0", "--set", "model.modality_dropout.audio=0", "--set", "model.modality_dropout.vision=0"},
			"needs model.modality_dropout rates"},
		// Early fusion accepts different widths, hybrid does not: the row
		// is refused before anything trains.
		{[]string{"-c", cfg, "--set", "model.fusion_strategy=early", "--set", "model.modalities.text.encoder_dim=32"}, `row "hybrid (modality dropout on)"`},
		{[]string{"-c", cfg, "--test-manifest", filepath.Join(dir, "none.csv")}, "--test-manifest"},
	} {
		_, _, err := experimentCmd(t, append([]string{"experiment", "table", "--work-dir", dir}, c.args...)...)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want a usage error with %q", c.args, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "runs")); len(entries) > 0 {
		t.Errorf("runs started before the usage error: %v", entries)
	}
}
