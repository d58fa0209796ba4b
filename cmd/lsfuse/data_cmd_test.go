package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lsfuse/lsfuse/pkg/data"
)

// TestBuiltinDatasetsTrain makes tiny built-in datasets with `lsfuse data`
// and trains an experiment on each for one epoch (configs/quickstart.yaml
// on avdigits; configs/vision_text.yaml, switched to fashion's columns, on
// fashion).
func TestBuiltinDatasetsTrain(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, config string
		rows         []string
		sets         []string      // training overrides after data.train
		needs        func() string // why it cannot run here, or ""
	}{
		{"avdigits", "../../configs/quickstart.yaml", []string{"--train", "40", "--test", "10", "--sample-rate", "8000"}, nil, func() string {
			if _, err := exec.LookPath("espeak-ng"); err != nil {
				return "espeak-ng is not installed"
			}
			return ""
		}},
		{"fashion", "../../configs/vision_text.yaml", []string{"--train", "100", "--test", "10"},
			[]string{"data.label_column=label", "data.label_classes=[]", "data.inputs.text.column=text", "data.inputs.text.length=24"}, func() string {
				for _, p := range []string{data.DefaultFashionMNISTDir, data.DefaultWordNetDir} {
					if _, err := os.Stat(p); err != nil {
						return p + " is missing (dataset-fashion-mnist, wordnet-base)"
					}
				}
				return ""
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if why := c.needs(); why != "" {
				t.Skip(why)
			}
			out := filepath.Join(dir, c.name)
			code, stdout, errOut := lsfuse(t, append([]string{"data", c.name, "--out", out}, c.rows...)...)
			if code != 0 || !strings.Contains(stdout, "wrote "+filepath.Join(out, "manifest.csv")) {
				t.Fatalf("data %s: exit %d\n%s%s", c.name, code, stdout, errOut)
			}
			// A second run refuses to overwrite the dataset.
			if code, _, errOut := lsfuse(t, append([]string{"data", c.name, "--out", out}, c.rows...)...); code == 0 || !strings.Contains(errOut, "not empty") {
				t.Errorf("data %s over an existing dataset: exit %d %s", c.name, code, errOut)
			}
			args := []string{"train", "-c", c.config, "--set", "data.train=" + filepath.Join(out, "manifest.csv"), "--run-dir", filepath.Join(dir, "runs"),
				"--epochs", "1", "--set", "train.schedule.warmup=0", "--set", "train.stages=[]"}
			for _, kv := range c.sets {
				args = append(args, "--set", kv)
			}
			code, stdout, errOut = lsfuse(t, args...)
			if code != 0 || !strings.Contains(stdout, "trained 1 epochs") {
				t.Fatalf("train %s: exit %d\n%s%s", c.config, code, stdout, errOut)
			}
		})
	}
}
