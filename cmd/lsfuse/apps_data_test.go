package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/data"
)

// appDataset pairs an application config with the built-in dataset it reads.
type appDataset struct {
	config, dataset string
	// outputs is the model.output_dim the data gives the committed subset.
	outputs int
	// metric is a word the test line of a run prints.
	metric string
	// gen are `lsfuse data` flags for a tiny dataset; needs says why it
	// cannot be made here ("" when it can).
	gen   []string
	needs func() string
	// tiny are extra train flags for such a tiny dataset.
	tiny []string
}

func needEspeak() string {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		return "espeak-ng is not installed"
	}
	return ""
}

var appDatasets = []appDataset{
	{"vision_text", "visionlang", len(data.VisionLangAnswers), "accuracy", []string{"--train", "30", "--test", "6"}, func() string {
		for _, p := range []string{data.DefaultFashionMNISTDir, data.DefaultWordNetDir} {
			if _, err := os.Stat(p); err != nil {
				return p + " is missing (dataset-fashion-mnist, wordnet-base)"
			}
		}
		return ""
	}, nil},
	// 20 rows hold too few of each of the 40 digit-direction classes for a
	// stratified validation part: classify the digit, half held out.
	{"audio_video", "movingdigits", 0, "accuracy", []string{"--train", "20", "--test", "2", "--sample-rate", "8000"}, needEspeak,
		[]string{"--set", "data.label_column=label", "--set", "data.val_fraction=0.5"}},
	{"robot", "robot", 7, "mse", []string{"--train", "20", "--test", "4", "--image-size", "16", "--steps", "32"}, func() string { return "" }, nil},
	{"trimodal", "trimodal", 10, "accuracy", []string{"--train", "12", "--test", "2", "--sample-rate", "8000"}, needEspeak, nil},
}

// tinyApp are flags that train an application config for one epoch of
// two batches on the manifest at train.
func tinyApp(cfg, train, runDir string) []string {
	return []string{"train", "-c", "../../configs/" + cfg + ".yaml", "--set", "data.train=" + train, "--run-dir", runDir,
		"--epochs", "1", "--set", "data.max_train_samples=16", "--set", "data.max_eval_samples=8",
		"--set", "train.batch_size=8", "--set", "train.schedule.warmup=0", "--set", "train.stages=[]"}
}

// TestAppConfigsTrainOnCommittedSubsets trains every application config
// end to end (train, validate, checkpoint, test) on its committed subset
// under testdata/, which needs no tools beyond Go; and vision_text with the
// captioning overlay.
func TestAppConfigsTrainOnCommittedSubsets(t *testing.T) {
	dir := t.TempDir()
	type run struct {
		name, run string
		app       appDataset
		extra     []string
	}
	runs := []run{{"vision_caption", "vision_caption", appDatasets[0], []string{"-c", "../../configs/overlays/captioning.yaml"}}}
	for _, app := range appDatasets {
		runs = append(runs, run{app.config, app.config, app, nil})
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			manifest := filepath.Join("../../testdata", r.app.dataset, "manifest.csv")
			code, out, errOut := lsfuse(t, append(tinyApp(r.app.config, manifest, dir), r.extra...)...)
			if code != 0 || !strings.Contains(out, "trained 1 epochs") || !strings.Contains(out, "test (8 samples, best.ckpt): loss") || !strings.Contains(out, r.app.metric) {
				t.Fatalf("train %s: exit %d\n%s%s", r.name, code, out, errOut)
			}
			saved, err := config.Load(config.LoadOptions{Files: []string{filepath.Join(dir, r.run, "config.yaml")}})
			if err != nil {
				t.Fatal(err)
			}
			got := saved.Model.OutputDim
			switch {
			case r.extra != nil: // the caption vocabulary: specials + about 40 words
				if saved.Model.Head != "caption" || got < 20 || got > 60 {
					t.Errorf("%s: head %q, output_dim %d", r.name, saved.Model.Head, got)
				}
			case r.app.outputs == 0: // movingdigits: the training split's digit-direction pairs
				if got <= 10 || got > 40 {
					t.Errorf("%s: output_dim %d, want 11..40", r.name, got)
				}
			case got != r.app.outputs:
				t.Errorf("%s: output_dim %d, want %d", r.name, got, r.app.outputs)
			}
		})
	}
}

// TestAppDatasetsFromTheCommandLine makes each application dataset at tiny
// size with `lsfuse data` and trains its config on it (skipping datasets
// whose tools are not installed), as the configs' comments tell users to.
func TestAppDatasetsFromTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	for _, app := range appDatasets {
		t.Run(app.dataset, func(t *testing.T) {
			if why := app.needs(); why != "" {
				t.Skip(why)
			}
			out := filepath.Join(dir, app.dataset)
			code, stdout, errOut := lsfuse(t, append([]string{"data", app.dataset, "--out", out}, app.gen...)...)
			if code != 0 || !strings.Contains(stdout, "wrote "+filepath.Join(out, "manifest.csv")) || !strings.Contains(stdout, "configs/"+app.config+".yaml") {
				t.Fatalf("data %s: exit %d\n%s%s", app.dataset, code, stdout, errOut)
			}
			code, stdout, errOut = lsfuse(t, append(tinyApp(app.config, filepath.Join(out, "manifest.csv"), filepath.Join(dir, "runs")), app.tiny...)...)
			if code != 0 || !strings.Contains(stdout, "trained 1 epochs") {
				t.Fatalf("train %s on %s: exit %d\n%s%s", app.config, out, code, stdout, errOut)
			}
		})
	}
}

// TestDataCommandBadOptions checks that bad generator options are usage
// errors (exit 2) naming the option, before any tool is needed.
func TestDataCommandBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"data", "movingdigits", "--directions", "5"}, "directions 5 must be 4 or 8"},
		{[]string{"data", "movingdigits", "--size", "20"}, "size 20"},
		{[]string{"data", "visionlang", "--source", "cifar"}, `source "cifar"`},
		{[]string{"data", "robot", "--image-size", "8"}, "image_size 8"},
		{[]string{"data", "trimodal", "--sample-rate", "100"}, "sample_rate 100"},
		{[]string{"data", "robot", "--train", "0", "--test", "0"}, "not both 0"},
	} {
		code, _, errOut := lsfuse(t, append(c.args, "--out", filepath.Join(dir, "x"))...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", c.args, code, errOut, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a refused command left an output directory")
	}
}
