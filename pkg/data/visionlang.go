package data

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Sources of the visionlang images.
const (
	VisionLangMNIST   = "mnist"   // handwritten digits only
	VisionLangFashion = "fashion" // garments only
	VisionLangBoth    = "both"    // half digits, half garments
)

// GarmentNames are the Fashion-MNIST classes as the words the visionlang
// questions, answers and captions use, in label order.
var GarmentNames = []string{"t-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}

// garmentNouns are the garments as countable noun phrases (without the
// article), in label order.
var garmentNouns = []string{"t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}

// VisionLangAnswers are the answer classes of the visionlang VQA task, in a
// fixed order (use them as data.label_classes): yes, no, the ten digit words,
// the ten garment names.
var VisionLangAnswers = slices.Concat([]string{"yes", "no"}, DigitWords, GarmentNames)

// digitSynsets are WordNet 3.0 noun.quantity synsets of the digits 0–9
// (offset and the lemma it must contain), for the gloss column.
var digitSynsets = []struct {
	offset int
	lemma  string
}{
	{13742358, "zero"}, {13742573, "one"}, {13743269, "two"}, {13744044, "three"}, {13744304, "four"},
	{13744521, "five"}, {13744722, "six"}, {13744916, "seven"}, {13745086, "eight"}, {13745270, "nine"},
}

// WordNet lexicographer files of the gloss synsets.
const (
	lexNounArtifact = 6
	lexNounQuantity = 23
)

// VisionLangConfig configures GenerateVisionLang. Start from
// DefaultVisionLangConfig: here zero means zero, not "default".
type VisionLangConfig struct {
	// Train and Test are the rows per split (≥ 0, not both 0). Training rows
	// use the sources' training images, test rows their test images.
	Train int   `json:"train"`
	Test  int   `json:"test"`
	Seed  int64 `json:"seed"`
	// Source is mnist, fashion or both (the first ⌈n/2⌉ rows of a split
	// digits, the rest garments, in a random order). Within a source the
	// classes are balanced.
	Source string `json:"source"`
	// Image degrades the images (the caption's attribute is measured on the
	// clean image).
	Image ImageDegradation `json:"image"`
	// Glosses adds a gloss column with the WordNet 3.0 definition of the
	// object's class (needs WordNet: WordNetDir).
	Glosses bool `json:"glosses"`
	// MNISTDir ("" means DefaultMNISTDir), FashionDir ("" means
	// DefaultFashionMNISTDir) and WordNetDir ("" means DefaultWordNetDir)
	// locate the sources.
	MNISTDir   string `json:"-"`
	FashionDir string `json:"-"`
	WordNetDir string `json:"-"`
	// Workers is the number of rows generated in parallel (0 means 2); the
	// output does not depend on it.
	Workers int `json:"-"`
}

// DefaultVisionLangConfig is a 5000 + 1000 row dataset of digits and
// garments with light pixel noise and WordNet glosses.
func DefaultVisionLangConfig() VisionLangConfig {
	return VisionLangConfig{
		Train: 5000, Test: 1000, Seed: 1,
		Source:  VisionLangBoth,
		Image:   ImageDegradation{NoiseStd: 0.05},
		Glosses: true,
		Workers: 2,
	}
}

// Validate checks every field (not the presence of files).
func (c VisionLangConfig) Validate() error {
	if err := checkSizes("visionlang", c.Train, c.Test, c.Workers); err != nil {
		return err
	}
	switch c.Source {
	case VisionLangMNIST, VisionLangFashion, VisionLangBoth:
	default:
		return fmt.Errorf("visionlang: source %q: want %s, %s or %s", c.Source, VisionLangMNIST, VisionLangFashion, VisionLangBoth)
	}
	if err := c.Image.Validate(28); err != nil {
		return fmt.Errorf("visionlang: %w", err)
	}
	return nil
}

// vlObject is what an image shows: a digit or a garment of class 0–9.
type vlObject struct {
	digit bool
	class int
}

// name is the object's answer word: "seven", "ankle boot".
func (o vlObject) name() string {
	if o.digit {
		return DigitWords[o.class]
	}
	return GarmentNames[o.class]
}

// noun is the object as a noun phrase without article: "seven",
// "pair of trousers".
func (o vlObject) noun() string {
	if o.digit {
		return DigitWords[o.class]
	}
	return garmentNouns[o.class]
}

// withArticle prefixes phrase with "a" or "an" by its first letter.
func withArticle(phrase string) string {
	if phrase != "" && strings.ContainsRune("aeiou", rune(phrase[0])) {
		return "an " + phrase
	}
	return "a " + phrase
}

// vlWearable reports whether a garment class is worn (all but the bag);
// vlFootwear whether it is worn on the feet (sandal, sneaker, ankle boot).
func vlWearable(class int) bool { return class != 8 }
func vlFootwear(class int) bool { return class == 5 || class == 7 || class == 9 }

// otherClass draws a class of 0–9 other than c uniformly.
func otherClass(c int, r *rng) int { return (c + 1 + r.intN(9)) % 10 }

// yesNo is the answer word of a yes/no question.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// vlQuestion draws a question about o and returns (question type,
// question, answer). The answer is a function of o and the question only.
// Types, with their probabilities:
//
//	digits d:   identify  0.4  "what digit is shown?" ...             → the digit word
//	            parity    0.2  "is it an even/odd number?"            → yes/no
//	            compare   0.2  "is the number greater/less than t?"   → yes/no (t uniform in 1..8)
//	            verify    0.1  "is this a w?" (w = d half the time)    → yes/no
//	            category  0.1  "is this a handwritten digit?" / "is this something to wear?" → yes / no
//	garments g: identify  0.4  "what kind of garment is this?" ...    → the garment name
//	            footwear  0.2  "is it worn on the feet?" ...           → yes for sandal, sneaker, ankle boot
//	            verify    0.2  "is this a pair of trousers?" (g half the time) → yes/no
//	            category  0.2  "is this a handwritten digit?" / "is this something to wear?" → no / yes except for the bag
func vlQuestion(o vlObject, r *rng) (qtype, question, answer string) {
	pick := func(xs ...string) string { return xs[r.intN(len(xs))] }
	verify := func() (string, string, string) {
		w := o
		if r.bernoulli(0.5) {
			w.class = otherClass(o.class, r)
		}
		return "verify", "is this " + withArticle(w.noun()) + "?", yesNo(w.class == o.class)
	}
	category := func() (string, string, string) {
		if r.bernoulli(0.5) {
			return "category", "is this a handwritten digit?", yesNo(o.digit)
		}
		return "category", "is this something to wear?", yesNo(!o.digit && vlWearable(o.class))
	}
	if o.digit {
		d := o.class
		switch r.intN(10) {
		case 0, 1, 2, 3:
			return "identify", pick("what digit is shown?", "which number is written here?", "what number is this?"), o.name()
		case 4, 5:
			if r.bernoulli(0.5) {
				return "parity", "is it an even number?", yesNo(d%2 == 0)
			}
			return "parity", "is it an odd number?", yesNo(d%2 == 1)
		case 6, 7:
			t := 1 + r.intN(8)
			if r.bernoulli(0.5) {
				return "compare", "is the number greater than " + DigitWords[t] + "?", yesNo(d > t)
			}
			return "compare", "is the number less than " + DigitWords[t] + "?", yesNo(d < t)
		case 8:
			return verify()
		default:
			return category()
		}
	}
	switch r.intN(5) {
	case 0, 1:
		return "identify", pick("what kind of garment is this?", "what is this item?", "what is shown in the picture?"), o.name()
	case 2:
		return "footwear", pick("is it worn on the feet?", "is this footwear?"), yesNo(vlFootwear(o.class))
	case 3:
		return verify()
	default:
		return category()
	}
}

// vlCaption describes o with the attribute adjective adj ("" for none) by
// one of three templates drawn from r, e.g. "a bold handwritten seven", "the
// digit seven written in bold strokes", "a photo of a dark sandal", "an
// ankle boot on a black background".
func vlCaption(o vlObject, adj string, r *rng) string {
	spaced := func(a, b string) string { return strings.TrimSpace(a + " " + b) }
	if o.digit {
		w := o.name()
		switch r.intN(3) {
		case 0:
			return withArticle(spaced(adj, "handwritten "+w))
		case 1:
			how := "by hand"
			if adj != "" {
				how = "in " + adj + " strokes"
			}
			return "the digit " + w + " written " + how
		default:
			return withArticle(spaced(adj, w)) + " written by hand"
		}
	}
	p := withArticle(spaced(adj, o.noun()))
	switch r.intN(3) {
	case 0:
		return p
	case 1:
		return "a photo of " + p
	default:
		return p + " on a black background"
	}
}

// vlStatistic is the caption attribute's measure of a clean 28×28 image:
// for digits the mean ink (stroke weight), for garments the mean brightness
// of the item's pixels (non-zero ones; its tone).
func vlStatistic(pix []byte, digit bool) float64 {
	var sum, n float64
	for _, v := range pix {
		if digit || v > 0 {
			sum += float64(v)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / n
}

// vlTertiles returns, per class, the 1/3 and 2/3 quantiles of vlStatistic
// over every image of that class in src: an image below the first is "thin"
// (digits) or "dark" (garments), one above the second "bold" or "light".
func vlTertiles(src mnistSplit, digit bool) [][2]float64 {
	byClass := make([][]float64, 10)
	for i, c := range src.labels {
		byClass[c] = append(byClass[c], vlStatistic(src.image(i), digit))
	}
	out := make([][2]float64, 10)
	for c, xs := range byClass {
		if len(xs) == 0 {
			continue
		}
		slices.Sort(xs)
		out[c] = [2]float64{xs[len(xs)/3], xs[2*len(xs)/3]}
	}
	return out
}

// vlAdjective maps a statistic to the caption attribute by the class's
// tertiles.
func vlAdjective(stat float64, t [2]float64, digit bool) string {
	lo, hi := "dark", "light"
	if digit {
		lo, hi = "thin", "bold"
	}
	switch {
	case stat < t[0]:
		return lo
	case stat > t[1]:
		return hi
	}
	return ""
}

// vlGlosses returns the WordNet definitions ("lemma: gloss") of the ten
// digits and of the ten garment classes (each class's first synset).
func vlGlosses(wordnetDir string) (digits, garments []string, err error) {
	path := filepath.Join(wordnetDir, "data.noun")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("WordNet not found (%s): install it (Debian/Ubuntu: apt-get install wordnet-base) or give its directory", path)
	} else if err != nil {
		return nil, nil, err
	}
	wn := &wordnetNouns{path: path, data: b}
	gloss := func(offset int, lemma string, lex int) (string, error) {
		s, err := wn.synset(offset)
		if err != nil {
			return "", err
		}
		if !s.has(lemma) || s.lexFile != lex {
			return "", fmt.Errorf("%s: synset %08d is %v, not %q (is this WordNet 3.0?)", path, offset, s.words, lemma)
		}
		return s.describe(), nil
	}
	for _, s := range digitSynsets {
		g, err := gloss(s.offset, s.lemma, lexNounQuantity)
		if err != nil {
			return nil, nil, err
		}
		digits = append(digits, g)
	}
	for _, roots := range fashionSynsets {
		g, err := gloss(roots[0].offset, roots[0].lemma, lexNounArtifact)
		if err != nil {
			return nil, nil, err
		}
		garments = append(garments, g)
	}
	return digits, garments, nil
}

// vlSource is one image source of a split with its caption tertiles.
type vlSource struct {
	digit    bool
	split    mnistSplit
	tertiles [][2]float64
}

// vlItem is one row's image: source and index.
type vlItem struct {
	source *vlSource
	index  int
}

// visionlangColumns are the manifest columns (gloss only with
// VisionLangConfig.Glosses).
var visionlangColumns = []string{"split", "image", "question", "answer", "caption", "object", "kind",
	"question_type", "attribute", "source_index"}

// GenerateVisionLang writes a vision–language dataset to dir (which must not
// exist or be empty): real MNIST digits and/or Fashion-MNIST garments, each
// with a templated question and its answer (visual question answering over
// the classes VisionLangAnswers) and a caption grounded in the image.
//
// Layout: manifest.csv with columns split, image (images/<split>_<row>.png,
// 28×28 8-bit grey), question, answer, caption, object (the class word),
// kind (digit or garment), question_type (see vlQuestion), attribute (the
// caption's adjective: thin/bold for digits by stroke weight, dark/light for
// garments by tone, each relative to the class's tertiles in the source
// split; empty in the middle third), source_index, and with Glosses a gloss
// column (WordNet definition of the class); metadata.json; README.md.
//
// Use answer as a category label with the question as text input (VQA),
// or caption as a tokens label (captioning). The result is a pure function
// of cfg. It needs MNIST (see DefaultMNISTDir) for digits, the Debian
// package dataset-fashion-mnist for garments and wordnet-base for glosses.
func GenerateVisionLang(ctx context.Context, dir string, cfg VisionLangConfig) (*GeneratedDataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var digitGloss, garmentGloss []string
	if cfg.Glosses {
		var err error
		if digitGloss, garmentGloss, err = vlGlosses(orDefault(cfg.WordNetDir, DefaultWordNetDir)); err != nil {
			return nil, fmt.Errorf("visionlang: %w", err)
		}
	}
	// Resolve the source directories before reading anything.
	type source struct {
		digit     bool
		dir, what string
	}
	var srcs []source
	if cfg.Source != VisionLangFashion {
		dir, err := mnistSource(cfg.MNISTDir)
		if err != nil {
			return nil, fmt.Errorf("visionlang: %w", err)
		}
		srcs = append(srcs, source{true, dir, "MNIST"})
	}
	if cfg.Source != VisionLangMNIST {
		dir, err := fashionSource(cfg.FashionDir)
		if err != nil {
			return nil, fmt.Errorf("visionlang: %w", err)
		}
		srcs = append(srcs, source{false, dir, "Fashion-MNIST"})
	}
	// Per split: the sources in order digits, garments.
	sources := map[string][]*vlSource{}
	for _, src := range srcs {
		splits, err := idxSplits(src.dir, src.what, cfg.Train, cfg.Test)
		if err != nil {
			return nil, fmt.Errorf("visionlang: %w", err)
		}
		for _, sp := range splits {
			sources[sp.name] = append(sources[sp.name], &vlSource{digit: src.digit, split: sp.source, tertiles: vlTertiles(sp.source, src.digit)})
		}
	}

	header := slices.Clone(visionlangColumns)
	if cfg.Glosses {
		header = append(header, "gloss")
	}
	out := &GeneratedDataset{Classes: VisionLangAnswers, Splits: map[string][]int{}}
	err := buildDatasetDir(dir, func(tmp string) error {
		if err := os.Mkdir(filepath.Join(tmp, "images"), 0o755); err != nil {
			return err
		}
		table := &manifestTable{header: header}
		for _, split := range []struct {
			name string
			rows int
		}{{"train", cfg.Train}, {"test", cfg.Test}} {
			if split.rows == 0 {
				continue
			}
			items, err := vlItems(sources[split.name], split.name, split.rows, cfg.Seed)
			if err != nil {
				return fmt.Errorf("visionlang %s split: %w", split.name, err)
			}
			rows := make([][]string, split.rows)
			err = forEachRow(ctx, split.rows, orDefault(cfg.Workers, 2), func(i int) error {
				it := items[i]
				r := rowRNG(cfg.Seed, split.name, i)
				clean := it.source.split.image(it.index)
				o := vlObject{digit: it.source.digit, class: it.source.split.labels[it.index]}
				name := filepath.ToSlash(filepath.Join("images", rowName(split.name, i, split.rows)+".png"))
				if err := writeGrayPNG(filepath.Join(tmp, name), cfg.Image.apply(clean, 28, 28, r), 28, 28); err != nil {
					return fmt.Errorf("visionlang %s row %d: %w", split.name, i, err)
				}
				qtype, question, answer := vlQuestion(o, r)
				adj := vlAdjective(vlStatistic(clean, o.digit), it.source.tertiles[o.class], o.digit)
				kind := "garment"
				if o.digit {
					kind = "digit"
				}
				row := []string{split.name, name, question, answer, vlCaption(o, adj, r), o.name(), kind, qtype, adj, strconv.Itoa(it.index)}
				if cfg.Glosses {
					g := garmentGloss
					if o.digit {
						g = digitGloss
					}
					row = append(row, g[o.class])
				}
				rows[i] = row
				return nil
			})
			if err != nil {
				return err
			}
			table.rows = append(table.rows, rows...)
			counts := make([]int, len(VisionLangAnswers))
			for _, row := range rows {
				counts[slices.Index(VisionLangAnswers, row[3])]++
			}
			out.Splits[split.name] = counts
		}
		if err := table.write(filepath.Join(tmp, "manifest.csv")); err != nil {
			return err
		}
		sourceDocs := map[string]string{}
		if cfg.Source != VisionLangFashion {
			sourceDocs["digits"] = fmt.Sprintf("MNIST (Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0) from Go module %s@%s", gomnistModule, gomnistVersion)
		}
		if cfg.Source != VisionLangMNIST {
			sourceDocs["garments"] = "Fashion-MNIST (Zalando Research; MIT licence), Debian package dataset-fashion-mnist"
		}
		if cfg.Glosses {
			sourceDocs["gloss"] = "WordNet 3.0 noun glosses (Princeton University; WordNet licence), Debian package wordnet-base"
		}
		meta := datasetMetadata{
			Dataset: "visionlang", FormatVersion: 1, Config: cfg, Summary: out, Sources: sourceDocs,
			Columns: map[string]string{
				"split":         "train or test",
				"image":         "28x28 8-bit grey PNG (white on black) of the object, degraded per config.image",
				"question":      "a templated English question about the image (lower case, ends with ?)",
				"answer":        "the answer, one of summary.classes: yes, no, a digit word or a garment name",
				"caption":       "a templated description of the image, naming the object and (when not empty) the attribute",
				"object":        "the object's class word (digit word or garment name)",
				"kind":          "digit or garment",
				"question_type": "identify, parity, compare, verify, category (digits); identify, footwear, verify, category (garments)",
				"attribute":     "thin or bold (digit stroke weight), dark or light (garment tone), relative to the class's tertiles; empty in the middle third",
				"source_index":  "index of the image in its MNIST or Fashion-MNIST split",
				"gloss":         "WordNet 3.0 definition of the object's class (a function of the class: a description target, not a VQA input)",
			},
		}
		if !cfg.Glosses {
			delete(meta.Columns, "gloss")
		}
		if err := writeJSON(filepath.Join(tmp, "metadata.json"), meta); err != nil {
			return err
		}
		readme := fmt.Sprintf("# visionlang: questions and captions about real images\n\n"+
			"Generated by lsfuse (`data.GenerateVisionLang`, seed %d, source %s). Each row pairs a 28x28 grey image "+
			"(an MNIST digit or a Fashion-MNIST garment) with a templated question and its answer (VQA: %d answer classes) "+
			"and a caption naming the object and an attribute measured on the image (stroke weight or tone). "+
			"metadata.json holds the config and column descriptions.\n", cfg.Seed, cfg.Source, len(VisionLangAnswers))
		return os.WriteFile(filepath.Join(tmp, "README.md"), []byte(readme), 0o644)
	})
	if err != nil {
		return nil, err
	}
	out.Dir, out.Manifest = dir, filepath.Join(dir, "manifest.csv")
	return out, nil
}

// vlPickStream tags the random streams that pick a split's images, apart
// from the rows' streams (rowRNG).
const vlPickStream = 1 << 62

// vlItems picks the images of a split of n rows: with two sources the
// first ⌈n/2⌉ from the digits, the rest from the garments, each
// class-balanced, then all in a random order.
func vlItems(srcs []*vlSource, split string, n int, seed int64) ([]vlItem, error) {
	var items []vlItem
	for k, s := range srcs {
		m := n
		if len(srcs) == 2 {
			m = (n + 1 - k) / 2
		}
		picks, err := balancedPicks(s.split.labels, 10, m, newRNG(seed, streamGenerate, splitTag(split), vlPickStream, uint64(k)))
		if err != nil {
			return nil, err
		}
		for _, p := range picks {
			items = append(items, vlItem{source: s, index: p})
		}
	}
	order := newRNG(seed, streamGenerate, splitTag(split), vlPickStream, 2).perm(len(items))
	out := make([]vlItem, len(items))
	for i, j := range order {
		out[i] = items[j]
	}
	return out, nil
}
