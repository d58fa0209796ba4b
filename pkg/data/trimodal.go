package data

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// numberWords are the English words of 0–18, the operands of the trimodal
// text phrases.
var numberWords = append(append([]string(nil), DigitWords...),
	"ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen")

// Forms of the trimodal text column (text_form).
const (
	TriModalWord   = "word"   // "seven"
	TriModalPlus   = "plus"   // "three plus four"
	TriModalMinus  = "minus"  // "nine minus two"
	TriModalTimes  = "times"  // "one times seven"
	TriModalHalf   = "half"   // "half of fourteen"
	TriModalAfter  = "after"  // "the number after six"
	TriModalBefore = "before" // "the number before eight"
)

// digitPhrase draws a phrase whose value is the digit d: with probability
// phraseProb an arithmetic phrase of a form drawn uniformly among those that
// exist for d (plus: a + b = d; minus: a − b = d with b ≥ 1, a ≤ 18;
// times: a·b = d with a, b ≤ 9; half: half of 2d; after: d − 1's successor,
// d ≥ 1; before: d + 1's predecessor), else the digit word. It returns the
// text and its form.
func digitPhrase(d int, phraseProb float64, r *rng) (string, string) {
	if !r.bernoulli(phraseProb) {
		return DigitWords[d], TriModalWord
	}
	forms := []string{TriModalPlus, TriModalMinus, TriModalTimes, TriModalHalf, TriModalBefore}
	if d >= 1 {
		forms = append(forms, TriModalAfter)
	}
	w := func(n int) string { return numberWords[n] }
	switch form := forms[r.intN(len(forms))]; form {
	case TriModalPlus:
		a := r.intN(d + 1)
		return w(a) + " plus " + w(d-a), form
	case TriModalMinus:
		b := 1 + r.intN(9)
		return w(d+b) + " minus " + w(b), form
	case TriModalTimes:
		var pairs [][2]int
		for a := 0; a <= 9; a++ {
			for b := 0; b <= 9; b++ {
				if a*b == d {
					pairs = append(pairs, [2]int{a, b})
				}
			}
		}
		p := pairs[r.intN(len(pairs))]
		return w(p[0]) + " times " + w(p[1]), form
	case TriModalHalf:
		return "half of " + w(2*d), form
	case TriModalAfter:
		return "the number after " + w(d-1), form
	default:
		return "the number before " + w(d+1), form
	}
}

// TriModalMissing are the probabilities that a row lacks each modality (an
// empty manifest cell). A row never lacks all three: when all three are
// drawn missing, one drawn uniformly is kept.
type TriModalMissing struct {
	Image float64 `json:"image"`
	Audio float64 `json:"audio"`
	Text  float64 `json:"text"`
}

// TriModalConfig configures GenerateTriModal. Start from
// DefaultTriModalConfig: here zero means zero, not "default".
type TriModalConfig struct {
	// Train and Test are the rows per split (≥ 0, not both 0), drawn from
	// MNIST's training and test images with balanced digits.
	Train int   `json:"train"`
	Test  int   `json:"test"`
	Seed  int64 `json:"seed"`
	// Image degrades the MNIST digits.
	Image ImageDegradation `json:"image"`
	// Speech synthesises the spoken digit word.
	Speech SpeechConfig `json:"speech"`
	// PhraseProb is the probability, in [0, 1], that the text states the
	// digit as an arithmetic phrase ("three plus four") rather than its word.
	PhraseProb float64 `json:"phrase_prob"`
	// Text corrupts the texts (typos, or a text of another digit).
	Text TextCorruption `json:"text"`
	// Missing drops modalities from rows.
	Missing TriModalMissing `json:"missing"`
	// MNISTDir holds the MNIST idx files; "" means DefaultMNISTDir.
	MNISTDir string `json:"-"`
	// Workers is the number of rows generated in parallel (0 means 2).
	Workers int `json:"-"`
}

// DefaultTriModalConfig is a 5000 + 1000 row dataset: blurred, 40% occluded,
// noisy digits; the digit word spoken by 7 accents × 24 voices at 0–15 dB
// SNR; half of the texts arithmetic phrases, 10% with typos and 10% naming
// another digit; each modality missing from 10% of the rows.
func DefaultTriModalConfig() TriModalConfig {
	return TriModalConfig{
		Train: 5000, Test: 1000, Seed: 1,
		Image:      ImageDegradation{BlurMaxSigma: 1, OcclusionProb: 0.4, OcclusionMin: 8, OcclusionMax: 14, NoiseStd: 0.15},
		Speech:     DefaultAVDigitsConfig().Speech,
		PhraseProb: 0.5,
		Text:       TextCorruption{TypoProb: 0.1, ReplaceProb: 0.1},
		Missing:    TriModalMissing{Image: 0.1, Audio: 0.1, Text: 0.1},
		Workers:    2,
	}
}

// Validate checks every field (not the presence of files or voices).
func (c TriModalConfig) Validate() error {
	m := c.Missing
	if err := checkSizes("trimodal", c.Train, c.Test, c.Workers); err != nil {
		return err
	}
	switch {
	case !(c.PhraseProb >= 0 && c.PhraseProb <= 1):
		return fmt.Errorf("trimodal: phrase_prob %v must be in [0, 1]", c.PhraseProb)
	case !(m.Image >= 0 && m.Image <= 1 && m.Audio >= 0 && m.Audio <= 1 && m.Text >= 0 && m.Text <= 1):
		return fmt.Errorf("trimodal: missing probabilities %+v must be in [0, 1]", m)
	}
	if err := c.Image.Validate(28); err != nil {
		return fmt.Errorf("trimodal: %w", err)
	}
	if err := c.Speech.Validate(); err != nil {
		return fmt.Errorf("trimodal: %w", err)
	}
	if err := c.Text.Validate(); err != nil {
		return fmt.Errorf("trimodal: %w", err)
	}
	return nil
}

// trimodalColumns are the manifest columns.
var trimodalColumns = []string{"split", "label", "image", "audio", "text", "text_form", "text_noise",
	"voice", "speed", "pitch", "snr_db", "source_index"}

// Random streams of a trimodal row: each modality draws from its own, so
// dropping one modality does not change the others.
const (
	trimodalStreamMissing = iota
	trimodalStreamImage
	trimodalStreamAudio
	trimodalStreamText
)

// GenerateTriModal writes a tri-modal digits dataset to dir (which must not
// exist or be empty): a real MNIST digit, the digit word spoken by
// espeak-ng, and a text that names the digit or states it as arithmetic
// ("three plus four", "half of fourteen"; see digitPhrase), paired by label.
// Unlike avdigits, the text must be understood rather than spelt, and rows
// may lack modalities (Missing: the cell is empty; use optional inputs and
// a missing embedding).
//
// Layout: manifest.csv (split, label = digit 0–9, image =
// images/<split>_<row>.png (28×28 grey), audio = audio/<split>_<row>.wav,
// text, text_form (word, plus, minus, times, half, after, before), text_noise
// (none, typo, replaced), voice, speed, pitch, snr_db, source_index),
// metadata.json and README.md. The result is a pure function of cfg (and the
// espeak-ng version). It needs espeak-ng (ErrEspeakMissing) and MNIST (see
// DefaultMNISTDir).
func GenerateTriModal(ctx context.Context, dir string, cfg TriModalConfig) (*GeneratedDataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return generateSpokenDigits(ctx, dir, spokenDigitsJob{
		name: "trimodal", train: cfg.Train, test: cfg.Test, seed: cfg.Seed, workers: cfg.Workers,
		mnistDir: cfg.MNISTDir, speech: cfg.Speech, subdirs: []string{"images", "audio"}, header: trimodalColumns,
		row: func(ctx context.Context, tmp string, speech *spokenWords, sp genSplit, i, src int) ([]string, error) {
			return trimodalRow(ctx, tmp, cfg, speech, sp, i, src)
		},
		columns: map[string]string{
			"split":        "train or test",
			"label":        "digit 0-9 (class names in summary.classes)",
			"image":        "28x28 8-bit grey PNG, MNIST digit of this label, degraded per config.image; empty when the row lacks the image",
			"text":         "the digit as a word or an arithmetic phrase (text_form), corrupted per config.text; empty when the row lacks text",
			"text_form":    "word, plus, minus, times, half, after or before",
			"text_noise":   "none, typo, or replaced (the text states another digit)",
			"source_index": "index of the image in its MNIST split",
		},
		config:            cfg,
		audioMaybeMissing: true,
		readme: fmt.Sprintf("# trimodal: digits seen, heard and described\n\n"+
			"Generated by lsfuse (`data.GenerateTriModal`, seed %d). Each row pairs, by label, a degraded MNIST digit (28x28 grey PNG), "+
			"the digit word spoken by espeak-ng (%d Hz WAV, %v-%v dB SNR) and a text naming the digit or stating it as arithmetic "+
			"(%v of texts, e.g. \"three plus four\"); %v of texts name another digit, %v of the rest have typos. "+
			"Rows lack the image, audio or text with probabilities %v, %v, %v (empty cells). metadata.json holds the config and column descriptions.\n",
			cfg.Seed, cfg.Speech.SampleRate, cfg.Speech.SNRMinDB, cfg.Speech.SNRMaxDB, cfg.PhraseProb, cfg.Text.ReplaceProb, cfg.Text.TypoProb,
			cfg.Missing.Image, cfg.Missing.Audio, cfg.Missing.Text),
	})
}

// trimodalRow writes the files of row i (source image src) and returns its
// manifest row.
func trimodalRow(ctx context.Context, dir string, cfg TriModalConfig, speech *spokenWords, sp genSplit, i, src int) ([]string, error) {
	stream := func(k int) *rng { return newRNG(cfg.Seed, streamGenerate, splitTag(sp.name), uint64(i), uint64(k)) }
	label := sp.source.labels[src]
	name := rowName(sp.name, i, sp.rows)

	rm := stream(trimodalStreamMissing)
	missing := []bool{rm.bernoulli(cfg.Missing.Image), rm.bernoulli(cfg.Missing.Audio), rm.bernoulli(cfg.Missing.Text)}
	if missing[0] && missing[1] && missing[2] {
		missing[rm.intN(3)] = false
	}
	row := []string{sp.name, strconv.Itoa(label), "", "", "", "", "", "", "", "", "", strconv.Itoa(src)}
	if !missing[0] {
		p := filepath.ToSlash(filepath.Join("images", name+".png"))
		if err := writeGrayPNG(filepath.Join(dir, p), cfg.Image.apply(sp.source.image(src), 28, 28, stream(trimodalStreamImage)), 28, 28); err != nil {
			return nil, err
		}
		row[2] = p
	}
	if !missing[1] {
		clip, err := speech.speak(ctx, DigitWords[label], stream(trimodalStreamAudio))
		if err != nil {
			return nil, err
		}
		p := filepath.ToSlash(filepath.Join("audio", name+".wav"))
		if err := os.WriteFile(filepath.Join(dir, p), encodeWAV16(clip.wave, cfg.Speech.SampleRate), 0o644); err != nil {
			return nil, err
		}
		row[3] = p
		copy(row[7:11], clip.columns())
	}
	if !missing[2] {
		rt := stream(trimodalStreamText)
		text, form := digitPhrase(label, cfg.PhraseProb, rt)
		text, noise := cfg.Text.apply(text, label, 10, func(c int, r *rng) string {
			t, f := digitPhrase(c, cfg.PhraseProb, r)
			form = f
			return t
		}, rt)
		if err := checkText(text); err != nil {
			return nil, err
		}
		row[4], row[5], row[6] = text, form, noise
	}
	return row, nil
}
