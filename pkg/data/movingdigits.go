package data

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MovingDigitsDirections are the motion directions of the movingdigits
// clips in image terms (x to the right, y down); a 4-direction dataset uses
// the first four.
var MovingDigitsDirections = []string{"right", "left", "down", "up", "down-right", "up-left", "down-left", "up-right"}

// movingDirectionSteps are the unit steps (dx, dy) of MovingDigitsDirections.
var movingDirectionSteps = [][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}, {-1, -1}, {-1, 1}, {1, -1}}

// MovingDigitsConfig configures GenerateMovingDigits. Start from
// DefaultMovingDigitsConfig: here zero means zero, not "default".
type MovingDigitsConfig struct {
	// Train and Test are the rows per split (≥ 0, not both 0), drawn from
	// MNIST's training and test images with balanced digits.
	Train int   `json:"train"`
	Test  int   `json:"test"`
	Seed  int64 `json:"seed"`
	// Frames per clip, in [2, 64].
	Frames int `json:"frames"`
	// Size is the side of the square frames in pixels, in [28, 128].
	Size int `json:"size"`
	// Directions is 4 (right, left, down, up) or 8 (and the diagonals).
	Directions int `json:"directions"`
	// Image degrades the 28×28 digit before it moves (blur, occlusion;
	// its noise stays inside the digit's box).
	Image ImageDegradation `json:"image"`
	// FrameNoiseStd is the standard deviation of Gaussian noise added to
	// every pixel of every frame, in units of the [0, 1] range ([0, 1]).
	FrameNoiseStd float64 `json:"frame_noise_std"`
	// Speech synthesises the spoken digit of each clip.
	Speech SpeechConfig `json:"speech"`
	// MNISTDir holds the MNIST idx files; "" means DefaultMNISTDir.
	MNISTDir string `json:"-"`
	// Workers is the number of rows generated in parallel (0 means 2).
	Workers int `json:"-"`
}

// DefaultMovingDigitsConfig is a 5000 + 1000 row dataset of 8-frame 32×32
// clips in 4 directions, digits blurred and 30% occluded, frames noisy (σ 0.05), the
// digit word spoken by 7 accents × 12 voices at 5–20 dB SNR.
func DefaultMovingDigitsConfig() MovingDigitsConfig {
	speech := DefaultAVDigitsConfig().Speech
	speech.Variants = []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"}
	speech.SNRMinDB, speech.SNRMaxDB = 5, 20
	return MovingDigitsConfig{
		Train: 5000, Test: 1000, Seed: 1,
		Frames: 8, Size: 32, Directions: 4,
		Image:         ImageDegradation{BlurMaxSigma: 1, OcclusionProb: 0.3, OcclusionMin: 6, OcclusionMax: 12},
		FrameNoiseStd: 0.05,
		Speech:        speech,
		Workers:       2,
	}
}

// Validate checks every field (not the presence of files or voices).
func (c MovingDigitsConfig) Validate() error {
	if err := checkSizes("movingdigits", c.Train, c.Test, c.Workers); err != nil {
		return err
	}
	switch {
	case c.Frames < 2 || c.Frames > 64:
		return fmt.Errorf("movingdigits: frames %d must be in [2, 64]", c.Frames)
	case c.Size < 28 || c.Size > 128:
		return fmt.Errorf("movingdigits: size %d must be in [28, 128]", c.Size)
	case c.Directions != 4 && c.Directions != 8:
		return fmt.Errorf("movingdigits: directions %d must be 4 or 8", c.Directions)
	case !(c.FrameNoiseStd >= 0 && c.FrameNoiseStd <= 1):
		return fmt.Errorf("movingdigits: frame_noise_std %v must be in [0, 1]", c.FrameNoiseStd)
	}
	if err := c.Image.Validate(28); err != nil {
		return fmt.Errorf("movingdigits: %w", err)
	}
	if err := c.Speech.Validate(); err != nil {
		return fmt.Errorf("movingdigits: %w", err)
	}
	return nil
}

// MovingDigitsLabel is the label_direction class of digit d moving in
// direction dir: "7-left".
func MovingDigitsLabel(d int, dir string) string { return strconv.Itoa(d) + "-" + dir }

// inkBox is the bounding box of the non-zero pixels of a side×side image
// (the whole image when it is blank).
func inkBox(pix []byte, side int) image.Rectangle {
	box := image.Rectangle{}
	for y := range side {
		for x := range side {
			if pix[y*side+x] > 0 {
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	if box.Empty() {
		return image.Rect(0, 0, side, side)
	}
	return box
}

// movingPath is where a w×h tile's top-left corner is in each of n frames
// of a size×size canvas moving by step (dx, dy): along an axis it moves, it
// crosses the whole canvas (from 0 to size−w, or back); along an axis it
// does not, it stays at fixed (drawn by the caller).
func movingPath(step [2]int, w, h, size, n int, fixed [2]int) (xs, ys []int) {
	ends := func(d, extent, fix int) (float64, float64) {
		switch {
		case d > 0:
			return 0, float64(size - extent)
		case d < 0:
			return float64(size - extent), 0
		}
		return float64(fix), float64(fix)
	}
	x0, x1 := ends(step[0], w, fixed[0])
	y0, y1 := ends(step[1], h, fixed[1])
	for f := range n {
		t := float64(f) / float64(n-1)
		xs = append(xs, int(math.Round(x0+(x1-x0)*t)))
		ys = append(ys, int(math.Round(y0+(y1-y0)*t)))
	}
	return xs, ys
}

// encodeGrayGIF writes frames of w×h grey pixels (0 black … 255 white) as
// an animated GIF with a 256-level grey palette, delay 1/10 s per frame,
// looping.
func encodeGrayGIF(frames [][]byte, w, h int) ([]byte, error) {
	pal := make(color.Palette, 256)
	for i := range pal {
		pal[i] = color.Gray{Y: uint8(i)}
	}
	// With the palette as the global colour table, frames carry no local
	// table (768 bytes each).
	g := &gif.GIF{Config: image.Config{ColorModel: pal, Width: w, Height: h}}
	for _, f := range frames {
		g.Image = append(g.Image, &image.Paletted{Pix: f, Stride: w, Rect: image.Rect(0, 0, w, h), Palette: pal})
		g.Delay = append(g.Delay, 10)
		g.Disposal = append(g.Disposal, gif.DisposalNone)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, g); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// movingDigitsColumns are the manifest columns.
var movingDigitsColumns = []string{"split", "label", "direction", "label_direction", "video", "audio",
	"voice", "speed", "pitch", "snr_db", "start_x", "start_y", "end_x", "end_y", "source_index"}

// GenerateMovingDigits writes an audio–video "moving digits" dataset to dir
// (which must not exist or be empty): each row is a short clip of a real
// MNIST digit crossing the frame in one direction, paired with the digit
// word spoken by espeak-ng.
//
// A clip is made by cropping the (degraded) MNIST digit to the bounding
// box of its ink, then pasting it, by pixel-wise maximum, on Frames black
// Size×Size frames along a straight path that crosses the whole frame in
// the row's direction (uniform over Directions) at a uniform offset across
// it (see movingPath), plus Gaussian noise per frame.
//
// Layout: manifest.csv (split, label = digit 0–9, direction, label_direction
// = "<digit>-<direction>", video = clips/<split>_<row>.gif (8-bit grey
// animated GIF), audio = audio/<split>_<row>.wav, the voice columns, the
// path's first and last top-left corner start_x, start_y, end_x, end_y, and
// source_index), metadata.json and README.md. The result is a pure function
// of cfg (and the espeak-ng version). It needs espeak-ng (ErrEspeakMissing)
// and MNIST (see DefaultMNISTDir).
func GenerateMovingDigits(ctx context.Context, dir string, cfg MovingDigitsConfig) (*GeneratedDataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return generateSpokenDigits(ctx, dir, spokenDigitsJob{
		name: "movingdigits", train: cfg.Train, test: cfg.Test, seed: cfg.Seed, workers: cfg.Workers,
		mnistDir: cfg.MNISTDir, speech: cfg.Speech, subdirs: []string{"clips", "audio"}, header: movingDigitsColumns,
		row: func(ctx context.Context, tmp string, speech *spokenWords, sp genSplit, i, src int) ([]string, error) {
			return movingDigitsRow(ctx, tmp, cfg, speech, sp, i, src)
		},
		columns: map[string]string{
			"split":           "train or test",
			"label":           "digit 0-9 (class names in summary.classes)",
			"direction":       "where the digit moves: " + strings.Join(MovingDigitsDirections[:cfg.Directions], ", ") + " (x right, y down)",
			"label_direction": "digit and direction as one class, e.g. 7-left",
			"video":           fmt.Sprintf("animated GIF, %d frames of %dx%d 8-bit grey: the MNIST digit (cropped to its ink) crossing the frame", cfg.Frames, cfg.Size, cfg.Size),
			"start_x":         "x of the digit box's top-left corner in the first frame (pixels)",
			"start_y":         "y of the digit box's top-left corner in the first frame",
			"end_x":           "x of the top-left corner in the last frame",
			"end_y":           "y of the top-left corner in the last frame",
			"source_index":    "index of the digit in its MNIST split",
		},
		config:            cfg,
		audioMaybeMissing: false,
		readme: fmt.Sprintf("# movingdigits: moving handwritten digits with their spoken names\n\n"+
			"Generated by lsfuse (`data.GenerateMovingDigits`, seed %d). Each row is a %d-frame %dx%d clip (animated GIF) of a real MNIST digit "+
			"crossing the frame in one of %d directions, and the digit word spoken by espeak-ng (%d Hz WAV, %v-%v dB SNR). "+
			"Labels: the digit (label), the direction, and both (label_direction). metadata.json holds the config and column descriptions.\n",
			cfg.Seed, cfg.Frames, cfg.Size, cfg.Size, cfg.Directions, cfg.Speech.SampleRate, cfg.Speech.SNRMinDB, cfg.Speech.SNRMaxDB),
	})
}

// movingDigitsRow writes the clip and audio of row i (source image src) and
// returns its manifest row.
func movingDigitsRow(ctx context.Context, dir string, cfg MovingDigitsConfig, speech *spokenWords, sp genSplit, i, src int) ([]string, error) {
	r := rowRNG(cfg.Seed, sp.name, i)
	label := sp.source.labels[src]
	name := rowName(sp.name, i, sp.rows)

	clean := sp.source.image(src)
	box := inkBox(clean, 28)
	digit := cfg.Image.apply(clean, 28, 28, r)
	w, h := box.Dx(), box.Dy()
	way := r.intN(cfg.Directions)
	step := movingDirectionSteps[way]
	fixed := [2]int{r.intN(cfg.Size - w + 1), r.intN(cfg.Size - h + 1)}
	xs, ys := movingPath(step, w, h, cfg.Size, cfg.Frames, fixed)
	frames := make([][]byte, cfg.Frames)
	for f := range frames {
		px := make([]float64, cfg.Size*cfg.Size)
		for y := range h {
			for x := range w {
				v := float64(digit[(box.Min.Y+y)*28+box.Min.X+x]) / 255
				o := (ys[f]+y)*cfg.Size + xs[f] + x
				px[o] = max(px[o], v)
			}
		}
		frame := make([]byte, len(px))
		for k, v := range px {
			if cfg.FrameNoiseStd > 0 {
				v += cfg.FrameNoiseStd * r.norm()
			}
			frame[k] = byte(math.Round(255 * min(max(v, 0), 1)))
		}
		frames[f] = frame
	}
	clip, err := encodeGrayGIF(frames, cfg.Size, cfg.Size)
	if err != nil {
		return nil, err
	}
	videoPath := filepath.ToSlash(filepath.Join("clips", name+".gif"))
	if err := os.WriteFile(filepath.Join(dir, videoPath), clip, 0o644); err != nil {
		return nil, err
	}
	spoken, err := speech.speak(ctx, DigitWords[label], r)
	if err != nil {
		return nil, err
	}
	audioPath := filepath.ToSlash(filepath.Join("audio", name+".wav"))
	if err := os.WriteFile(filepath.Join(dir, audioPath), encodeWAV16(spoken.wave, cfg.Speech.SampleRate), 0o644); err != nil {
		return nil, err
	}
	dirName := MovingDigitsDirections[way]
	row := []string{sp.name, strconv.Itoa(label), dirName, MovingDigitsLabel(label, dirName), videoPath, audioPath}
	row = append(row, spoken.columns()...)
	last := cfg.Frames - 1
	return append(row, strconv.Itoa(xs[0]), strconv.Itoa(ys[0]), strconv.Itoa(xs[last]), strconv.Itoa(ys[last]), strconv.Itoa(src)), nil
}
