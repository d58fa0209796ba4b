package data

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// requireDebianData skips the test when a Debian data package is missing.
func requireDebianData(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s is missing (Debian/Ubuntu: apt-get install %s)", path, pkg)
	}
}

func TestFashionTexts(t *testing.T) {
	requireDebianData(t, filepath.Join(DefaultWordNetDir, "data.noun"), "wordnet-base")
	texts, offsets, err := fashionTexts(DefaultWordNetDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) != 10 || len(offsets) != 10 {
		t.Fatalf("%d classes of texts, want 10", len(texts))
	}
	seen := map[string]int{}
	for c, ts := range texts {
		for _, tx := range ts {
			if prev, ok := seen[tx]; ok {
				t.Fatalf("text %q is in classes %d and %d", tx, prev, c)
			}
			seen[tx] = c
		}
	}
	for text, class := range map[string]int{
		"raincoat: a water-resistant coat":                                                            4,
		"sandal: a shoe consisting of a sole fastened by straps to the foot":                          5,
		"jean: (usually plural) close-fitting trousers of heavy denim for manual work or casual wear": 1,
	} {
		if got, ok := seen[text]; !ok || got != class {
			t.Errorf("%q: class %d (found %v), want %d", text, got, ok, class)
		}
	}
	// A turtleneck is both a jersey (T-shirt/top) and a sweater (Pullover):
	// ambiguous, so in neither.
	for text := range seen {
		if strings.HasPrefix(text, "turtleneck:") {
			t.Fatalf("ambiguous synset kept: %q", text)
		}
	}
}

func TestGenerateFashion(t *testing.T) {
	requireDebianData(t, filepath.Join(DefaultFashionMNISTDir, "train-images-idx3-ubyte.gz"), "dataset-fashion-mnist")
	requireDebianData(t, filepath.Join(DefaultWordNetDir, "data.noun"), "wordnet-base")
	cfg := DefaultFashionConfig()
	cfg.Train, cfg.Test = 20, 10
	cfg.Image = ImageDegradation{} // images must equal their source
	cfg.Text = TextCorruption{TypoProb: 0.3, ReplaceProb: 0.3}
	dir := filepath.Join(t.TempDir(), "fashion")
	res, err := GenerateFashion(context.Background(), dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Repeat([]int{2}, 10); !slices.Equal(res.Splits["train"], want) {
		t.Fatalf("train rows per class %v, want %v", res.Splits["train"], want)
	}
	texts, offsets, err := fashionTexts(DefaultWordNetDir)
	if err != nil {
		t.Fatal(err)
	}
	src := map[string]mnistSplit{}
	for split, prefix := range map[string]string{"train": "train", "test": "t10k"} {
		if src[split], err = readIDXPair(DefaultFashionMNISTDir, prefix+"-images-idx3-ubyte.gz", prefix+"-labels-idx1-ubyte.gz"); err != nil {
			t.Fatal(err)
		}
	}
	rows := readManifestCSV(t, res.Manifest)
	if len(rows) != 30 {
		t.Fatalf("%d rows, want 30", len(rows))
	}
	kinds := map[string]int{}
	for i, row := range rows {
		label, _ := strconv.Atoi(row["label"])
		si, _ := strconv.Atoi(row["source_index"])
		s := src[row["split"]]
		if s.labels[si] != label {
			t.Fatalf("row %d: label %d, its Fashion-MNIST image %d is a %d", i, label, si, s.labels[si])
		}
		img, err := LoadImage(filepath.Join(dir, row["image"]), ImageConfig{Channels: 1})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range s.image(si) {
			if got := math.Round(float64(img.Data[k]) * 255); got != float64(v) {
				t.Fatalf("row %d: pixel %d is %v/255, source has %v/255", i, k, got, v)
			}
		}
		// The synset column names the text's synset; its class is the label
		// unless the text was replaced.
		off, _ := strconv.Atoi(row["synset"])
		class := -1
		for c, offs := range offsets {
			if j := slices.Index(offs, off); j >= 0 {
				class = c
				if row["text_noise"] != textTypo && texts[c][j] != row["text"] {
					t.Fatalf("row %d: text %q is not synset %s's %q", i, row["text"], row["synset"], texts[c][j])
				}
			}
		}
		kind := row["text_noise"]
		kinds[kind]++
		if (kind == textReplaced) != (class != label) || class < 0 {
			t.Fatalf("row %d: label %d, text of class %d, text_noise %s", i, label, class, kind)
		}
	}
	if kinds[textClean] == 0 || kinds[textTypo] == 0 || kinds[textReplaced] == 0 {
		t.Fatalf("text noise kinds %v: want all three among 30 rows", kinds)
	}
}

func TestGenerateFashionMissingPackages(t *testing.T) {
	cfg := DefaultFashionConfig()
	cfg.Train, cfg.Test = 1, 0
	cfg.WordNetDir = t.TempDir()
	if _, err := GenerateFashion(context.Background(), t.TempDir(), cfg); err == nil || !strings.Contains(err.Error(), "apt-get install wordnet-base") {
		t.Fatalf("missing WordNet: error %v", err)
	}
	requireDebianData(t, filepath.Join(DefaultWordNetDir, "data.noun"), "wordnet-base")
	cfg.WordNetDir, cfg.Dir = "", t.TempDir()
	if _, err := GenerateFashion(context.Background(), t.TempDir(), cfg); err == nil || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") {
		t.Fatalf("missing Fashion-MNIST: error %v", err)
	}
}
