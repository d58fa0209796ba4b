package data

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
)

// spokenWords synthesises degraded spoken words with espeak-ng for the
// generators that pair a picture with speech (movingdigits, trimodal). Each
// clip draws its voice, rate, pitch, level and noise from the row's random
// source in the order avdigits draws them (accent, variant, speed, pitch,
// SNR, peak, noise seed), is trimmed of silence, resampled to
// SpeechConfig.SampleRate with a band-limited filter, cut at MaxSeconds,
// scaled to its peak and noised. Safe for concurrent use.
type spokenWords struct {
	cfg        SpeechConfig
	synth      *speechSynth
	mu         sync.Mutex
	resamplers map[int]*Resampler // by input rate; immutable once made
	truncated  atomic.Int64
}

// spokenClip is one synthesised clip and how it was made.
type spokenClip struct {
	wave         []float32 // mono samples at SpeechConfig.SampleRate
	accent       string
	variant      string
	speed, pitch int
	snr          float64 // dB; +Inf when no noise was added
}

// newSpokenWords finds espeak-ng (ErrEspeakMissing otherwise) and checks
// that it has every configured voice variant. Close it when done.
func newSpokenWords(ctx context.Context, cfg SpeechConfig) (*spokenWords, error) {
	synth, err := newSpeechSynth(ctx)
	if err != nil {
		return nil, err
	}
	if err := synth.checkVoices(cfg.Variants); err != nil {
		synth.close()
		return nil, err
	}
	return &spokenWords{cfg: cfg, synth: synth, resamplers: map[int]*Resampler{}}, nil
}

func (s *spokenWords) close() error { return s.synth.close() }

// version is espeak-ng's version line, recorded in metadata.json.
func (s *spokenWords) version() string { return s.synth.version }

// resampler returns the shared resampler from rate in to the configured rate.
func (s *spokenWords) resampler(in int) (*Resampler, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.resamplers[in]; ok {
		return r, nil
	}
	r, err := NewResampler(in, s.cfg.SampleRate, ResampleConfig{})
	if err != nil {
		return nil, err
	}
	s.resamplers[in] = r
	return r, nil
}

// speak synthesises text with every random choice drawn from r.
func (s *spokenWords) speak(ctx context.Context, text string, r *rng) (spokenClip, error) {
	sc := s.cfg
	c := spokenClip{accent: sc.Accents[r.intN(len(sc.Accents))], snr: math.Inf(1)}
	if len(sc.Variants) > 0 {
		c.variant = sc.Variants[r.intN(len(sc.Variants))]
	}
	c.speed = sc.SpeedMin + r.intN(sc.SpeedMax-sc.SpeedMin+1)
	c.pitch = sc.PitchMin + r.intN(sc.PitchMax-sc.PitchMin+1)
	if sc.AddNoise {
		c.snr = r.uniform(sc.SNRMinDB, math.Nextafter(sc.SNRMaxDB, math.Inf(1)))
	}
	peak := r.uniform(clipPeakMin, clipPeakMax)
	noiseSeed := r.uint64()

	wave, rate, err := s.synth.speak(ctx, c.accent, c.variant, c.speed, c.pitch, text)
	if err != nil {
		return c, err
	}
	wave = trimSilence(wave, 0.01, rate/100) // 10 ms of context each side
	if len(wave) == 0 {
		return c, fmt.Errorf("espeak-ng produced silence for %q with voice %s", text, c.voice())
	}
	rs, err := s.resampler(rate)
	if err != nil {
		return c, err
	}
	wave = rs.Process(wave)
	if limit := int(sc.MaxSeconds * float64(sc.SampleRate)); len(wave) > limit {
		wave = wave[:limit]
		s.truncated.Add(1)
	}
	scaleToPeak(wave, peak)
	if sc.AddNoise {
		AddNoise(wave, c.snr, rand.New(rand.NewPCG(noiseSeed, splitmix64(noiseSeed))))
	}
	c.wave = wave
	return c, nil
}

// voice is the espeak-ng voice name, "accent+variant" or "accent".
func (c spokenClip) voice() string {
	if c.variant == "" {
		return c.accent
	}
	return c.accent + "+" + c.variant
}

// columns are the manifest cells voice, speed, pitch and snr_db ("" without
// noise).
func (c spokenClip) columns() []string {
	snr := ""
	if !math.IsInf(c.snr, 0) {
		snr = formatFloat(math.Round(c.snr*100) / 100)
	}
	return []string{c.voice(), strconv.Itoa(c.speed), strconv.Itoa(c.pitch), snr}
}

// speechColumnDocs describes the columns of spokenClip.columns for
// metadata.json.
func speechColumnDocs(cfg SpeechConfig, what string) map[string]string {
	return map[string]string{
		"audio": fmt.Sprintf("mono 16-bit PCM WAV at %d Hz: %s spoken by espeak-ng, silence trimmed, at most %v s, plus white noise at snr_db (if any)",
			cfg.SampleRate, what, cfg.MaxSeconds),
		"voice":  "espeak-ng voice accent+variant",
		"speed":  "speaking rate, words per minute",
		"pitch":  "espeak-ng pitch 0-99",
		"snr_db": "signal-to-noise ratio of the added noise, dB (empty: no noise)",
	}
}

// spokenDigitsJob describes a generator that pairs MNIST digits, balanced
// by label, with their spoken words: movingdigits and trimodal.
type spokenDigitsJob struct {
	name              string // dataset name, for errors and metadata
	train, test       int
	seed              int64
	workers           int
	mnistDir          string
	speech            SpeechConfig
	subdirs           []string // folders made in the dataset directory
	header            []string // manifest columns
	row               func(ctx context.Context, tmp string, speech *spokenWords, sp genSplit, i, src int) ([]string, error)
	columns           map[string]string // column docs beyond the speech columns
	config            any               // the generator config, for metadata.json
	readme            string
	audioMaybeMissing bool // rows may lack audio
}

// generateSpokenDigits builds a spoken-digits dataset directory: balanced
// picks per split, rows generated in parallel, manifest.csv, metadata.json
// and README.md, swapped into dir only when complete.
func generateSpokenDigits(ctx context.Context, dir string, job spokenDigitsJob) (*GeneratedDataset, error) {
	speech, err := newSpokenWords(ctx, job.speech)
	if err != nil {
		return nil, err
	}
	defer speech.close()
	mnistDir, err := mnistSource(job.mnistDir)
	if err != nil {
		return nil, err
	}
	splits, err := idxSplits(mnistDir, job.name+": MNIST", job.train, job.test)
	if err != nil {
		return nil, err
	}
	out := &GeneratedDataset{Classes: DigitWords, Splits: map[string][]int{}}
	err = buildDatasetDir(dir, func(tmp string) error {
		for _, sub := range job.subdirs {
			if err := os.Mkdir(filepath.Join(tmp, sub), 0o755); err != nil {
				return err
			}
		}
		table := &manifestTable{header: job.header}
		for _, sp := range splits {
			picks, err := balancedPicks(sp.source.labels, 10, sp.rows, newRNG(job.seed, streamGenerate, splitTag(sp.name)))
			if err != nil {
				return fmt.Errorf("%s %s split: %w", job.name, sp.name, err)
			}
			rows := make([][]string, sp.rows)
			err = forEachRow(ctx, sp.rows, orDefault(job.workers, 2), func(i int) error {
				row, err := job.row(ctx, tmp, speech, sp, i, picks[i])
				if err != nil {
					return fmt.Errorf("%s %s row %d: %w", job.name, sp.name, i, err)
				}
				rows[i] = row
				return nil
			})
			if err != nil {
				return err
			}
			table.rows = append(table.rows, rows...)
			out.Splits[sp.name] = countClasses(sp.source.labels, picks, 10)
		}
		out.TruncatedClips = int(speech.truncated.Load())
		if err := table.write(filepath.Join(tmp, "manifest.csv")); err != nil {
			return err
		}
		cols := speechColumnDocs(job.speech, "the digit word")
		if job.audioMaybeMissing {
			cols["audio"] += "; empty when the row lacks audio"
		}
		for k, v := range job.columns {
			cols[k] = v
		}
		meta := datasetMetadata{
			Dataset: job.name, FormatVersion: 1, Config: job.config, Summary: out, Columns: cols,
			Sources: map[string]string{
				"images": fmt.Sprintf("MNIST (Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0) from Go module %s@%s", gomnistModule, gomnistVersion),
				"speech": speech.version(),
			},
		}
		if err := writeJSON(filepath.Join(tmp, "metadata.json"), meta); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, "README.md"), []byte(job.readme), 0o644)
	})
	if err != nil {
		return nil, err
	}
	out.Dir, out.Manifest = dir, filepath.Join(dir, "manifest.csv")
	return out, nil
}
