package data

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// committedVisionLang is the subset under testdata/ (mk/apps.mk).
const committedVisionLang = "../../testdata/visionlang"

// vlExpectedAnswer answers a visionlang question from its text and the
// object (class word, digit or garment), by the rules documented on
// vlQuestion, written out independently here. ok is false for a question
// the rules do not know.
func vlExpectedAnswer(question, object string, digit bool) (answer string, ok bool) {
	d := slices.Index(DigitWords, object)
	yn := func(b bool) (string, bool) { return yesNo(b), true }
	switch question {
	case "what digit is shown?", "which number is written here?", "what number is this?":
		return object, digit
	case "what kind of garment is this?", "what is this item?", "what is shown in the picture?":
		return object, !digit
	case "is it an even number?":
		return yn(d%2 == 0)
	case "is it an odd number?":
		return yn(d%2 == 1)
	case "is this a handwritten digit?":
		return yn(digit)
	case "is this something to wear?":
		return yn(!digit && object != "bag")
	case "is it worn on the feet?", "is this footwear?":
		return yn(object == "sandal" || object == "sneaker" || object == "ankle boot")
	}
	if rest, found := strings.CutPrefix(question, "is the number greater than "); found {
		return yn(d > slices.Index(DigitWords, strings.TrimSuffix(rest, "?")))
	}
	if rest, found := strings.CutPrefix(question, "is the number less than "); found {
		return yn(d < slices.Index(DigitWords, strings.TrimSuffix(rest, "?")))
	}
	if rest, found := strings.CutPrefix(question, "is this "); found {
		noun := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(rest, "an "), "a "), "?")
		if noun == "pair of trousers" {
			noun = "trousers"
		}
		return yn(noun == object)
	}
	return "", false
}

func TestVisionLangQuestionsFollowTheRules(t *testing.T) {
	r := newRNG(5, 99)
	types := map[string]int{}
	answers := map[string]int{}
	for _, digit := range []bool{true, false} {
		for class := range 10 {
			o := vlObject{digit: digit, class: class}
			for range 60 {
				qtype, q, a := vlQuestion(o, r)
				types[qtype]++
				answers[a]++
				want, ok := vlExpectedAnswer(q, o.name(), digit)
				if !ok || a != want {
					t.Fatalf("%s: %q answered %q, the rules say %q (known %v)", o.name(), q, a, want, ok)
				}
				if !slices.Contains(VisionLangAnswers, a) {
					t.Fatalf("answer %q is not a class", a)
				}
			}
		}
	}
	for _, qt := range []string{"identify", "parity", "compare", "verify", "category", "footwear"} {
		if types[qt] == 0 {
			t.Errorf("question type %s never drawn (%v)", qt, types)
		}
	}
	// Every class is an answer, and yes/no are not the bulk.
	for _, a := range VisionLangAnswers {
		if answers[a] == 0 {
			t.Errorf("answer %q never given", a)
		}
	}
	if f := float64(answers["yes"]+answers["no"]) / 1200; f < 0.5 || f > 0.7 {
		t.Errorf("yes/no answers are %.2f of all, want about 0.6", f)
	}
}

func TestVisionLangCaptions(t *testing.T) {
	r := newRNG(1, 2)
	seen := map[string]bool{}
	for range 40 {
		seen[vlCaption(vlObject{digit: true, class: 8}, "bold", r)] = true
		seen[vlCaption(vlObject{class: 9}, "", r)] = true
		seen[vlCaption(vlObject{class: 1}, "dark", r)] = true
	}
	want := []string{
		"a bold handwritten eight", "the digit eight written in bold strokes", "a bold eight written by hand",
		"an ankle boot", "a photo of an ankle boot", "an ankle boot on a black background",
		"a dark pair of trousers", "a photo of a dark pair of trousers", "a dark pair of trousers on a black background",
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("caption %q never made; made %v", w, seen)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d distinct captions, want %d: %v", len(seen), len(want), seen)
	}
	if got := vlCaption(vlObject{digit: true, class: 8}, "", newRNG(1)); !strings.Contains(got, "eight") || strings.Contains(got, "a eight") {
		t.Errorf("caption %q", got)
	}
}

func TestVisionLangAttribute(t *testing.T) {
	blank, full := make([]byte, 784), make([]byte, 784)
	for i := range full {
		full[i] = 255
	}
	tert := [2]float64{20, 40}
	if vlAdjective(vlStatistic(blank, true), tert, true) != "thin" || vlAdjective(vlStatistic(full, true), tert, true) != "bold" {
		t.Error("stroke weight extremes")
	}
	if vlAdjective(30, tert, false) != "" || vlAdjective(41, tert, false) != "light" || vlAdjective(19, tert, false) != "dark" {
		t.Error("tone thresholds")
	}
	// Garment tone ignores the black background.
	half := slices.Clone(blank)
	for i := range 100 {
		half[i] = 200
	}
	if s := vlStatistic(half, false); s != 200 {
		t.Errorf("garment tone %v, want 200 (mean of the item's pixels)", s)
	}
}

// checkVisionLangRows checks the generated rows against their sources.
func checkVisionLangRows(t *testing.T, dir string, rows []map[string]string, srcs map[string]map[string]mnistSplit, glosses bool) {
	t.Helper()
	tertiles := map[string][][2]float64{}
	for i, row := range rows {
		digit := row["kind"] == "digit"
		src := srcs[row["kind"]][row["split"]]
		idx, _ := strconv.Atoi(row["source_index"])
		class := src.labels[idx]
		o := vlObject{digit: digit, class: class}
		if row["object"] != o.name() {
			t.Fatalf("row %d: object %q, source image is a %s", i, row["object"], o.name())
		}
		img, err := LoadImage(filepath.Join(dir, row["image"]), ImageConfig{Channels: 1})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range src.image(idx) {
			if math.Round(float64(img.Data[k])*255) != float64(v) {
				t.Fatalf("row %d: pixel %d differs from the source", i, k)
			}
		}
		if want, ok := vlExpectedAnswer(row["question"], row["object"], digit); !ok || want != row["answer"] {
			t.Fatalf("row %d: %q answered %q, want %q", i, row["question"], row["answer"], want)
		}
		key := row["kind"] + row["split"]
		if tertiles[key] == nil {
			tertiles[key] = vlTertiles(src, digit)
		}
		adj := vlAdjective(vlStatistic(src.image(idx), digit), tertiles[key][class], digit)
		if row["attribute"] != adj || !strings.Contains(row["caption"], o.noun()) || (adj != "" && !strings.Contains(row["caption"], adj)) {
			t.Fatalf("row %d: caption %q attribute %q, want the object %q and attribute %q", i, row["caption"], row["attribute"], o.noun(), adj)
		}
		if glosses {
			lemma, _, _ := strings.Cut(row["gloss"], ":")
			if digit && lemma != o.name() || len(row["gloss"]) < 20 {
				t.Fatalf("row %d: gloss %q for %s", i, row["gloss"], o.name())
			}
		} else if _, has := row["gloss"]; has {
			t.Fatalf("row %d has a gloss column without glosses", i)
		}
	}
}

// TestGenerateVisionLangDigits needs only MNIST (in the Go module cache).
func TestGenerateVisionLangDigits(t *testing.T) {
	cfg := DefaultVisionLangConfig()
	// Test rows only: MNIST's test split is the cheaper one to read.
	cfg.Train, cfg.Test, cfg.Source, cfg.Glosses, cfg.Image = 0, 20, VisionLangMNIST, false, ImageDegradation{}
	dir := filepath.Join(t.TempDir(), "vl")
	res, err := GenerateVisionLang(context.Background(), dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows := readManifestCSV(t, res.Manifest)
	if len(rows) != 20 || res.Splits["train"] != nil {
		t.Fatalf("%d rows, splits %v", len(rows), res.Splits)
	}
	digits := map[string]int{}
	for _, row := range rows {
		digits[row["object"]]++
		if row["kind"] != "digit" || row["split"] != "test" {
			t.Fatalf("row %v", row)
		}
	}
	for _, w := range DigitWords {
		if digits[w] != 2 {
			t.Fatalf("digits per class %v, want 2 each", digits)
		}
	}
	mnistDir, err := DefaultMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	checkVisionLangRows(t, dir, rows, map[string]map[string]mnistSplit{"digit": testSplitOf(t, mnistDir)}, false)
}

// TestGenerateVisionLang makes digits and garments with glosses (Debian
// dataset-fashion-mnist and wordnet-base) and checks every row against its
// source, and that the worker count does not change the files.
func TestGenerateVisionLang(t *testing.T) {
	requireDebianData(t, filepath.Join(DefaultFashionMNISTDir, "train-images-idx3-ubyte.gz"), "dataset-fashion-mnist")
	requireDebianData(t, filepath.Join(DefaultWordNetDir, "data.noun"), "wordnet-base")
	cfg := DefaultVisionLangConfig()
	cfg.Train, cfg.Test, cfg.Image = 0, 21, ImageDegradation{}
	dir := filepath.Join(t.TempDir(), "vl")
	res, err := GenerateVisionLang(context.Background(), dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows := readManifestCSV(t, res.Manifest)
	kinds := map[string]int{}
	for _, row := range rows {
		kinds[row["split"]+" "+row["kind"]]++
	}
	if kinds["test digit"] != 11 || kinds["test garment"] != 10 {
		t.Fatalf("rows per split and kind %v, want 11 digits + 10 garments", kinds)
	}
	mnistDir, err := DefaultMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	checkVisionLangRows(t, dir, rows, map[string]map[string]mnistSplit{
		"digit": testSplitOf(t, mnistDir), "garment": testSplitOf(t, DefaultFashionMNISTDir)}, true)
	for _, row := range rows {
		if row["object"] == "sandal" && row["gloss"] != "sandal: a shoe consisting of a sole fastened by straps to the foot" {
			t.Errorf("sandal gloss %q", row["gloss"])
		}
	}

	cfg.Workers = 1
	dir1 := filepath.Join(t.TempDir(), "vl1")
	if _, err := GenerateVisionLang(context.Background(), dir1, cfg); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"manifest.csv", "metadata.json", rows[0]["image"], rows[len(rows)-1]["image"]} {
		a, _ := os.ReadFile(filepath.Join(dir, f))
		b, _ := os.ReadFile(filepath.Join(dir1, f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Fatalf("%s differs between 2 workers and 1", f)
		}
	}
}

func TestVisionLangConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		edit func(*VisionLangConfig)
		want string
	}{
		{func(c *VisionLangConfig) { c.Train, c.Test = 0, 0 }, "not both 0"},
		{func(c *VisionLangConfig) { c.Source = "cifar" }, `source "cifar"`},
		{func(c *VisionLangConfig) { c.Image.NoiseStd = 2 }, "noise_std 2"},
		{func(c *VisionLangConfig) { c.Source, c.WordNetDir = VisionLangMNIST, t.TempDir() }, "apt-get install wordnet-base"},
		{func(c *VisionLangConfig) { c.Glosses, c.FashionDir = false, t.TempDir() }, "apt-get install dataset-fashion-mnist"},
	} {
		cfg := DefaultVisionLangConfig()
		tc.edit(&cfg)
		if _, err := GenerateVisionLang(context.Background(), filepath.Join(t.TempDir(), "x"), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

// TestCommittedVisionLang decodes the committed subset as
// configs/vision_text.yaml reads it and checks its answers.
func TestCommittedVisionLang(t *testing.T) {
	var meta struct {
		Config  VisionLangConfig `json:"config"`
		Summary struct {
			Classes []string         `json:"classes"`
			Rows    map[string][]int `json:"rows_per_class"`
		} `json:"summary"`
	}
	b, err := os.ReadFile(filepath.Join(committedVisionLang, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(meta.Summary.Classes, VisionLangAnswers) || meta.Config.Source != VisionLangBoth || !meta.Config.Glosses {
		t.Fatalf("metadata %+v", meta)
	}
	ds, rows := openCommitted(t, committedVisionLang, ManifestConfig{
		Columns: map[string]ColumnSpec{
			"image":    {Kind: KindImage, Modality: "vision", Image: ImageConfig{Channels: 1, Height: 28, Width: 28}},
			"question": {Kind: KindText, Modality: "text", Text: TextConfig{Tokenizer: "word", Length: 10, Vocab: VocabConfig{Lowercase: true}}},
		},
		LabelColumn:  "answer",
		LabelClasses: VisionLangAnswers,
	}, meta.Config.Train+meta.Config.Test)
	for i, row := range rows {
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if VisionLangAnswers[s.Label.Class] != row["answer"] || len(s.Tokens["text"]) != 10 || !slices.Equal(s.Inputs["vision"].Shape, []int{1, 28, 28}) {
			t.Fatalf("row %d: class %d for %q, %d tokens, image %v", i, s.Label.Class, row["answer"], len(s.Tokens["text"]), s.Inputs["vision"].Shape)
		}
		if want, ok := vlExpectedAnswer(row["question"], row["object"], row["kind"] == "digit"); !ok || want != row["answer"] {
			t.Fatalf("row %d: %q answered %q, want %q", i, row["question"], row["answer"], want)
		}
	}
}

// testSplitOf reads the test split of the MNIST-layout IDX files in dir,
// keyed "test" as the manifests name it.
func testSplitOf(t *testing.T, dir string) map[string]mnistSplit {
	t.Helper()
	s, err := readIDXPair(dir, idxSplitFiles[1].images, idxSplitFiles[1].labels)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]mnistSplit{"test": s}
}

// rowIndices is 0, 1, ..., n−1.
func rowIndices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
