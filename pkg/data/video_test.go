package data

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// expectedFrame is frame i of the fixture video: grey 128 background with a
// red 4×4 square at x = 2i..2i+3, y = i..i+3 (make_fixtures.sh), as [3,16,16].
func expectedFrame(i int) []float32 {
	out := make([]float32, 3*256)
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			rgb := [3]float32{128, 128, 128}
			if x >= 2*i && x <= 2*i+3 && y >= i && y <= i+3 {
				rgb = [3]float32{255, 0, 0}
			}
			for c := 0; c < 3; c++ {
				out[c*256+y*16+x] = rgb[c] / 255
			}
		}
	}
	return out
}

func TestUniformIndices(t *testing.T) {
	cases := []struct {
		n, k int
		want []int
	}{
		{6, 3, []int{1, 3, 5}}, {2, 4, []int{0, 0, 1, 1}}, {5, 1, []int{2}}, {4, 0, []int{0, 1, 2, 3}}, {10, 4, []int{1, 3, 6, 8}},
	}
	for _, tc := range cases {
		if got := UniformIndices(tc.n, tc.k); !equalInts(got, tc.want) {
			t.Errorf("UniformIndices(%d,%d) = %v, want %v", tc.n, tc.k, got, tc.want)
		}
	}
	names := []string{"f10.png", "f2.png", "f1.png", "f02b.png", "a.png"}
	sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
	if strings.Join(names, " ") != "a.png f1.png f2.png f02b.png f10.png" {
		t.Errorf("natural order %v", names)
	}
}

func TestLoadVideoFramesAndGIF(t *testing.T) {
	for _, src := range []string{"frames", "anim.gif"} {
		all, err := LoadVideo(fixture("video", src), VideoConfig{})
		if err != nil {
			t.Fatal(err)
		}
		shapeIs(t, src, all.Shape, 6, 3, 16, 16)
		for i := 0; i < 6; i++ {
			// The GIF is layer-optimised (frames 1-5 are 6×5 patches), so exact
			// equality checks the compositing.
			sliceNear(t, fmt.Sprintf("%s frame %d", src, i), all.Data[i*768:(i+1)*768], expectedFrame(i), 1e-7)
		}
		// Three frames sampled uniformly are source frames 1, 3, 5; in gray
		// they are the BT.601 luma of the source.
		three, err := LoadVideo(fixture("video", src), VideoConfig{Frames: 3, Channels: 1})
		if err != nil {
			t.Fatal(err)
		}
		shapeIs(t, src+" sampled", three.Shape, 3, 1, 16, 16)
		for k, i := range []int{1, 3, 5} {
			rgb := expectedFrame(i)
			want := make([]float32, 256)
			for p := range want {
				want[p] = 0.299*rgb[p] + 0.587*rgb[256+p] + 0.114*rgb[512+p]
			}
			sliceNear(t, fmt.Sprintf("%s sample %d", src, k), three.Data[k*256:(k+1)*256], want, 1e-6)
		}
		small, err := LoadVideo(fixture("video", src), VideoConfig{Frames: 2, Height: 8, Width: 8})
		if err != nil {
			t.Fatal(err)
		}
		shapeIs(t, src+" resized", small.Shape, 2, 3, 8, 8)
		near(t, src+" resized background", float64(small.Data[7*8+0]), 128.0/255, 1e-6)
	}
}

func TestLoadVideoFFmpeg(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not on PATH: install ffmpeg (Debian: apt-get install ffmpeg) to test MP4 decoding")
	}
	v, err := LoadVideo(fixture("video", "tiny.mp4"), VideoConfig{})
	if err != nil {
		t.Fatal(err)
	}
	shapeIs(t, "mp4", v.Shape, 6, 3, 16, 16)
	// H.264 at crf 10 with 4:2:0 chroma: close to the source frames, except
	// chroma bleeding at the square's edges.
	for i := 0; i < 6; i++ {
		want := expectedFrame(i)
		var sum float64
		for k, g := range v.Data[i*768 : (i+1)*768] {
			sum += math.Abs(float64(g - want[k]))
		}
		if mae := sum / 768 * 255; mae > 6 {
			t.Errorf("mp4 frame %d: mean abs error %.1f levels, want <= 6", i, mae)
		}
		near(t, "mp4 background", float64(v.Data[i*768+15*16+0]), 128.0/255, 3.0/255)
	}
	small, err := LoadVideo(fixture("video", "tiny.mp4"), VideoConfig{Frames: 4, Height: 8, Width: 8, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	shapeIs(t, "mp4 scaled", small.Shape, 4, 1, 8, 8)

	bad := filepath.Join(t.TempDir(), "bad.mp4")
	os.WriteFile(bad, []byte("this is not a video"), 0o644)
	_, err = LoadVideo(bad, VideoConfig{})
	if err == nil || !strings.Contains(err.Error(), "ffmpeg could not decode") || !strings.Contains(err.Error(), "bad.mp4") {
		t.Errorf("corrupt mp4: %v", err)
	}
}

func TestLoadVideoWithoutFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := LoadVideo(fixture("video", "tiny.mp4"), VideoConfig{})
	if !errors.Is(err, ErrFFmpegMissing) || !strings.Contains(err.Error(), "ffmpeg") || !strings.Contains(err.Error(), "tiny.mp4") {
		t.Errorf("no ffmpeg: %v", err)
	}
	// Frame folders and GIFs need no ffmpeg.
	if _, err := LoadVideo(fixture("video", "anim.gif"), VideoConfig{Frames: 2}); err != nil {
		t.Error(err)
	}
}

func TestLoadVideoErrors(t *testing.T) {
	dir := t.TempDir()
	for i, name := range []string{"rgb4x3.png", "gray4x3.png", "rose.png"} {
		b := readFixture(t, "image", name)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.png", i)), b, 0o644)
	}
	_, err := LoadVideo(dir, VideoConfig{})
	if err == nil || !strings.Contains(err.Error(), "frame f2.png has shape [3 46 70]") {
		t.Errorf("mixed sizes: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "f3.png"), []byte("garbage"), 0o644)
	_, err = LoadVideo(dir, VideoConfig{Height: 4, Width: 4})
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "f3.png") {
		t.Errorf("corrupt frame: %v", err)
	}
	empty := t.TempDir()
	if _, err := LoadVideo(empty, VideoConfig{}); err == nil || !strings.Contains(err.Error(), "no frames") {
		t.Errorf("empty folder: %v", err)
	}
	gif := readFixture(t, "video", "anim.gif")
	if _, err := DecodeGIFVideo(gif[:len(gif)-40], VideoConfig{}); err == nil {
		t.Error("truncated gif: no error")
	}
}
