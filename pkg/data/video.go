package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// VideoConfig says how a video becomes a [F,C,H,W] tensor (frames,
// channels, height, width). Sources: a folder of frame images (PNG, JPEG,
// GIF; sorted by name with numbers compared numerically, so frame_2 comes
// before frame_10), an animated GIF (frames composited as a browser shows
// them), or any other file decoded by an ffmpeg subprocess (MP4, WebM, AVI…).
type VideoConfig struct {
	// Frames is the fixed number of frames, picked uniformly over the video
	// (see UniformIndices; a video with fewer frames repeats some). 0 keeps
	// every frame (then every video of a dataset must have the same count).
	Frames int `json:"frames,omitempty"`
	// Channels, Height, Width, Interpolation, Mean, Std, Normalize apply to
	// each frame exactly as ImageConfig does (augmentations are not applied).
	Channels      int       `json:"channels,omitempty"`
	Height        int       `json:"height,omitempty"`
	Width         int       `json:"width,omitempty"`
	Interpolation string    `json:"interpolation,omitempty"`
	Mean          []float32 `json:"mean,omitempty"`
	Std           []float32 `json:"std,omitempty"`
	Normalize     string    `json:"normalize,omitempty"`
	// FFmpeg is the ffmpeg executable; "" looks up "ffmpeg" on PATH. When
	// Height/Width are set, ffmpeg scales the frames itself (bilinear), so
	// long videos never hold full-size frames in memory.
	FFmpeg string `json:"ffmpeg,omitempty"`
}

func (c VideoConfig) image() ImageConfig {
	return ImageConfig{Channels: c.Channels, Height: c.Height, Width: c.Width, Interpolation: c.Interpolation,
		Mean: c.Mean, Std: c.Std, Normalize: c.Normalize}
}

// Validate checks the configuration.
func (c VideoConfig) Validate() error {
	if c.Frames < 0 || c.Frames > maxVideoFrames {
		return fmt.Errorf("video frames %d out of range [0,%d]", c.Frames, maxVideoFrames)
	}
	return c.image().Validate()
}

// OutputShape is [Frames, C, H, W] when all are fixed, else nil.
func (c VideoConfig) OutputShape() []int {
	img := c.image().OutputShape()
	if c.Frames == 0 || img == nil {
		return nil
	}
	return append([]int{c.Frames}, img...)
}

// Limits on what one video may expand to.
const (
	maxVideoFrames = 100000
	maxVideoBytes  = 1 << 30 // raw RGB bytes held while decoding through ffmpeg
)

// UniformIndices picks k of n frames uniformly: the centre of each of k
// equal segments, index floor((i+0.5)·n/k). With k > n some frames repeat;
// k == 0 returns 0..n−1.
func UniformIndices(n, k int) []int {
	if k == 0 {
		k = n
	}
	out := make([]int, k)
	for i := range out {
		out[i] = int((int64(2*i+1) * int64(n)) / int64(2*k))
	}
	return out
}

// LoadVideo reads the video at path. Errors are *InputError naming path
// (and the frame file, for a folder).
func LoadVideo(path string, cfg VideoConfig) (Tensor, error) {
	if err := cfg.Validate(); err != nil {
		return Tensor{}, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return Tensor{}, inputErr(path, 0, "", err)
	}
	var t Tensor
	switch {
	case st.IsDir():
		t, err = loadFrameFolder(path, cfg)
	case strings.EqualFold(filepath.Ext(path), ".gif"):
		var b []byte
		if b, err = os.ReadFile(path); err == nil {
			t, err = DecodeGIFVideo(b, cfg)
		}
	default:
		t, err = loadFFmpeg(path, cfg)
	}
	if err != nil {
		return Tensor{}, inputErr(path, 0, "", err)
	}
	return t, nil
}

// stackFrames turns selected frames into one [F,C,H,W] tensor.
func stackFrames(n int, cfg VideoConfig, frame func(i int) (image.Image, string, error)) (Tensor, error) {
	if n == 0 {
		return Tensor{}, errors.New("video has no frames")
	}
	idx := UniformIndices(n, cfg.Frames)
	icfg := cfg.image()
	var out Tensor
	var first []int
	for f, i := range idx {
		img, name, err := frame(i)
		if err != nil {
			return Tensor{}, err
		}
		t, err := ImageToTensor(img, icfg)
		if err != nil {
			return Tensor{}, fmt.Errorf("frame %s: %w", name, err)
		}
		if f == 0 {
			first = t.Shape
			out = Tensor{Shape: append([]int{len(idx)}, t.Shape...), Data: make([]float32, 0, len(idx)*len(t.Data))}
		} else if !sameShape(t.Shape, first) {
			return Tensor{}, fmt.Errorf("frame %s has shape %v, first frame %v (set video height/width to resize)", name, t.Shape, first)
		}
		if len(icfg.Mean) > 0 {
			if err := NormalizeChannels(t, icfg.Mean, icfg.Std); err != nil {
				return Tensor{}, err
			}
		}
		out.Data = append(out.Data, t.Data...)
	}
	return out, nil
}

func loadFrameFolder(dir string, cfg VideoConfig) (Tensor, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Tensor{}, err
	}
	var names []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".png", ".jpg", ".jpeg", ".gif":
			if !e.IsDir() {
				names = append(names, e.Name())
			}
		}
	}
	if len(names) > maxVideoFrames {
		return Tensor{}, fmt.Errorf("frame folder has %d frames, more than %d", len(names), maxVideoFrames)
	}
	sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
	return stackFrames(len(names), cfg, func(i int) (image.Image, string, error) {
		p := filepath.Join(dir, names[i])
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, names[i], err
		}
		img, _, err := DecodeImage(b)
		if err != nil {
			return nil, names[i], inputErr(p, 0, "", err)
		}
		return img, names[i], nil
	})
}

// naturalLess orders strings with embedded numbers by numeric value.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitPrefix(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// DecodeGIFVideo decodes every frame of an animated GIF, compositing each
// frame over the previous canvas and honouring the disposal methods, so a
// frame stored as a small changed rectangle comes out as the full picture.
// The canvas starts transparent (black after compositing over black).
func DecodeGIFVideo(b []byte, cfg VideoConfig) (Tensor, error) {
	if err := cfg.Validate(); err != nil {
		return Tensor{}, err
	}
	c, err := gif.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return Tensor{}, fmt.Errorf("decode gif header: %w", err)
	}
	if err := checkPixels(c.Width, c.Height); err != nil {
		return Tensor{}, err
	}
	g, err := gif.DecodeAll(bytes.NewReader(b))
	if err != nil {
		return Tensor{}, fmt.Errorf("decode gif: %w", err)
	}
	n := len(g.Image)
	if n > maxVideoFrames || int64(n)*int64(c.Width)*int64(c.Height) > maxVideoBytes {
		return Tensor{}, fmt.Errorf("gif has %d frames of %dx%d, too many", n, c.Width, c.Height)
	}
	canvasRect := image.Rect(0, 0, c.Width, c.Height)
	// Composite every frame in order; keep snapshots of the selected ones.
	want := map[int]bool{}
	for _, i := range UniformIndices(n, cfg.Frames) {
		want[i] = true
	}
	snap := map[int]*image.RGBA{}
	canvas := image.NewRGBA(canvasRect)
	for i, fr := range g.Image {
		var saved *image.RGBA
		disposal := byte(0)
		if i < len(g.Disposal) {
			disposal = g.Disposal[i]
		}
		if disposal == gif.DisposalPrevious {
			saved = cloneRGBA(canvas)
		}
		draw.Draw(canvas, fr.Bounds().Intersect(canvasRect), fr, fr.Bounds().Min, draw.Over)
		if want[i] {
			snap[i] = cloneRGBA(canvas)
		}
		switch disposal {
		case gif.DisposalBackground:
			draw.Draw(canvas, fr.Bounds().Intersect(canvasRect), image.Transparent, image.Point{}, draw.Src)
		case gif.DisposalPrevious:
			canvas = saved
		}
	}
	return stackFrames(n, cfg, func(i int) (image.Image, string, error) {
		return snap[i], strconv.Itoa(i), nil
	})
}

func cloneRGBA(m *image.RGBA) *image.RGBA {
	c := *m
	c.Pix = append([]uint8(nil), m.Pix...)
	return &c
}

// loadFFmpeg decodes a video with ffmpeg into raw PPM frames on a pipe.
func loadFFmpeg(path string, cfg VideoConfig) (Tensor, error) {
	exe := cfg.FFmpeg
	if exe == "" {
		exe = "ffmpeg"
	}
	bin, err := exec.LookPath(exe)
	if err != nil {
		return Tensor{}, fmt.Errorf("%w (looked for %q; needed for %s files)", ErrFFmpegMissing, exe, filepath.Ext(path))
	}
	args := []string{"-nostdin", "-v", "error", "-i", path, "-map", "0:v:0"}
	if cfg.Height > 0 {
		args = append(args, "-vf", fmt.Sprintf("scale=%d:%d:flags=bilinear", cfg.Width, cfg.Height))
	}
	args = append(args, "-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "-")
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Tensor{}, err
	}
	if err := cmd.Start(); err != nil {
		return Tensor{}, fmt.Errorf("start ffmpeg: %w", err)
	}
	frames, readErr := readPPMStream(stdout)
	if readErr != nil {
		_ = cmd.Process.Kill()
	}
	waitErr := cmd.Wait()
	if waitErr != nil && readErr == nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = waitErr.Error()
		}
		return Tensor{}, fmt.Errorf("ffmpeg could not decode the video: %s", msg)
	}
	if readErr != nil {
		return Tensor{}, fmt.Errorf("reading ffmpeg output: %w", readErr)
	}
	return stackFrames(len(frames), cfg, func(i int) (image.Image, string, error) {
		return frames[i], strconv.Itoa(i), nil
	})
}

// limitedWriter keeps the first n bytes written to it and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

// Write keeps what fits and reports success, so ffmpeg never blocks on stderr.
func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// readPPMStream reads concatenated binary PPM (P6, maxval 255) images.
func readPPMStream(r io.Reader) ([]*image.RGBA, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var frames []*image.RGBA
	total := 0
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return frames, nil
		}
		img, err := readPPM(br)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", len(frames), err)
		}
		total += len(img.Pix)
		if total > maxVideoBytes || len(frames) >= maxVideoFrames {
			return nil, fmt.Errorf("video exceeds %d frames or %d bytes decoded: set video height/width/frames smaller", maxVideoFrames, maxVideoBytes)
		}
		frames = append(frames, img)
	}
}

// readPPM reads one binary PPM (P6) image with maxval 255.
func readPPM(br *bufio.Reader) (*image.RGBA, error) {
	var hdr [3]int // width, height, maxval
	magic := make([]byte, 2)
	if _, err := io.ReadFull(br, magic); err != nil {
		return nil, ErrTruncated
	}
	if string(magic) != "P6" {
		return nil, fmt.Errorf("not a binary PPM frame (magic %q)", magic)
	}
	for k := range hdr {
		v, err := ppmInt(br)
		if err != nil {
			return nil, err
		}
		hdr[k] = v
	}
	w, h, maxval := hdr[0], hdr[1], hdr[2]
	if maxval != 255 {
		return nil, fmt.Errorf("PPM maxval %d: %w", maxval, ErrUnsupported)
	}
	if err := checkPixels(w, h); err != nil {
		return nil, err
	}
	// exactly one whitespace byte follows maxval (consumed by ppmInt)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	row := make([]byte, 3*w)
	for y := 0; y < h; y++ {
		if _, err := io.ReadFull(br, row); err != nil {
			return nil, fmt.Errorf("PPM pixels: %w", ErrTruncated)
		}
		p := img.Pix[y*img.Stride:]
		for x := 0; x < w; x++ {
			p[4*x], p[4*x+1], p[4*x+2], p[4*x+3] = row[3*x], row[3*x+1], row[3*x+2], 255
		}
	}
	return img, nil
}

// ppmInt reads a decimal header field, skipping whitespace and # comments
// before it and consuming the one whitespace byte after it.
func ppmInt(br *bufio.Reader) (int, error) {
	var c byte
	var err error
	for {
		if c, err = br.ReadByte(); err != nil {
			return 0, ErrTruncated
		}
		if c == '#' {
			if _, err := br.ReadString('\n'); err != nil {
				return 0, ErrTruncated
			}
			continue
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			break
		}
	}
	v := 0
	for n := 0; ; n++ {
		if c < '0' || c > '9' || n > 9 {
			return 0, fmt.Errorf("bad PPM header byte %q", c)
		}
		v = v*10 + int(c-'0')
		if c, err = br.ReadByte(); err != nil {
			return 0, ErrTruncated
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			return v, nil
		}
	}
}
