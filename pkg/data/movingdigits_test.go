package data

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// committedMovingDigits is the subset under testdata/ (mk/apps.mk).
const committedMovingDigits = "../../testdata/movingdigits"

func requireEspeak(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
	}
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

func TestMovingPath(t *testing.T) {
	const size, w, h, n = 32, 14, 20, 8
	for d, step := range movingDirectionSteps {
		xs, ys := movingPath(step, w, h, size, n, [2]int{5, 7})
		if len(xs) != n || len(ys) != n {
			t.Fatalf("%s: %d, %d positions", MovingDigitsDirections[d], len(xs), len(ys))
		}
		for axis, ps := range [][]int{xs, ys} {
			extent := []int{w, h}[axis]
			fixed := []int{5, 7}[axis]
			for f := 1; f < n; f++ {
				if s := sign(ps[f] - ps[f-1]); s != step[axis] && !(s == 0 && step[axis] != 0 && ps[f] == ps[f-1]) {
					t.Fatalf("%s axis %d: positions %v do not move by %d", MovingDigitsDirections[d], axis, ps, step[axis])
				}
			}
			switch step[axis] {
			case 0:
				if ps[0] != fixed || ps[n-1] != fixed {
					t.Fatalf("%s axis %d: positions %v, want fixed at %d", MovingDigitsDirections[d], axis, ps, fixed)
				}
			case 1:
				if ps[0] != 0 || ps[n-1] != size-extent {
					t.Fatalf("%s axis %d: positions %v, want 0 → %d", MovingDigitsDirections[d], axis, ps, size-extent)
				}
			case -1:
				if ps[0] != size-extent || ps[n-1] != 0 {
					t.Fatalf("%s axis %d: positions %v, want %d → 0", MovingDigitsDirections[d], axis, ps, size-extent)
				}
			}
		}
	}
	if movingDirectionSteps[directionIndex(t, "up-left")] != [2]int{-1, -1} {
		t.Error("up-left is not (-1, -1) in image coordinates")
	}
}

// directionIndex is the index of a direction name.
func directionIndex(t *testing.T, name string) int {
	t.Helper()
	i := slices.Index(MovingDigitsDirections, name)
	if i < 0 {
		t.Fatalf("no direction %q", name)
	}
	return i
}

// expectedClip rebuilds a clean clip from its manifest row: the source
// digit, cropped to its ink, pasted along the straight path from
// (start_x, start_y) to (end_x, end_y).
func expectedClip(row map[string]string, digit []byte, frames, size int) [][]float32 {
	box := inkBox(digit, 28)
	at := func(k string) float64 { v, _ := strconv.Atoi(row[k]); return float64(v) }
	out := make([][]float32, frames)
	for f := range out {
		frac := float64(f) / float64(frames-1)
		x0 := int(math.Round(at("start_x") + (at("end_x")-at("start_x"))*frac))
		y0 := int(math.Round(at("start_y") + (at("end_y")-at("start_y"))*frac))
		px := make([]float32, size*size)
		for y := box.Min.Y; y < box.Max.Y; y++ {
			for x := box.Min.X; x < box.Max.X; x++ {
				px[(y0+y-box.Min.Y)*size+x0+x-box.Min.X] = float32(digit[y*28+x])
			}
		}
		out[f] = px
	}
	return out
}

// checkMovingRow checks a row's direction against its recorded path: the
// box moves along the direction's step and crosses the frame on each
// moving axis.
func checkMovingRow(t *testing.T, i int, row map[string]string, size int) {
	t.Helper()
	d := slices.Index(MovingDigitsDirections, row["direction"])
	if d < 0 || row["label_direction"] != row["label"]+"-"+row["direction"] {
		t.Fatalf("row %d: direction %q, label %q, label_direction %q", i, row["direction"], row["label"], row["label_direction"])
	}
	at := func(k string) int { v, _ := strconv.Atoi(row[k]); return v }
	dx, dy := at("end_x")-at("start_x"), at("end_y")-at("start_y")
	if sign(dx) != movingDirectionSteps[d][0] || sign(dy) != movingDirectionSteps[d][1] {
		t.Fatalf("row %d: moves by (%d, %d), direction %s", i, dx, dy, row["direction"])
	}
	for _, v := range []int{at("start_x"), at("start_y"), at("end_x"), at("end_y")} {
		if v < 0 || v > size-1 {
			t.Fatalf("row %d: path %v leaves the frame", i, row)
		}
	}
}

// TestGenerateMovingDigits makes clean clips and checks that each shows its
// MNIST digit moving as labelled and that the audio speaks the digit.
func TestGenerateMovingDigits(t *testing.T) {
	requireEspeak(t)
	cfg := DefaultMovingDigitsConfig()
	cfg.Train, cfg.Test, cfg.Seed = 0, 10, 4 // MNIST's test split is the cheaper to read
	cfg.Directions, cfg.FrameNoiseStd, cfg.Image = 8, 0, ImageDegradation{}
	cfg.Speech.AddNoise, cfg.Speech.SampleRate = false, 8000
	dir := filepath.Join(t.TempDir(), "md")
	ctx := context.Background()
	res, err := GenerateMovingDigits(ctx, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Splits["test"], []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}) {
		t.Fatalf("rows per digit %v", res.Splits)
	}
	rows := readManifestCSV(t, res.Manifest)
	mnistDir, err := DefaultMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	src := testSplitOf(t, mnistDir)["test"]
	synth, err := newSpeechSynth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer synth.close()
	directions := map[string]bool{}
	for i, row := range rows {
		checkMovingRow(t, i, row, cfg.Size)
		directions[row["direction"]] = true
		idx, _ := strconv.Atoi(row["source_index"])
		if strconv.Itoa(src.labels[idx]) != row["label"] {
			t.Fatalf("row %d: label %s, MNIST image %d is a %d", i, row["label"], idx, src.labels[idx])
		}
		b, err := os.ReadFile(filepath.Join(dir, row["video"]))
		if err != nil {
			t.Fatal(err)
		}
		clip, err := DecodeGIFVideo(b, VideoConfig{Channels: 1})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(clip.Shape, []int{cfg.Frames, 1, cfg.Size, cfg.Size}) {
			t.Fatalf("row %d: clip shape %v", i, clip.Shape)
		}
		for f, want := range expectedClip(row, src.image(idx), cfg.Frames, cfg.Size) {
			got := clip.Data[f*cfg.Size*cfg.Size : (f+1)*cfg.Size*cfg.Size]
			for k := range want {
				if math.Round(float64(got[k])*255) != float64(want[k]) {
					t.Fatalf("row %d frame %d pixel %d: %v/255, the moved source digit has %v", i, f, k, got[k]*255, want[k])
				}
			}
		}
		w, err := DecodeWAV(mustRead(t, filepath.Join(dir, row["audio"])))
		if err != nil {
			t.Fatal(err)
		}
		if w.Rate != 8000 || rms(w.Mono()) < 0.02 {
			t.Fatalf("row %d: %d Hz, rms %v", i, w.Rate, rms(w.Mono()))
		}
		if i < 2 { // the clip is the digit word in the row's voice, not another word
			accent, variant, _ := strings.Cut(row["voice"], "+")
			speed, _ := strconv.Atoi(row["speed"])
			pitch, _ := strconv.Atoi(row["pitch"])
			label, _ := strconv.Atoi(row["label"])
			for _, word := range []int{label, (label + 3) % 10} {
				x, rate, err := synth.speak(ctx, accent, variant, speed, pitch, DigitWords[word])
				if err != nil {
					t.Fatal(err)
				}
				ref, err := Resample(trimSilence(x, 0.01, rate/100), rate, 8000)
				if err != nil {
					t.Fatal(err)
				}
				if c := correlation(w.Mono(), ref); (word == label) != (c > 0.999) {
					t.Fatalf("row %d (digit %d): audio correlates %.4f with %q", i, label, c, DigitWords[word])
				}
			}
		}
	}
	if len(directions) < 4 {
		t.Errorf("only directions %v among 10 rows", directions)
	}
}

// inkCentroid is the (x, y) centroid of the pixels above 0.3 of a
// side×side frame.
func inkCentroid(frame []float32, side int) [2]float64 {
	var sx, sy, n float64
	for k, v := range frame {
		if v > 0.3 {
			sx += float64(k % side)
			sy += float64(k / side)
			n++
		}
	}
	return [2]float64{sx / n, sy / n}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// generatedConfig reads the generator config recorded in a generated
// dataset's metadata.json.
func generatedConfig[C any](t *testing.T, dir string) C {
	t.Helper()
	var meta struct {
		Config C `json:"config"`
	}
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, "metadata.json")), &meta); err != nil {
		t.Fatal(err)
	}
	return meta.Config
}

func TestMovingDigitsConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		edit func(*MovingDigitsConfig)
		want string
	}{
		{func(c *MovingDigitsConfig) { c.Train, c.Test = 0, 0 }, "not both 0"},
		{func(c *MovingDigitsConfig) { c.Frames = 1 }, "frames 1"},
		{func(c *MovingDigitsConfig) { c.Size = 20 }, "size 20"},
		{func(c *MovingDigitsConfig) { c.Directions = 6 }, "directions 6"},
		{func(c *MovingDigitsConfig) { c.FrameNoiseStd = -1 }, "frame_noise_std -1"},
		{func(c *MovingDigitsConfig) { c.Speech.SampleRate = 100 }, "sample_rate 100"},
	} {
		cfg := DefaultMovingDigitsConfig()
		tc.edit(&cfg)
		if _, err := GenerateMovingDigits(context.Background(), t.TempDir(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
	t.Setenv("PATH", t.TempDir())
	cfg := DefaultMovingDigitsConfig()
	if _, err := GenerateMovingDigits(context.Background(), t.TempDir(), cfg); err != ErrEspeakMissing {
		t.Errorf("without espeak-ng: %v", err)
	}
}

// TestCommittedMovingDigits decodes the committed subset as
// configs/audio_video.yaml reads it.
func TestCommittedMovingDigits(t *testing.T) {
	c := generatedConfig[MovingDigitsConfig](t, committedMovingDigits)
	if c.Size != 32 || c.Frames != 8 {
		t.Fatalf("config %+v", c)
	}
	ds, rows := openCommitted(t, committedMovingDigits, ManifestConfig{
		Columns: map[string]ColumnSpec{
			"video": {Kind: KindVideo, Video: VideoConfig{Frames: c.Frames, Channels: 1, Height: c.Size, Width: c.Size}},
			"audio": {Kind: KindAudio, Audio: AudioConfig{SampleRate: c.Speech.SampleRate, Length: int(c.Speech.MaxSeconds * float64(c.Speech.SampleRate))}},
		},
		LabelColumn: "label_direction",
	}, c.Train+c.Test)
	for i, row := range rows {
		checkMovingRow(t, i, row, c.Size)
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if ds.stats.Categories[s.Label.Class] != row["label_direction"] || !slices.Equal(s.Inputs["video"].Shape, []int{8, 1, 32, 32}) {
			t.Fatalf("row %d: class %d (%s), video %v", i, s.Label.Class, row["label_direction"], s.Inputs["video"].Shape)
		}
		// The ink's centroid moves from the first frame to the last as the
		// direction says.
		c0 := inkCentroid(s.Inputs["video"].Data[:32*32], 32)
		c1 := inkCentroid(s.Inputs["video"].Data[7*32*32:], 32)
		step := movingDirectionSteps[slices.Index(MovingDigitsDirections, row["direction"])]
		for axis := range 2 {
			delta := c1[axis] - c0[axis]
			if (step[axis] == 0 && math.Abs(delta) > 1) || (step[axis] != 0 && delta*float64(step[axis]) < 3) {
				t.Fatalf("row %d (%s): ink centroid moves by %.1f along axis %d", i, row["direction"], delta, axis)
			}
		}
	}
}
