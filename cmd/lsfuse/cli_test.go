package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// lsfuse runs the command line in-process and returns the exit code,
// stdout and stderr.
func lsfuse(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

const quickstart = "../../configs/quickstart.yaml"

// TestUsageErrors checks that bad input of every kind exits with code 2
// and one clear message, never a Go panic or stack trace.
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("model:\n  fusion_dim: 64\n  modalities:\n    vision:\n      encoder_dimm: 64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"missing config file", []string{"train", "-c", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml: config file does not exist"}},
		{"unknown key", []string{"config", "print", "-c", bad}, []string{"bad.yaml:5: model.modalities.vision.encoder_dimm: unknown key",
			`did you mean "model.modalities.vision.encoder_dim"?`}},
		{"bad flag value", []string{"train", "-c", quickstart, "--epochs", "many"}, []string{`invalid argument "many" for "--epochs"`}},
		{"bad --set", []string{"config", "print", "-c", quickstart, "--set", "train.lr=fast"}, []string{`train.lr: want a number, got "fast"`}},
		{"bad shorthand value", []string{"config", "print", "-c", quickstart, "--fusion-strategy", "eraly"}, []string{`model.fusion_strategy: unknown value "eraly"`, `did you mean "early"?`}},
		{"cuda", []string{"train", "-c", quickstart, "--device", "cuda"}, []string{"--device cuda: ", "use --device cpu"}},
		{"bench cuda", []string{"bench", "-c", "../../configs/bench-small.yaml", "--device", "cuda"}, []string{"--device cuda: ", "use --device cpu"}},
		{"mixed precision on the cpu", []string{"train", "-c", quickstart, "--device", "cpu", "--set", "train.mixed_precision=fp16", "--run-dir", dir},
			[]string{"train.mixed_precision fp16 needs --device cuda", "executes on cpu"}},
		{"bench mixed precision without a GPU", []string{"bench", "-c", "../../configs/bench-small.yaml", "--device", "auto", "--set", "train.mixed_precision=bf16"},
			[]string{"train.mixed_precision bf16 needs --device cuda", "executes on cpu"}},
		{"bad mixed precision", []string{"config", "print", "-c", quickstart, "--set", "train.mixed_precision=fp8"}, []string{`train.mixed_precision: unknown value "fp8"`, "off, fp16, bf16"}},
		{"eval bad device", []string{"eval", "--checkpoint", "x", "--device", "gpu"}, []string{`--device "gpu": want cpu, cuda or auto`}},
		{"no data", []string{"train", "-c", "../../configs/bench-small.yaml", "--run-dir", dir}, []string{"data.train: no training manifest"}},
		{"missing manifest", []string{"train", "-c", quickstart, "--set", "data.train=" + filepath.Join(dir, "m.csv"), "--run-dir", dir}, []string{"data.train: manifest", "m.csv does not exist"}},
		{"missing built-in dataset", []string{"train", "-c", quickstart, "--set", "data.builtin=avdigits", "--set", "data.train=", "--set", "data.dir=" + filepath.Join(dir, "av"), "--run-dir", dir},
			[]string{"make the avdigits dataset first with `lsfuse data avdigits"}},
		{"--multimodal with one modality", []string{"config", "print", "-c", quickstart, "--multimodal", "--modalities", "text"}, []string{"--multimodal: the configuration has 1 modality (text)"}},
		{"stray argument", []string{"config", "print", "-c", quickstart, "text"}, []string{`takes no arguments, got "text" (did you mean --modalities text?)`}},
		{"eval without checkpoint", []string{"eval"}, []string{"--checkpoint is required"}},
		{"eval missing checkpoint", []string{"eval", "--checkpoint", filepath.Join(dir, "x.ckpt")}, []string{"x.ckpt does not exist"}},
		{"eval bad split", []string{"eval", "--checkpoint", "x", "--split", "dev"}, []string{`--split "dev": want train, val or test`}},
		{"export not a checkpoint", []string{"export", "--checkpoint", bad, "--out", filepath.Join(dir, "o")}, []string{"checkpoint", "bad.yaml"}},
		{"bench mode", []string{"bench", "-c", "../../configs/bench-small.yaml", "--mode", "fly"}, []string{`--mode "fly": want train or infer`}},
		{"resume without a run", []string{"train", "-c", quickstart, "--run-dir", dir, "--resume", "last"}, []string{"--resume", "last.ckpt", "start without --resume"}},
		{"data bad counts", []string{"data", "avdigits", "--train", "0", "--test", "0", "--out", filepath.Join(dir, "d")}, []string{"not both 0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := lsfuse(t, c.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stdout %q, stderr %q)", code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
				t.Errorf("stack trace on stderr:\n%s", errOut)
			}
		})
	}
}

// TestConfigPrintPrecedence: defaults < files < environment < --set <
// shorthand flags, as `config print` shows them.
func TestConfigPrintPrecedence(t *testing.T) {
	dir := t.TempDir()
	over := filepath.Join(dir, "over.yaml")
	if err := os.WriteFile(over, []byte("train:\n  lr: 0.01\n  batch_size: 8\nmodel:\n  fusion_dim: 32\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LSFUSE_TRAIN_LR", "0.02")
	t.Setenv("LSFUSE_TRAIN_EPOCHS", "7")
	t.Setenv("LSFUSE_MODEL_FUSION_DIM", "48")
	code, out, errOut := lsfuse(t, "config", "print", "-c", quickstart, "-c", over,
		"--set", "train.epochs=9", "--set", "model.fusion_dim=96", "--fusion-dim", "80", "--modalities", "vision", "text")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"  lr: 0.02\n",                // environment over both files
		"  batch_size: 8\n",           // the second file over the first
		"  epochs: 9\n",               // --set over the environment
		"  fusion_dim: 80\n",          // the flag over --set
		"  fusion_strategy: hybrid\n", // the first file, untouched
		"    text:\n", "    vision:\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config print lacks %q", want)
		}
	}
	if strings.Contains(out, "    audio:\n") {
		t.Error("--modalities vision text kept audio")
	}
}

// TestTrainFlags checks flag parsing into the options, without running.
func TestTrainFlags(t *testing.T) {
	var got *trainOptions
	cmd := newTrainCmd(&IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, func(_ context.Context, o *trainOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"-c", "a.yaml", "--config", "b.yaml", "--multimodal", "--modalities", "vision", "text",
		"--fusion-dim", "512", "--epochs", "50", "--set", "train.lr=3e-4", "--resume", "best"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	c := got.Config
	if !reflect.DeepEqual(c.Files, []string{"a.yaml", "b.yaml"}) || !c.Multimodal || !reflect.DeepEqual(c.Modalities, []string{"vision", "text"}) ||
		got.Resume != "best" || !reflect.DeepEqual(c.Sets, []string{"train.lr=3e-4"}) {
		t.Errorf("options %+v", c)
	}
	o := c.loadOptions()
	want := []string{"--fusion-dim model.fusion_dim=512", "--epochs train.epochs=50"}
	var flags []string
	for _, f := range o.Flags {
		flags = append(flags, f.Flag+" "+f.Key+"="+f.Value)
	}
	if !reflect.DeepEqual(flags, want) {
		t.Errorf("overrides %q, want %q (only flags given on the command line)", flags, want)
	}
}

// TestHelpHasExamples checks every command's help shows examples.
func TestHelpHasExamples(t *testing.T) {
	for _, args := range [][]string{{"train"}, {"eval"}, {"export"}, {"bench"}, {"config", "print"}, {"data", "avdigits"}, {"data"}, {"version"}} {
		code, out, _ := lsfuse(t, append(args, "--help")...)
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "lsfuse "+args[0]) {
			t.Errorf("%v --help: exit %d, no examples:\n%s", args, code, out)
		}
	}
	code, out, _ := lsfuse(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "bash completion") {
		t.Errorf("completion bash: exit %d", code)
	}
}

// TestRunFailureExitsOne: a run that cannot write its directory fails with
// code 1 and one line naming the directory.
func TestRunFailureExitsOne(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := lsfuse(t, append([]string{"train"}, tinyQuickstart(file)...)...)
	if code != 1 || !strings.Contains(errOut, "run directory") || strings.Count(strings.TrimSpace(errOut), "\nlsfuse:") > 0 {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}
