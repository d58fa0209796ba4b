package data

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FashionClasses are the Fashion-MNIST class names, in label order.
var FashionClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// Default install locations of the Debian packages the fashion dataset reads.
const (
	DefaultFashionMNISTDir = "/usr/share/datasets/fashion-mnist" // dataset-fashion-mnist
	DefaultWordNetDir      = "/usr/share/wordnet"                // wordnet-base
)

// fashionSynsets are, per class, the WordNet 3.0 noun synsets (offset and a
// lemma it must contain, to catch another WordNet version) whose glosses,
// and those of their direct hyponyms, describe the class.
var fashionSynsets = [][]struct {
	offset int
	lemma  string
}{
	{{3595614, "T-shirt"}, {4453666, "top"}},
	{{4489008, "trouser"}},
	{{4021028, "pullover"}, {4370048, "sweater"}},
	{{3236735, "dress"}},
	{{3057021, "coat"}},
	{{4133789, "sandal"}},
	{{4197391, "shirt"}},
	{{3472535, "sneaker"}},
	{{2774152, "handbag"}},
	{{2872752, "boot"}},
}

// FashionConfig configures GenerateFashion. Start from DefaultFashionConfig:
// here zero means zero, not "default".
type FashionConfig struct {
	// Train and Test are the number of rows per split (≥ 0, not both 0),
	// drawn from Fashion-MNIST's training and test images with balanced
	// labels.
	Train int   `json:"train"`
	Test  int   `json:"test"`
	Seed  int64 `json:"seed"`
	// Image degrades the images.
	Image ImageDegradation `json:"image"`
	// Text corrupts the WordNet descriptions.
	Text TextCorruption `json:"text"`
	// Dir holds the Fashion-MNIST idx .gz files ("" means
	// DefaultFashionMNISTDir); WordNetDir holds data.noun ("" means
	// DefaultWordNetDir).
	Dir        string `json:"-"`
	WordNetDir string `json:"-"`
	// Workers is the number of rows generated in parallel (0 means 2).
	Workers int `json:"-"`
}

// DefaultFashionConfig is a 5000 + 1000 row dataset with lightly degraded
// images (Fashion-MNIST is already harder than MNIST) and noisy texts.
func DefaultFashionConfig() FashionConfig {
	return FashionConfig{
		Train:   5000,
		Test:    1000,
		Seed:    1,
		Image:   ImageDegradation{BlurMaxSigma: 0.8, OcclusionProb: 0.3, OcclusionMin: 6, OcclusionMax: 12, NoiseStd: 0.1},
		Text:    TextCorruption{TypoProb: 0.15, ReplaceProb: 0.15},
		Workers: 2,
	}
}

// Validate checks every field (not the presence of files).
func (c FashionConfig) Validate() error {
	if err := checkSizes("fashion", c.Train, c.Test, c.Workers); err != nil {
		return err
	}
	if err := c.Image.Validate(28); err != nil {
		return fmt.Errorf("fashion: %w", err)
	}
	if err := c.Text.Validate(); err != nil {
		return fmt.Errorf("fashion: %w", err)
	}
	return nil
}

// fashionTexts returns, per class, the descriptions of the class synsets and
// their direct hyponyms, and the synset offset of each. A synset reachable
// from two classes (a turtleneck is both a jersey and a sweater) is left out
// of both, so no description is shared between classes.
func fashionTexts(wordnetDir string) (texts [][]string, offsets [][]int, err error) {
	path := filepath.Join(wordnetDir, "data.noun")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("WordNet not found (%s): install it (Debian/Ubuntu: apt-get install wordnet-base) or give its directory", path)
	} else if err != nil {
		return nil, nil, err
	}
	wn := &wordnetNouns{path: path, data: b}
	owner := map[int]int{} // synset offset → class, or -1 when shared
	var order [][]synset
	for class, roots := range fashionSynsets {
		var list []synset
		claim := func(s synset) {
			if c, ok := owner[s.offset]; ok && c != class {
				owner[s.offset] = -1
			} else if !ok {
				owner[s.offset] = class
				list = append(list, s)
			}
		}
		for _, root := range roots {
			s, err := wn.synset(root.offset)
			if err != nil {
				return nil, nil, err
			}
			if !s.has(root.lemma) || s.lexFile != 6 {
				return nil, nil, fmt.Errorf("%s: synset %08d is %v, not the garment %q (is this WordNet 3.0?)", path, root.offset, s.words, root.lemma)
			}
			claim(s)
			for _, h := range s.hyponyms {
				hs, err := wn.synset(h)
				if err != nil {
					return nil, nil, err
				}
				claim(hs)
			}
		}
		order = append(order, list)
	}
	for class, list := range order {
		var ts []string
		var offs []int
		for _, s := range list {
			if owner[s.offset] == class {
				ts, offs = append(ts, s.describe()), append(offs, s.offset)
			}
		}
		if len(ts) == 0 {
			return nil, nil, fmt.Errorf("%s: no description left for class %s", path, FashionClasses[class])
		}
		texts, offsets = append(texts, ts), append(offsets, offs)
	}
	return texts, offsets, nil
}

// Fashion manifest columns: label is the class index (names in
// FashionClasses), text a WordNet description of a garment of that class.
var fashionColumns = []string{"split", "label", "image", "text", "text_noise", "synset", "source_index"}

// GenerateFashion writes Fashion-MNIST images with WordNet descriptions as a
// text column to dir (which must not exist or be empty): manifest.csv
// (split, label, image, text, text_noise, synset, source_index),
// images/<split>_<row>.png (28×28 grey), metadata.json and README.md. Each
// row's text is the gloss of the class's garment or of one of its kinds
// ("raincoat: a water-resistant coat"), drawn at random and corrupted per
// cfg.Text. The result is a pure function of cfg.
//
// It reads the Debian packages dataset-fashion-mnist and wordnet-base; a
// missing one is an error naming the package.
func GenerateFashion(ctx context.Context, dir string, cfg FashionConfig) (*GeneratedDataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	wnDir := orDefault(cfg.WordNetDir, DefaultWordNetDir)
	texts, offsets, err := fashionTexts(wnDir)
	if err != nil {
		return nil, fmt.Errorf("fashion: %w", err)
	}
	srcDir := orDefault(cfg.Dir, DefaultFashionMNISTDir)
	if _, err := os.Stat(filepath.Join(srcDir, "train-images-idx3-ubyte.gz")); err != nil {
		return nil, fmt.Errorf("fashion: Fashion-MNIST not found in %s: install it (Debian/Ubuntu: apt-get install dataset-fashion-mnist) or give its directory", srcDir)
	}
	var splits []genSplit
	for _, s := range []struct {
		name, images, labels string
		rows                 int
	}{
		{"train", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", cfg.Train},
		{"test", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", cfg.Test},
	} {
		if s.rows == 0 {
			continue
		}
		src, err := readIDXPair(srcDir, s.images, s.labels)
		if err != nil {
			return nil, fmt.Errorf("fashion: %w", err)
		}
		splits = append(splits, genSplit{name: s.name, rows: s.rows, source: src})
	}

	out := &GeneratedDataset{Classes: FashionClasses, Splits: map[string][]int{}}
	err = buildDatasetDir(dir, func(tmp string) error {
		if err := os.Mkdir(filepath.Join(tmp, "images"), 0o755); err != nil {
			return err
		}
		table := &manifestTable{header: fashionColumns}
		for _, sp := range splits {
			picks, err := balancedPicks(sp.source.labels, len(FashionClasses), sp.rows, newRNG(cfg.Seed, streamGenerate, splitTag(sp.name)))
			if err != nil {
				return fmt.Errorf("fashion %s split: %w", sp.name, err)
			}
			rows := make([][]string, sp.rows)
			err = forEachRow(ctx, sp.rows, orDefault(cfg.Workers, 2), func(i int) error {
				r := rowRNG(cfg.Seed, sp.name, i)
				src := picks[i]
				label := sp.source.labels[src]
				side := sp.source.side
				name := filepath.ToSlash(filepath.Join("images", rowName(sp.name, i, sp.rows)+".png"))
				if err := writeGrayPNG(filepath.Join(tmp, name), cfg.Image.apply(sp.source.image(src), side, side, r), side, side); err != nil {
					return fmt.Errorf("fashion %s row %d: %w", sp.name, i, err)
				}
				k := r.intN(len(texts[label]))
				var synsetOffset int
				pick := func(c int, r *rng) string {
					j := r.intN(len(texts[c]))
					synsetOffset = offsets[c][j]
					return texts[c][j]
				}
				synsetOffset = offsets[label][k]
				text, noise := cfg.Text.apply(texts[label][k], label, len(FashionClasses), pick, r)
				if err := checkText(text); err != nil {
					return fmt.Errorf("fashion %s row %d: %w", sp.name, i, err)
				}
				rows[i] = []string{sp.name, strconv.Itoa(label), name, text, noise, fmt.Sprintf("%08d", synsetOffset), strconv.Itoa(src)}
				return nil
			})
			if err != nil {
				return err
			}
			table.rows = append(table.rows, rows...)
			counts := make([]int, len(FashionClasses))
			for _, p := range picks {
				counts[sp.source.labels[p]]++
			}
			out.Splits[sp.name] = counts
		}
		if err := table.write(filepath.Join(tmp, "manifest.csv")); err != nil {
			return err
		}
		meta := datasetMetadata{
			Dataset: "fashion", FormatVersion: 1, Config: cfg, Summary: out,
			Sources: map[string]string{
				"images": "Fashion-MNIST (Zalando Research; MIT licence), Debian package dataset-fashion-mnist",
				"text":   "WordNet 3.0 noun glosses (Princeton University; WordNet licence), Debian package wordnet-base",
			},
			Columns: map[string]string{
				"split":        "train or test",
				"label":        "class index 0-9 (names in summary.classes)",
				"image":        "28x28 8-bit grey PNG of this class, degraded per config.image",
				"text":         "\"lemma: definition\" of a WordNet synset for this class's garment or one of its kinds, corrupted per config.text",
				"text_noise":   "none, typo, or replaced (the text describes another class)",
				"synset":       "WordNet 3.0 noun synset offset of the text",
				"source_index": "index of the image in its Fashion-MNIST split",
			},
		}
		if err := writeJSON(filepath.Join(tmp, "metadata.json"), meta); err != nil {
			return err
		}
		readme := fmt.Sprintf("# fashion: Fashion-MNIST with WordNet descriptions\n\nGenerated by lsfuse (`data.GenerateFashion`, seed %d). "+
			"Each row pairs a Fashion-MNIST image (28x28 grey PNG; classes %s) with a WordNet 3.0 gloss of a garment of its class. "+
			"%v of texts describe another class, %v of the rest have typos. metadata.json holds the config and column descriptions.\n",
			cfg.Seed, strings.Join(FashionClasses, ", "), cfg.Text.ReplaceProb, cfg.Text.TypoProb)
		return os.WriteFile(filepath.Join(tmp, "README.md"), []byte(readme), 0o644)
	})
	if err != nil {
		return nil, err
	}
	out.Dir, out.Manifest = dir, filepath.Join(dir, "manifest.csv")
	return out, nil
}
