package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stripeCaptions are the captions of the three image classes of
// writeCaptionData (≥ 4 words each: BLEU-4 needs 4-grams).
var stripeCaptions = []string{
	"thin horizontal stripes on a dark field",
	"thin vertical stripes on a dark field",
	"a fine checkerboard of bright squares",
}

// writeCaptionData writes n 8×8 grey PNGs per class (horizontal stripes,
// vertical stripes, checkerboard, with noise) and a manifest with their
// captions and a split column (every fifth image is a test image), and
// returns the manifest path and one image path per class.
func writeCaptionData(t *testing.T, dir string, n int) (string, []string) {
	t.Helper()
	rng := rand.New(rand.NewSource(5))
	var rows []string
	examples := make([]string, 3)
	for i := 0; i < 3*n; i++ {
		k := i % 3
		img := image.NewGray(image.Rect(0, 0, 8, 8))
		for y := 0; y < 8; y++ {
			for x := 0; x < 8; x++ {
				on := [3]bool{y%2 == 0, x%2 == 0, (x+y)%2 == 0}[k]
				v := 40 + rng.Intn(40)
				if on {
					v += 150
				}
				img.SetGray(x, y, color.Gray{Y: uint8(v)})
			}
		}
		name := fmt.Sprintf("img%03d.png", i)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		split := "train"
		if i%5 == 4 {
			split = "test"
		}
		rows = append(rows, fmt.Sprintf("%s,%s,%s", name, stripeCaptions[k], split))
		if examples[k] == "" {
			examples[k] = filepath.Join(dir, name)
		}
	}
	manifest := filepath.Join(dir, "captions.csv")
	if err := os.WriteFile(manifest, []byte("image,caption,split\n"+strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return manifest, examples
}

// captionExperiment is a tiny image-captioning experiment over
// writeCaptionData's manifest. Images are standardised with the training
// split's statistics, which predict must apply too.
const captionExperiment = `
model:
  head: caption
  fusion_strategy: early
  fusion_dim: 16
  caption: {embed_dim: 8, units: 16}
  modalities:
    vision:
      input_dim: 16
      encoder_dim: 16
      spiking_units: 16
      liquid_units: 16
      backbone_units: 16
      num_spike_steps: 2
      threshold: 0.5
      surrogate: {slope: 5}
      preprocessing: {architecture: simple, channels: [4, 4]}
data:
  train: captions.csv
  split_column: split
  label_column: caption
  label_kind: tokens
  label_text: {tokenizer: word, length: 10, add_bos: true, add_eos: true}
  inputs:
    vision: {column: image, channels: 1, height: 8, width: 8, normalize: dataset}
train:
  epochs: 60
  batch_size: 12
  lr: 0.005
  log_every: 0
  workers: 1
run:
  name: caption
`

// TestCaptionTrainEvalPredict trains a tiny captioning model through the
// CLI, then checks that eval reports BLEU-4 with decoded captions and
// that predict prints the caption of each class's image.
func TestCaptionTrainEvalPredict(t *testing.T) {
	dir := t.TempDir()
	_, examples := writeCaptionData(t, dir, 30)
	cfgPath := filepath.Join(dir, "caption.yaml")
	if err := os.WriteFile(cfgPath, []byte(captionExperiment), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := lsfuse(t, "train", "-c", cfgPath, "--run-dir", dir)
	if code != 0 {
		t.Fatalf("train: exit %d\n%s\n%s", code, out, errOut)
	}
	ckpt := filepath.Join(dir, "caption", "best.ckpt")

	code, out, errOut = lsfuse(t, "eval", "--checkpoint", ckpt, "--split", "test", "--json", "--no-ablation")
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s", code, errOut)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	if rep.Head != "caption" || rep.BLEU == nil || rep.Metrics.N != 18 || len(rep.Captions) != 18 || rep.Metrics.BLEU4 != rep.BLEU.Score {
		t.Fatalf("eval report: head %s, bleu %+v, n %d, %d captions", rep.Head, rep.BLEU, rep.Metrics.N, len(rep.Captions))
	}
	for _, c := range rep.Captions {
		if !contains(stripeCaptions, c.Reference) {
			t.Errorf("sample %d: reference %q is not one of the captions", c.Index, c.Reference)
		}
	}
	t.Logf("test BLEU-4 %.3f, token accuracy %.3f, e.g. %q for %q", rep.Metrics.BLEU4, rep.Metrics.Accuracy, rep.Captions[0].Generated, rep.Captions[0].Reference)
	if rep.Metrics.BLEU4 < 0.9 {
		t.Errorf("test BLEU-4 %.3f after training, want ≥ 0.9", rep.Metrics.BLEU4)
	}
	code, out, _ = lsfuse(t, "eval", "--checkpoint", ckpt, "--split", "test", "--no-ablation", "--beam", "2", "--captions", "2")
	if code != 0 || !strings.Contains(out, "BLEU-4") || !strings.Contains(out, "captions (2 of 18)") || strings.Count(out, "generated: ") != 2 {
		t.Errorf("eval text: exit %d\n%s", code, out)
	}

	code, out, errOut = lsfuse(t, append([]string{"predict", "--checkpoint", ckpt, "--beam", "3", "--image"}, strings.Join(examples, ","))...)
	if code != 0 {
		t.Fatalf("predict: exit %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("predict printed %d lines, want 3:\n%s", len(lines), out)
	}
	for k, line := range lines {
		if want := examples[k] + "\t" + stripeCaptions[k]; line != want {
			t.Errorf("predict line %d: %q, want %q", k, line, want)
		}
	}
	code, out, _ = lsfuse(t, "predict", "--checkpoint", ckpt, "--image", examples[0], "--json")
	var preds []prediction
	if err := json.Unmarshal([]byte(out), &preds); code != 0 || err != nil || len(preds) != 1 || !preds[0].Ended || len(preds[0].Tokens) != 7 || preds[0].LogProb > 0 {
		t.Errorf("predict --json: exit %d, %v, %+v", code, err, preds)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"predict", "--checkpoint", ckpt}, "give at least one --image"},
		{[]string{"predict", "--checkpoint", ckpt, "--image", filepath.Join(dir, "nope.png")}, "nope.png: not a readable file"},
		{[]string{"predict", "--checkpoint", ckpt, "--image", cfgPath}, "caption.yaml"},
		{[]string{"predict", "--checkpoint", ckpt, "--image", examples[0], "--modality", "audio"}, "--modality audio: not an image input of this model (image inputs: vision)"},
	} {
		code, _, errOut := lsfuse(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", tc.args[3:], code, errOut, tc.want)
		}
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
