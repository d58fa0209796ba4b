package data

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// committedTriModal is the subset under testdata/ (mk/apps.mk).
const committedTriModal = "../../testdata/trimodal"

// evalPhrase computes the value of a trimodal text ("three plus four",
// "half of fourteen", "seven"); ok is false when it is not a phrase of the
// documented forms.
func evalPhrase(text string) (int, bool) {
	num := func(w string) (int, bool) {
		i := slices.Index(numberWords, w)
		return i, i >= 0
	}
	for _, op := range []string{" plus ", " minus ", " times "} {
		if a, b, found := strings.Cut(text, op); found {
			x, ok1 := num(a)
			y, ok2 := num(b)
			switch op {
			case " plus ":
				return x + y, ok1 && ok2
			case " minus ":
				return x - y, ok1 && ok2
			default:
				return x * y, ok1 && ok2
			}
		}
	}
	if w, found := strings.CutPrefix(text, "half of "); found {
		x, ok := num(w)
		return x / 2, ok && x%2 == 0
	}
	if w, found := strings.CutPrefix(text, "the number after "); found {
		x, ok := num(w)
		return x + 1, ok
	}
	if w, found := strings.CutPrefix(text, "the number before "); found {
		x, ok := num(w)
		return x - 1, ok
	}
	return num(text)
}

func TestDigitPhrase(t *testing.T) {
	r := newRNG(3, 4)
	forms := map[string]int{}
	for d := range 10 {
		for range 100 {
			text, form := digitPhrase(d, 0.7, r)
			forms[form]++
			if v, ok := evalPhrase(text); !ok || v != d {
				t.Fatalf("digit %d: phrase %q (%s) means %d (%v)", d, text, form, v, ok)
			}
			if (form == TriModalWord) != (text == DigitWords[d]) {
				t.Fatalf("digit %d: %q has form %s", d, text, form)
			}
		}
	}
	for _, f := range []string{TriModalWord, TriModalPlus, TriModalMinus, TriModalTimes, TriModalHalf, TriModalAfter, TriModalBefore} {
		if forms[f] == 0 {
			t.Errorf("form %s never drawn: %v", f, forms)
		}
	}
	if w := float64(forms[TriModalWord]) / 1000; math.Abs(w-0.3) > 0.06 {
		t.Errorf("word share %.2f, want about 0.3", w)
	}
}

// TestGenerateTriModal checks the pairing and the missing modalities, and
// that a modality's content does not depend on whether the others are
// dropped.
func TestGenerateTriModal(t *testing.T) {
	requireEspeak(t)
	cfg := DefaultTriModalConfig()
	cfg.Train, cfg.Test, cfg.Seed = 0, 12, 2
	cfg.Image, cfg.Text = ImageDegradation{}, TextCorruption{ReplaceProb: 0.2}
	cfg.Speech.SampleRate, cfg.Speech.AddNoise = 8000, false
	cfg.Missing = TriModalMissing{Image: 0.4, Audio: 0.4, Text: 0.4}
	dir := filepath.Join(t.TempDir(), "tm")
	ctx := context.Background()
	res, err := GenerateTriModal(ctx, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows := readManifestCSV(t, res.Manifest)
	mnistDir, err := DefaultMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	src := testSplitOf(t, mnistDir)["test"]
	missing := [3]int{}
	for i, row := range rows {
		label, _ := strconv.Atoi(row["label"])
		idx, _ := strconv.Atoi(row["source_index"])
		if src.labels[idx] != label {
			t.Fatalf("row %d: label %d, MNIST image %d is a %d", i, label, idx, src.labels[idx])
		}
		gone := [3]bool{row["image"] == "", row["audio"] == "", row["text"] == ""}
		if gone[0] && gone[1] && gone[2] {
			t.Fatalf("row %d lacks every modality", i)
		}
		for k, g := range gone {
			if g {
				missing[k]++
			}
		}
		if (row["voice"] == "") != gone[1] || (row["text_form"] == "") != gone[2] {
			t.Fatalf("row %d: details %v do not match the missing cells", i, row)
		}
		if !gone[0] {
			img, err := LoadImage(filepath.Join(dir, row["image"]), ImageConfig{Channels: 1})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range src.image(idx) {
				if math.Round(float64(img.Data[k])*255) != float64(v) {
					t.Fatalf("row %d: image differs from its MNIST source", i)
				}
			}
		}
		if !gone[1] {
			w, err := DecodeWAV(mustRead(t, filepath.Join(dir, row["audio"])))
			if err != nil || w.Rate != 8000 || rms(w.Mono()) < 0.02 {
				t.Fatalf("row %d: audio %v, rate %d", i, err, w.Rate)
			}
		}
		if !gone[2] {
			v, ok := evalPhrase(row["text"])
			if !ok || (v == label) != (row["text_noise"] == textClean) {
				t.Fatalf("row %d: text %q means %d (%v) for digit %d, noise %s", i, row["text"], v, ok, label, row["text_noise"])
			}
		}
	}
	if missing[0] == 0 || missing[1] == 0 || missing[2] == 0 {
		t.Errorf("missing per modality %v: want each among 12 rows at p = 0.4", missing)
	}

	// Without missing modalities, the rows that had one keep the same
	// files and text for the others.
	cfg.Missing = TriModalMissing{}
	dir1 := filepath.Join(t.TempDir(), "tm1")
	if _, err := GenerateTriModal(ctx, dir1, cfg); err != nil {
		t.Fatal(err)
	}
	full := readManifestCSV(t, filepath.Join(dir1, "manifest.csv"))
	for i, row := range rows {
		for _, col := range []string{"image", "audio"} {
			if row[col] != "" && !slices.Equal(mustRead(t, filepath.Join(dir, row[col])), mustRead(t, filepath.Join(dir1, full[i][col]))) {
				t.Fatalf("row %d: %s changes when other modalities are dropped", i, col)
			}
		}
		if row["text"] != "" && row["text"] != full[i]["text"] {
			t.Fatalf("row %d: text %q becomes %q", i, row["text"], full[i]["text"])
		}
		if full[i]["image"] == "" || full[i]["audio"] == "" || full[i]["text"] == "" {
			t.Fatalf("row %d lacks a modality with missing probabilities 0: %v", i, full[i])
		}
	}
}

func TestTriModalConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		edit func(*TriModalConfig)
		want string
	}{
		{func(c *TriModalConfig) { c.Train, c.Test = 0, 0 }, "not both 0"},
		{func(c *TriModalConfig) { c.PhraseProb = 1.5 }, "phrase_prob 1.5"},
		{func(c *TriModalConfig) { c.Missing.Audio = -0.1 }, "missing probabilities"},
		{func(c *TriModalConfig) { c.Text.TypoProb = 3 }, "typo_prob 3"},
		{func(c *TriModalConfig) { c.Speech.Accents = nil }, "accents is empty"},
	} {
		cfg := DefaultTriModalConfig()
		tc.edit(&cfg)
		if _, err := GenerateTriModal(context.Background(), t.TempDir(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

// TestCommittedTriModal decodes the committed subset as configs/trimodal.yaml
// reads it: empty cells are absent modalities.
func TestCommittedTriModal(t *testing.T) {
	c := generatedConfig[TriModalConfig](t, committedTriModal)
	ds, rows := openCommitted(t, committedTriModal, ManifestConfig{
		Columns: map[string]ColumnSpec{
			"image": {Kind: KindImage, Modality: "vision", Optional: true, Image: ImageConfig{Channels: 1, Height: 28, Width: 28}},
			"audio": {Kind: KindAudio, Optional: true, Audio: AudioConfig{SampleRate: c.Speech.SampleRate, Length: int(c.Speech.MaxSeconds * float64(c.Speech.SampleRate))}},
			"text":  {Kind: KindText, Optional: true, Text: TextConfig{Tokenizer: "word", Length: 6, Vocab: VocabConfig{Lowercase: true}}},
		},
		LabelColumn:  "label",
		LabelClasses: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
	}, c.Train+c.Test)
	absent := 0
	for i, row := range rows {
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if strconv.Itoa(s.Label.Class) != row["label"] {
			t.Fatalf("row %d: class %d, label %s", i, s.Label.Class, row["label"])
		}
		for mod, col := range map[string]string{"vision": "image", "audio": "audio", "text": "text"} {
			if s.Present[mod] != (row[col] != "") {
				t.Fatalf("row %d: %s present %v, cell %q", i, mod, s.Present[mod], row[col])
			}
			if !s.Present[mod] {
				absent++
			}
		}
		if row["text_noise"] == textClean {
			if v, ok := evalPhrase(row["text"]); !ok || strconv.Itoa(v) != row["label"] {
				t.Fatalf("row %d: clean text %q for digit %s", i, row["text"], row["label"])
			}
		}
	}
	if absent == 0 {
		t.Error("no absent modality in the committed subset")
	}
}
