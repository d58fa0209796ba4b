package data

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// The 4×3 fixtures were written by ImageMagick from these hand-typed pixels
// (testdata/data/make_fixtures.sh).
var (
	gray4x3 = []float32{0, 32, 64, 96, 128, 160, 192, 224, 255, 17, 5, 250}
	rgb4x3  = [][3]float32{
		{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255},
		{0, 0, 0}, {10, 20, 30}, {200, 100, 50}, {128, 128, 128},
		{1, 2, 3}, {250, 251, 252}, {90, 0, 180}, {60, 120, 240},
	}
)

// planarRGB returns rgb4x3 as a [3,3,4] tensor's data, each value ×scale/255.
func planarRGB(scale float32) []float32 {
	out := make([]float32, 36)
	for p, px := range rgb4x3 {
		for c := 0; c < 3; c++ {
			out[c*12+p] = px[c] * scale / 255
		}
	}
	return out
}

// gifRGB is rgb4x3 as ImageMagick wrote it to GIF: its quantiser merged the
// near-black (1,2,3) into (0,0,0) (`convert rgb4x3.gif txt:-` shows it).
func gifRGB() []float32 {
	out := planarRGB(1)
	out[8], out[20], out[32] = 0, 0, 0
	return out
}

func scaled(xs []float32, s float32) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = x * s
	}
	return out
}

func TestLoadImageKnownPixels(t *testing.T) {
	cases := []struct {
		file string
		ch   int
		want []float32
		tol  float64
	}{
		{"gray4x3.png", 1, scaled(gray4x3, 1.0/255), 1e-7},
		{"gray16_4x3.png", 1, scaled(gray4x3, 1.0/255), 1e-6}, // 16-bit: v·257/65535 = v/255
		{"rgb4x3.png", 3, planarRGB(1), 1e-7},
		{"rgb4x3.gif", 3, gifRGB(), 1e-7},                     // palette colours are exact
		{"rgb4x3.jpg", 3, planarRGB(1), 4.0 / 255},            // JPEG q100, no chroma subsampling
		{"rgba4x3.png", 3, planarRGB(128.0 / 255), 1.0 / 255}, // alpha 50 % composited over black
	}
	for _, tc := range cases {
		tt, err := LoadImage(fixture("image", tc.file), ImageConfig{Channels: tc.ch})
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		shapeIs(t, tc.file, tt.Shape, tc.ch, 3, 4)
		sliceNear(t, tc.file, tt.Data, tc.want, tc.tol)
	}
}

func TestLoadImageChannelConversion(t *testing.T) {
	// RGB → gray is BT.601 luma; gray → RGB replicates.
	g, err := LoadImage(fixture("image", "rgb4x3.png"), ImageConfig{Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	for p, px := range rgb4x3 {
		want := (0.299*px[0] + 0.587*px[1] + 0.114*px[2]) / 255
		near(t, fmt.Sprintf("luma[%d]", p), float64(g.Data[p]), float64(want), 1e-6)
	}
	c, err := LoadImage(fixture("image", "gray4x3.png"), ImageConfig{Channels: 3})
	if err != nil {
		t.Fatal(err)
	}
	shapeIs(t, "gray→rgb", c.Shape, 3, 3, 4)
	for ch := 0; ch < 3; ch++ {
		sliceNear(t, "gray→rgb", c.Data[ch*12:(ch+1)*12], scaled(gray4x3, 1.0/255), 1e-7)
	}
}

func TestLoadImageRealPhoto(t *testing.T) {
	// ImageMagick's "rose:" photo; reference pixels from
	// `convert rose.png -format '%[pixel:p{x,y}]' info:`.
	img, err := LoadImage(fixture("image", "rose.png"), ImageConfig{})
	if err != nil {
		t.Fatal(err)
	}
	shapeIs(t, "rose", img.Shape, 3, 46, 70)
	at := func(c, x, y int) float64 { return float64(img.Data[c*46*70+y*70+x]) * 255 }
	for _, px := range []struct{ x, y, r, g, b int }{{0, 0, 48, 47, 45}, {10, 20, 99, 71, 62}, {69, 45, 52, 66, 49}} {
		for c, want := range []int{px.r, px.g, px.b} {
			near(t, fmt.Sprintf("rose(%d,%d)[%d]", px.x, px.y, c), at(c, px.x, px.y), float64(want), 1e-4)
		}
	}
	// The JPEG of the same photo decodes to the same picture within JPEG error.
	jpg, err := LoadImage(fixture("image", "rose.jpg"), ImageConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for i := range jpg.Data {
		sum += math.Abs(float64(jpg.Data[i] - img.Data[i]))
	}
	if mae := sum / float64(len(jpg.Data)) * 255; mae > 4 {
		t.Errorf("rose.jpg mean abs error %.2f levels vs PNG, want <= 4", mae)
	}
}

// readIMText parses ImageMagick's "txt:" pixel enumeration into a [3,H,W] tensor.
func readIMText(t *testing.T, path string, w, h int) []float32 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := make([]float32, 3*w*h)
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		var x, y, r, g, b int
		if _, err := fmt.Sscanf(line, "%d,%d: (%d,%d,%d)", &x, &y, &r, &g, &b); err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		for c, v := range []int{r, g, b} {
			out[c*w*h+y*w+x] = float32(v) / 255
		}
		n++
	}
	if n != w*h {
		t.Fatalf("%s: %d pixels, want %d", path, n, w*h)
	}
	return out
}

func TestImageResizeMatchesImageMagickTriangle(t *testing.T) {
	// x/image/draw's BiLinear and ImageMagick's Triangle filter are the same
	// tent kernel widened by the scale factor, so a 2× downscale must agree
	// up to rounding and edge handling.
	got, err := LoadImage(fixture("image", "rose.png"), ImageConfig{Height: 23, Width: 35})
	if err != nil {
		t.Fatal(err)
	}
	shapeIs(t, "resized", got.Shape, 3, 23, 35)
	want := readIMText(t, fixture("image", "rose_35x23_triangle.txt"), 35, 23)
	var sum, worst float64
	for i := range got.Data {
		d := math.Abs(float64(got.Data[i]-want[i])) * 255
		sum += d
		worst = math.Max(worst, d)
	}
	mae := sum / float64(len(want))
	t.Logf("resize vs ImageMagick Triangle: mean abs %.3f levels, max %.1f", mae, worst)
	if mae > 0.6 || worst > 2 {
		t.Errorf("resize vs ImageMagick: mean abs %.2f levels, max %.1f (want <= 0.6, <= 2)", mae, worst)
	}
}

func TestNormalizeChannels(t *testing.T) {
	img, err := LoadImage(fixture("image", "rgb4x3.png"), ImageConfig{Mean: []float32{0.5, 0.25, 0}, Std: []float32{0.5, 0.25, 2}})
	if err != nil {
		t.Fatal(err)
	}
	raw := planarRGB(1)
	for i, v := range img.Data {
		c := i / 12
		mean, std := []float32{0.5, 0.25, 0}[c], []float32{0.5, 0.25, 2}[c]
		near(t, fmt.Sprintf("norm[%d]", i), float64(v), float64((raw[i]-mean)/std), 1e-6)
	}
	if err := NormalizeChannels(img, []float32{0}, []float32{1}); err == nil {
		t.Error("wrong channel count: no error")
	}
}

func TestCropFlip(t *testing.T) {
	// A 1×3×4 image with values 0..11.
	src := Tensor{Shape: []int{1, 3, 4}, Data: []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}
	centre, err := CropFlip(src, ImageAugment{CropHeight: 1, CropWidth: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sliceNear(t, "centre crop", centre.Data, []float32{5, 6}, 0)

	// Seeded: same seed, same result; flips and crops stay within the image.
	a := ImageAugment{CropHeight: 3, CropWidth: 4, Pad: 1, FlipHorizontal: true}
	seen := map[string]bool{}
	for s := uint64(0); s < 40; s++ {
		x, err := CropFlip(src, a, NewAugmentRand(s))
		if err != nil {
			t.Fatal(err)
		}
		y, _ := CropFlip(src, a, NewAugmentRand(s))
		sliceNear(t, "same seed", y.Data, x.Data, 0)
		seen[fmt.Sprint(x.Data)] = true
		var sum float32
		for _, v := range x.Data {
			sum += v
		}
		if sum > 66 {
			t.Fatalf("crop sum %v exceeds the image's", sum)
		}
	}
	// 3×3 offsets × 2 flips = 18 distinct outcomes; 40 seeds should hit many.
	if len(seen) < 10 {
		t.Errorf("only %d distinct augmentations in 40 seeds", len(seen))
	}
	// The unpadded, unshifted flip is the exact mirror.
	flip, _ := CropFlip(src, ImageAugment{FlipHorizontal: true}, rngFlipping(t))
	sliceNear(t, "mirror", flip.Data, []float32{3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8}, 0)
	if _, err := CropFlip(src, ImageAugment{CropHeight: 4, CropWidth: 4}, nil); err == nil {
		t.Error("crop larger than the image: no error")
	}
}

// rngFlipping returns a generator whose first draws flip horizontally when
// the crop is the whole image (the offsets draw IntN(1) = 0).
func rngFlipping(t *testing.T) *rand.Rand {
	for s := uint64(0); s < 100; s++ {
		r := NewAugmentRand(s)
		r.IntN(1)
		r.IntN(1)
		if r.IntN(2) == 1 {
			return NewAugmentRand(s)
		}
	}
	t.Fatal("no flipping seed")
	return nil
}

func TestAugmentSeedIsSpreadAndStable(t *testing.T) {
	seen := map[uint64]bool{}
	for e := 0; e < 10; e++ {
		for i := 0; i < 100; i++ {
			seen[AugmentSeed(42, e, i)] = true
		}
	}
	if len(seen) != 1000 {
		t.Errorf("%d distinct seeds for 1000 (epoch, index) pairs", len(seen))
	}
	if AugmentSeed(42, 3, 5) != AugmentSeed(42, 3, 5) || AugmentSeed(42, 3, 5) == AugmentSeed(43, 3, 5) {
		t.Error("AugmentSeed not a function of (seed, epoch, index)")
	}
}

func TestImageErrors(t *testing.T) {
	png := readFixture(t, "image", "rgb4x3.png")
	cases := []struct {
		name string
		b    []byte
		cfg  ImageConfig
		want string
		is   error
	}{
		{"truncated", png[:len(png)/2], ImageConfig{}, "decode png", nil},
		{"not an image", []byte("hello, world"), ImageConfig{}, "not a PNG", ErrUnsupported},
		{"channels", png, ImageConfig{Channels: 2}, "channels must be 1 or 3", nil},
		{"size", png, ImageConfig{Height: 4}, "both", nil},
		{"interp", png, ImageConfig{Height: 4, Width: 4, Interpolation: "lanczos9"}, "interpolation", nil},
		{"std", png, ImageConfig{Mean: []float32{0, 0, 0}, Std: []float32{1, 0, 1}}, "std[1]", nil},
	}
	for _, tc := range cases {
		_, err := ImageBytesToTensor(tc.b, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: error %v is not %v", tc.name, err, tc.is)
		}
	}
	_, err := LoadImage(fixture("image", "missing.png"), ImageConfig{})
	var ie *InputError
	if !errors.As(err, &ie) || !strings.HasSuffix(ie.File, "missing.png") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// hiddenImage hides the concrete image type, forcing the generic At path.
type hiddenImage struct{ image.Image }

func TestImageFastPathsMatchGeneric(t *testing.T) {
	for _, name := range []string{"gray4x3.png", "gray16_4x3.png", "rgb4x3.png", "rgba4x3.png", "rgb4x3.gif", "rose.jpg"} {
		img, _, err := DecodeImage(readFixture(t, "image", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range []int{1, 3} {
			fast, err := ImageToTensor(img, ImageConfig{Channels: ch})
			if err != nil {
				t.Fatal(err)
			}
			slow, _ := ImageToTensor(hiddenImage{img}, ImageConfig{Channels: ch})
			tol := 1e-6
			if _, ok := img.(*image.YCbCr); ok {
				tol = 1.0 / 255 // the fast path converts YCbCr→RGB in 8 bits, as libjpeg does
			}
			sliceNear(t, fmt.Sprintf("%s/%d (%T)", name, ch, img), fast.Data, slow.Data, tol)
		}
	}
}
