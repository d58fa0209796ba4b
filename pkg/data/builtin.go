package data

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// This file holds what the built-in dataset generators (avdigits, fashion)
// share: degradations that keep any one modality from saturating accuracy,
// class-balanced sampling of source items, parallel row generation, and
// writing a manifest directory atomically.

// ImageDegradation makes images harder so that the image modality alone does
// not saturate accuracy. Applied per image in this order: Gaussian blur,
// occlusion, additive noise; pixel values are in [0, 1] and clipped back to
// it. The zero value leaves images untouched.
type ImageDegradation struct {
	// BlurMaxSigma is the largest Gaussian blur σ in pixels; each image draws
	// σ uniformly from [0, BlurMaxSigma]. 0 disables blur. Range [0, 5].
	BlurMaxSigma float64 `json:"blur_max_sigma"`
	// OcclusionProb is the probability that an image gets one occluding
	// square of a uniform random grey level, placed uniformly inside the
	// image. Range [0, 1].
	OcclusionProb float64 `json:"occlusion_prob"`
	// OcclusionMin and OcclusionMax bound the square's side in pixels
	// (drawn uniformly, inclusive; 1 ≤ Min ≤ Max ≤ the image side).
	OcclusionMin int `json:"occlusion_min"`
	OcclusionMax int `json:"occlusion_max"`
	// NoiseStd is the standard deviation of additive Gaussian pixel noise
	// (in units of the full [0, 1] range). 0 disables it. Range [0, 1].
	NoiseStd float64 `json:"noise_std"`
}

// Validate checks the ranges for images of side × side pixels.
func (d ImageDegradation) Validate(side int) error {
	switch {
	case !(d.BlurMaxSigma >= 0 && d.BlurMaxSigma <= 5):
		return fmt.Errorf("image degradation: blur_max_sigma %v must be in [0, 5]", d.BlurMaxSigma)
	case !(d.OcclusionProb >= 0 && d.OcclusionProb <= 1):
		return fmt.Errorf("image degradation: occlusion_prob %v must be in [0, 1]", d.OcclusionProb)
	case d.OcclusionProb > 0 && (d.OcclusionMin < 1 || d.OcclusionMin > d.OcclusionMax || d.OcclusionMax > side):
		return fmt.Errorf("image degradation: occlusion size [%d, %d] must satisfy 1 ≤ min ≤ max ≤ %d", d.OcclusionMin, d.OcclusionMax, side)
	case !(d.NoiseStd >= 0 && d.NoiseStd <= 1):
		return fmt.Errorf("image degradation: noise_std %v must be in [0, 1]", d.NoiseStd)
	}
	return nil
}

// apply degrades a w×h grey image held as bytes (0 black … 255 white) and
// returns the new pixels; every draw comes from r.
func (d ImageDegradation) apply(pix []byte, w, h int, r *rng) []byte {
	x := make([]float64, len(pix))
	for i, v := range pix {
		x[i] = float64(v) / 255
	}
	if d.BlurMaxSigma > 0 {
		x = gaussianBlur(x, w, h, r.uniform(0, d.BlurMaxSigma))
	}
	if d.OcclusionProb > 0 && r.bernoulli(d.OcclusionProb) {
		side := d.OcclusionMin + r.intN(d.OcclusionMax-d.OcclusionMin+1)
		x0, y0 := r.intN(w-min(side, w)+1), r.intN(h-min(side, h)+1)
		grey := r.float64()
		for y := y0; y < min(y0+side, h); y++ {
			for xx := x0; xx < min(x0+side, w); xx++ {
				x[y*w+xx] = grey
			}
		}
	}
	if d.NoiseStd > 0 {
		for i := range x {
			x[i] += d.NoiseStd * r.norm()
		}
	}
	out := make([]byte, len(x))
	for i, v := range x {
		out[i] = byte(math.Round(255 * min(max(v, 0), 1)))
	}
	return out
}

// gaussianBlur convolves a w×h image with a separable Gaussian of standard
// deviation sigma pixels (radius ⌈3σ⌉, edges clamped). σ below 0.05 pixel
// changes nothing visible and returns x unchanged.
func gaussianBlur(x []float64, w, h int, sigma float64) []float64 {
	if sigma < 0.05 {
		return x
	}
	rad := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*rad+1)
	var sum float64
	for i := range k {
		d := float64(i - rad)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	clamp := func(v, hi int) int { return min(max(v, 0), hi-1) }
	tmp := make([]float64, len(x))
	for y := range h {
		for xx := range w {
			var s float64
			for i, kv := range k {
				s += kv * x[y*w+clamp(xx+i-rad, w)]
			}
			tmp[y*w+xx] = s
		}
	}
	out := make([]float64, len(x))
	for y := range h {
		for xx := range w {
			var s float64
			for i, kv := range k {
				s += kv * tmp[clamp(y+i-rad, h)*w+xx]
			}
			out[y*w+xx] = s
		}
	}
	return out
}

// TextCorruption makes a text column noisy so that the text modality alone
// does not saturate accuracy. Each text is, with probability ReplaceProb,
// replaced by the text of a different class (a wrong but fluent text);
// otherwise, with probability TypoProb, given one or two typos (a letter
// substituted, deleted, inserted or two letters swapped). The zero value
// leaves texts untouched.
type TextCorruption struct {
	// TypoProb is the probability of typos. Range [0, 1].
	TypoProb float64 `json:"typo_prob"`
	// ReplaceProb is the probability of replacement by another class's
	// text. Range [0, 1].
	ReplaceProb float64 `json:"replace_prob"`
}

// Validate checks the ranges.
func (c TextCorruption) Validate() error {
	if !(c.TypoProb >= 0 && c.TypoProb <= 1) {
		return fmt.Errorf("text corruption: typo_prob %v must be in [0, 1]", c.TypoProb)
	}
	if !(c.ReplaceProb >= 0 && c.ReplaceProb <= 1) {
		return fmt.Errorf("text corruption: replace_prob %v must be in [0, 1]", c.ReplaceProb)
	}
	return nil
}

// Kinds of text corruption recorded in the generated manifests.
const (
	textClean    = "none"
	textTypo     = "typo"
	textReplaced = "replaced"
)

// apply corrupts text of class label. other(c, r) must return a text of
// class c. It returns the new text and its corruption kind.
func (c TextCorruption) apply(text string, label, numClasses int, other func(class int, r *rng) string, r *rng) (string, string) {
	if c.ReplaceProb > 0 && r.bernoulli(c.ReplaceProb) {
		wrong := r.intN(numClasses - 1)
		if wrong >= label {
			wrong++
		}
		return other(wrong, r), textReplaced
	}
	if c.TypoProb > 0 && r.bernoulli(c.TypoProb) {
		return typos(text, 1+r.intN(2), r), textTypo
	}
	return text, textClean
}

// typos applies n random edits to the lower-case ASCII letters of s (other
// characters are never touched, so a comma or a space stays put) and
// guarantees a changed text: edits that cancel out are redrawn. A text with
// no letters is returned unchanged.
func typos(s string, n int, r *rng) string {
	if !strings.ContainsFunc(s, isLower) {
		return s
	}
	for {
		b := []byte(s)
		for range n {
			b = typo(b, r)
		}
		if string(b) != s {
			return string(b)
		}
	}
}

func isLower(c rune) bool { return c >= 'a' && c <= 'z' }

// typo applies one edit at a random letter of b: substitute a different
// letter, delete it (unless it is the only letter), insert a letter before
// it, or swap it with the next letter.
func typo(b []byte, r *rng) []byte {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	var pos []int
	for i, c := range b {
		if isLower(rune(c)) {
			pos = append(pos, i)
		}
	}
	i := pos[r.intN(len(pos))]
	switch r.intN(4) {
	case 0:
		c := letters[r.intN(len(letters)-1)]
		if c >= b[i] {
			c++
		}
		b[i] = c
	case 1:
		if len(pos) > 1 {
			b = append(b[:i], b[i+1:]...)
		}
	case 2:
		b = append(b[:i], append([]byte{letters[r.intN(len(letters))]}, b[i:]...)...)
	case 3:
		if i+1 < len(b) && isLower(rune(b[i+1])) {
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
	return b
}

// balancedPicks chooses n source items so that the classes 0..K-1 are as
// balanced as possible (counts differ by at most one, the extra ones going
// to the lowest classes), each class's items drawn without replacement in a
// random order. labels[i] is source item i's class. The result, one source
// index per row in a random row order, depends only on (labels, n, r).
func balancedPicks(labels []int, numClasses, n int, r *rng) ([]int, error) {
	byClass := make([][]int, numClasses)
	for i, c := range labels {
		if c < 0 || c >= numClasses {
			return nil, fmt.Errorf("source item %d has label %d, want 0..%d", i, c, numClasses-1)
		}
		byClass[c] = append(byClass[c], i)
	}
	picks := make([]int, 0, n)
	for c, items := range byClass {
		want := n / numClasses
		if c < n%numClasses {
			want++
		}
		if want > len(items) {
			return nil, fmt.Errorf("class %d has %d source items, %d needed", c, len(items), want)
		}
		r.shuffle(items)
		picks = append(picks, items[:want]...)
	}
	r.shuffle(picks)
	return picks, nil
}

// forEachRow calls fn(i) for i in [0, n) on workers goroutines and returns
// the error of the lowest failing row (rows after a failure may be skipped).
// fn must be safe for concurrent use.
func forEachRow(ctx context.Context, n, workers int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if errs[i] = fn(i); errs[i] != nil {
					cancel()
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err() // the caller's cancellation, if any
}

// manifestTable is a manifest.csv being built: a header and one row per
// sample.
type manifestTable struct {
	header []string
	rows   [][]string
}

func (t *manifestTable) write(path string) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(t.header); err != nil {
		return err
	}
	if err := w.WriteAll(t.rows); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// writeGrayPNG writes a w×h 8-bit grey PNG.
func writeGrayPNG(path string, pix []byte, w, h int) error {
	img := &image.Gray{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h)}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// writeJSON writes v as indented JSON.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// buildDatasetDir creates the dataset directory dir by running build on a
// fresh temporary directory next to it and renaming that into place once
// build succeeds, so an interrupted or failed generation never leaves a
// half-written dataset. dir must not exist or be an empty directory.
func buildDatasetDir(dir string, build func(tmp string) error) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("output directory %s is not empty: remove it or choose another", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := build(tmp); err != nil {
		return err
	}
	_ = os.Remove(dir) // an empty directory in the way
	return os.Rename(tmp, dir)
}

// rowName is the file stem of row i of a split: "train_00042".
func rowName(split string, i, n int) string {
	width := max(len(strconv.Itoa(n-1)), 5)
	return fmt.Sprintf("%s_%0*d", split, width, i)
}

// orDefault returns v, or def when v is the zero value.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// formatFloat writes v with the fewest digits that round-trip.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// checkText rejects texts a CSV manifest cannot carry faithfully.
func checkText(s string) error {
	if !utf8.ValidString(s) || strings.ContainsAny(s, "\r\n") || strings.TrimSpace(s) == "" {
		return fmt.Errorf("text %q is empty, not UTF-8, or spans lines", s)
	}
	return nil
}

// checkSizes validates the row counts and worker count every built-in
// generator takes; name prefixes the error.
func checkSizes(name string, train, test, workers int) error {
	if train < 0 || test < 0 || train+test == 0 {
		return fmt.Errorf("%s: train %d and test %d rows must be ≥ 0 and not both 0", name, train, test)
	}
	if workers < 0 {
		return fmt.Errorf("%s: workers %d must be ≥ 0", name, workers)
	}
	return nil
}
