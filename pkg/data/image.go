package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // register GIF with image.Decode
	_ "image/jpeg"
	_ "image/png"
	"io"
	"math/rand/v2"
	"os"

	"golang.org/x/image/draw"
)

// MaxImagePixels bounds width×height of a decoded image (or video frame)
// so that a corrupt or hostile header cannot make a decoder allocate
// gigabytes. 1<<26 pixels is 8192×8192.
const MaxImagePixels = 1 << 26

// ImageConfig says how an image file becomes a [C,H,W] tensor.
//
// Pipeline: decode (PNG, JPEG, GIF first frame) → convert to Channels →
// resize to Height×Width (when set) → scale to [0,1] → optional augmentation
// (see ImageAugment) → per-channel normalisation (x−Mean[c])/Std[c].
type ImageConfig struct {
	// Channels of the output: 1 (gray, ITU-R BT.601 luma 0.299R+0.587G+0.114B)
	// or 3 (RGB; a gray source is replicated). 0 means 3.
	Channels int `json:"channels,omitempty"`
	// Height and Width of the output in pixels. Both 0 keeps the source size
	// (then every image of a batch must already share it); otherwise both must
	// be set, and the image is stretched to exactly Height×Width.
	Height int `json:"height,omitempty"`
	Width  int `json:"width,omitempty"`
	// Interpolation for resizing: "bilinear" (default), "catmullrom",
	// "approxbilinear" or "nearest". Downscaling with bilinear/catmullrom
	// widens the kernel, so it low-pass filters (no aliasing).
	Interpolation string `json:"interpolation,omitempty"`
	// Mean and Std are the per-channel normalisation, applied after scaling
	// to [0,1]. Both empty: no normalisation (or the dataset statistics when
	// Normalize is "dataset"). Otherwise both have Channels entries, Std > 0.
	Mean []float32 `json:"mean,omitempty"`
	Std  []float32 `json:"std,omitempty"`
	// Normalize "dataset" computes Mean/Std per channel on the training split
	// (see Stats); "" uses Mean/Std as given.
	Normalize string `json:"normalize,omitempty"`
	// Augment holds the seeded training augmentations.
	Augment ImageAugment `json:"augment,omitempty"`
}

// ImageAugment are random image augmentations driven by an explicit seed, so
// that the same (seed, epoch, sample) always yields the same image.
type ImageAugment struct {
	// CropHeight×CropWidth is the output size of a random crop (training) or
	// centre crop (evaluation). 0 means no crop.
	CropHeight int `json:"crop_height,omitempty"`
	CropWidth  int `json:"crop_width,omitempty"`
	// Pad adds this many zero (black, before normalisation) pixels on every
	// side before cropping, as in the usual CIFAR recipe. Training only.
	Pad int `json:"pad,omitempty"`
	// FlipHorizontal mirrors left–right with probability 0.5 (training only).
	FlipHorizontal bool `json:"flip_horizontal,omitempty"`
	// FlipVertical mirrors top–bottom with probability 0.5 (training only).
	FlipVertical bool `json:"flip_vertical,omitempty"`
}

// channels returns the effective channel count.
func (c ImageConfig) channels() int {
	if c.Channels == 0 {
		return 3
	}
	return c.Channels
}

// Validate checks the configuration without touching any file.
func (c ImageConfig) Validate() error {
	ch := c.channels()
	if ch != 1 && ch != 3 {
		return fmt.Errorf("image channels must be 1 or 3, got %d", c.Channels)
	}
	if c.Height < 0 || c.Width < 0 || (c.Height == 0) != (c.Width == 0) {
		return fmt.Errorf("image height and width must both be positive or both 0, got %dx%d", c.Height, c.Width)
	}
	if _, err := interpolator(c.Interpolation); err != nil {
		return err
	}
	if len(c.Mean) != len(c.Std) || (len(c.Mean) != 0 && len(c.Mean) != ch) {
		return fmt.Errorf("image mean/std need %d entries each, got %d and %d", ch, len(c.Mean), len(c.Std))
	}
	for i, s := range c.Std {
		if !(s > 0) {
			return fmt.Errorf("image std[%d] = %v must be > 0", i, s)
		}
	}
	if c.Normalize != "" && c.Normalize != "dataset" {
		return fmt.Errorf("image normalize must be \"\" or \"dataset\", got %q", c.Normalize)
	}
	if c.Normalize == "dataset" && len(c.Mean) != 0 {
		return fmt.Errorf("image normalize \"dataset\" and explicit mean/std exclude each other")
	}
	a := c.Augment
	if a.CropHeight < 0 || a.CropWidth < 0 || (a.CropHeight == 0) != (a.CropWidth == 0) || a.Pad < 0 {
		return fmt.Errorf("image crop %dx%d pad %d: crop sizes must both be positive or both 0, pad >= 0", a.CropHeight, a.CropWidth, a.Pad)
	}
	if a.CropHeight > 0 && c.Height > 0 && (a.CropHeight > c.Height+2*a.Pad || a.CropWidth > c.Width+2*a.Pad) {
		return fmt.Errorf("image crop %dx%d larger than the padded image %dx%d", a.CropHeight, a.CropWidth, c.Height+2*a.Pad, c.Width+2*a.Pad)
	}
	return nil
}

// OutputShape is the [C,H,W] shape of a processed image, or nil when it
// depends on the source size (Height/Width 0 and no crop).
func (c ImageConfig) OutputShape() []int {
	ch := c.channels()
	if c.Augment.CropHeight > 0 {
		return []int{ch, c.Augment.CropHeight, c.Augment.CropWidth}
	}
	if c.Height > 0 {
		return []int{ch, c.Height, c.Width}
	}
	return nil
}

func interpolator(name string) (draw.Interpolator, error) {
	switch name {
	case "", "bilinear":
		return draw.BiLinear, nil
	case "catmullrom":
		return draw.CatmullRom, nil
	case "approxbilinear":
		return draw.ApproxBiLinear, nil
	case "nearest":
		return draw.NearestNeighbor, nil
	}
	return nil, fmt.Errorf("unknown image interpolation %q (bilinear, catmullrom, approxbilinear, nearest)", name)
}

// DecodeImage decodes a PNG, JPEG or GIF (first frame) from b, refusing
// images larger than MaxImagePixels before allocating them.
func DecodeImage(b []byte) (image.Image, string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return nil, "", fmt.Errorf("not a PNG, JPEG or GIF image: %w", ErrUnsupported)
		}
		return nil, "", fmt.Errorf("decode image header: %w", err)
	}
	if err := checkPixels(cfg.Width, cfg.Height); err != nil {
		return nil, format, err
	}
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, format, fmt.Errorf("decode %s: %w", format, err)
	}
	return img, format, nil
}

func checkPixels(w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("image has empty size %dx%d", w, h)
	}
	if int64(w)*int64(h) > MaxImagePixels {
		return fmt.Errorf("image %dx%d exceeds %d pixels", w, h, MaxImagePixels)
	}
	return nil
}

// LoadImage reads and processes the image file at path (no augmentation,
// normalisation by cfg.Mean/Std only). Errors are *InputError naming path.
func LoadImage(path string, cfg ImageConfig) (Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Tensor{}, inputErr(path, 0, "", err)
	}
	t, err := ImageBytesToTensor(b, cfg)
	return t, inputErr(path, 0, "", err)
}

// ReadImage is LoadImage from a reader.
func ReadImage(r io.Reader, cfg ImageConfig) (Tensor, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return Tensor{}, err
	}
	return ImageBytesToTensor(b, cfg)
}

// ImageBytesToTensor decodes encoded image bytes and applies cfg (resize,
// channels, scaling and cfg.Mean/Std normalisation; no augmentation).
func ImageBytesToTensor(b []byte, cfg ImageConfig) (Tensor, error) {
	if err := cfg.Validate(); err != nil {
		return Tensor{}, err
	}
	img, _, err := DecodeImage(b)
	if err != nil {
		return Tensor{}, err
	}
	t, err := ImageToTensor(img, cfg)
	if err != nil {
		return Tensor{}, err
	}
	if cfg.Augment.CropHeight > 0 {
		if t, err = CropFlip(t, cfg.Augment, nil); err != nil {
			return Tensor{}, err
		}
	}
	if len(cfg.Mean) > 0 {
		err = NormalizeChannels(t, cfg.Mean, cfg.Std)
	}
	return t, err
}

// ImageToTensor converts img to a [C,H,W] tensor with values in [0,1]:
// channels converted, resized per cfg; no normalisation or augmentation.
// Transparent pixels are composited over black (premultiplied alpha).
func ImageToTensor(img image.Image, cfg ImageConfig) (Tensor, error) {
	if err := cfg.Validate(); err != nil {
		return Tensor{}, err
	}
	b := img.Bounds()
	if err := checkPixels(b.Dx(), b.Dy()); err != nil {
		return Tensor{}, err
	}
	if cfg.Height > 0 && (cfg.Height != b.Dy() || cfg.Width != b.Dx()) {
		interp, _ := interpolator(cfg.Interpolation)
		dst := image.NewRGBA(image.Rect(0, 0, cfg.Width, cfg.Height))
		interp.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
		img = dst
		b = dst.Bounds()
	}
	ch := cfg.channels()
	H, W := b.Dy(), b.Dx()
	t := Tensor{Shape: []int{ch, H, W}, Data: make([]float32, ch*H*W)}
	plane := H * W
	const inv8 = 1.0 / 255
	const inv16 = 1.0 / 65535
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < H; y++ {
			row := m.Pix[(y)*m.Stride : y*m.Stride+W]
			for x, v := range row {
				f := float32(v) * inv8
				for c := 0; c < ch; c++ {
					t.Data[c*plane+y*W+x] = f
				}
			}
		}
	case *image.RGBA:
		for y := 0; y < H; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*W]
			for x := 0; x < W; x++ {
				r, g, bl := float32(row[4*x])*inv8, float32(row[4*x+1])*inv8, float32(row[4*x+2])*inv8
				setPixel(t.Data, ch, plane, y*W+x, r, g, bl)
			}
		}
	case *image.NRGBA: // PNG with alpha: premultiply, as RGBA() does
		for y := 0; y < H; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*W]
			for x := 0; x < W; x++ {
				a := float32(row[4*x+3]) * inv8 * inv8
				setPixel(t.Data, ch, plane, y*W+x, float32(row[4*x])*a, float32(row[4*x+1])*a, float32(row[4*x+2])*a)
			}
		}
	case *image.YCbCr: // JPEG
		for y := 0; y < H; y++ {
			for x := 0; x < W; x++ {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				setPixel(t.Data, ch, plane, y*W+x, float32(r)*inv8, float32(g)*inv8, float32(bl)*inv8)
			}
		}
	case *image.Paletted: // GIF
		pal := make([][3]float32, len(m.Palette))
		for i, c := range m.Palette {
			r, g, bl, _ := c.RGBA()
			pal[i] = [3]float32{float32(r) * inv16, float32(g) * inv16, float32(bl) * inv16}
		}
		for y := 0; y < H; y++ {
			for x, idx := range m.Pix[y*m.Stride : y*m.Stride+W] {
				var p [3]float32 // an index outside the palette reads as black, as At does
				if int(idx) < len(pal) {
					p = pal[idx]
				}
				setPixel(t.Data, ch, plane, y*W+x, p[0], p[1], p[2])
			}
		}
	default:
		for y := 0; y < H; y++ {
			for x := 0; x < W; x++ {
				r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				setPixel(t.Data, ch, plane, y*W+x, float32(r)*inv16, float32(g)*inv16, float32(bl)*inv16)
			}
		}
	}
	return t, nil
}

// setPixel writes one RGB pixel (values in [0,1]) at flat offset off of each
// plane, converting to luma when the output has one channel.
func setPixel(dst []float32, ch, plane, off int, r, g, b float32) {
	if ch == 1 {
		dst[off] = luma(r, g, b)
		return
	}
	dst[off] = r
	dst[plane+off] = g
	dst[2*plane+off] = b
}

// luma is ITU-R BT.601 luma, the weights of Go's color.GrayModel.
func luma(r, g, b float32) float32 { return 0.299*r + 0.587*g + 0.114*b }

// NormalizeChannels applies (x−mean[c])/std[c] in place to a [C,...] tensor.
func NormalizeChannels(t Tensor, mean, std []float32) error {
	if len(t.Shape) == 0 || len(mean) != t.Shape[0] || len(std) != t.Shape[0] {
		return fmt.Errorf("normalise: tensor %v needs %d means and stds, got %d and %d", t.Shape, firstDim(t.Shape), len(mean), len(std))
	}
	plane := len(t.Data) / t.Shape[0]
	for c := range mean {
		if !(std[c] > 0) {
			return fmt.Errorf("normalise: std[%d] = %v must be > 0", c, std[c])
		}
		m, inv := mean[c], 1/std[c]
		seg := t.Data[c*plane : (c+1)*plane]
		for i, v := range seg {
			seg[i] = (v - m) * inv
		}
	}
	return nil
}

func firstDim(s []int) int {
	if len(s) == 0 {
		return 0
	}
	return s[0]
}

// AugmentSeed derives the augmentation seed of one sample in one epoch from
// the run seed, so augmentations are reproducible and independent of the
// order or goroutine that decodes the sample (SplitMix64 finaliser).
func AugmentSeed(seed uint64, epoch, index int) uint64 {
	z := seed ^ (uint64(epoch)+1)*0x9E3779B97F4A7C15 ^ (uint64(index)+1)*0xBF58476D1CE4E5B9
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// CropFlip applies a crop and flips to a [C,H,W] image tensor and returns a
// new tensor. With rng == nil (evaluation) it centre-crops to
// a.CropHeight×a.CropWidth (no padding, no flips); with an rng (training) it
// zero-pads by a.Pad, crops at a uniformly random offset and flips with
// probability 0.5 per enabled axis. The rng draws are always made in the same
// order, so one seed gives one result.
func CropFlip(t Tensor, a ImageAugment, rng *rand.Rand) (Tensor, error) {
	if len(t.Shape) != 3 {
		return Tensor{}, fmt.Errorf("crop/flip: want image [C,H,W], got shape %v", t.Shape)
	}
	C, H, W := t.Shape[0], t.Shape[1], t.Shape[2]
	pad := a.Pad
	if rng == nil {
		pad = 0
	}
	ch, cw := a.CropHeight, a.CropWidth
	if ch == 0 {
		ch, cw = H+2*pad, W+2*pad
	}
	PH, PW := H+2*pad, W+2*pad
	if ch > PH || cw > PW || ch <= 0 || cw <= 0 {
		return Tensor{}, fmt.Errorf("crop %dx%d does not fit image %dx%d (pad %d)", ch, cw, H, W, pad)
	}
	oy, ox := (PH-ch)/2, (PW-cw)/2
	flipH, flipV := false, false
	if rng != nil {
		oy = rng.IntN(PH - ch + 1)
		ox = rng.IntN(PW - cw + 1)
		flipH = rng.IntN(2) == 1 && a.FlipHorizontal
		flipV = rng.IntN(2) == 1 && a.FlipVertical
	}
	out := Tensor{Shape: []int{C, ch, cw}, Data: make([]float32, C*ch*cw)}
	for c := 0; c < C; c++ {
		for y := 0; y < ch; y++ {
			sy := oy + y - pad
			dy := y
			if flipV {
				dy = ch - 1 - y
			}
			if sy < 0 || sy >= H {
				continue // zero padding
			}
			src := t.Data[(c*H+sy)*W : (c*H+sy+1)*W]
			dst := out.Data[(c*ch+dy)*cw : (c*ch+dy+1)*cw]
			for x := 0; x < cw; x++ {
				sx := ox + x - pad
				if sx < 0 || sx >= W {
					continue
				}
				dx := x
				if flipH {
					dx = cw - 1 - x
				}
				dst[dx] = src[sx]
			}
		}
	}
	return out, nil
}

// NewAugmentRand returns the random source CropFlip and AddNoise use for a
// given augmentation seed (PCG).
func NewAugmentRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x6A09E667F3BCC909))
}
