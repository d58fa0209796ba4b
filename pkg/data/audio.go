package data

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
)

// Waveform is decoded audio: one slice of samples per channel (planar), each
// sample a float in [-1, 1) for PCM (float WAVs may exceed that range).
type Waveform struct {
	Rate     int         // samples per second
	Channels [][]float32 // [channel][time]
	// Bits is the stored sample size (8, 16, 24, 32 or 64) and Float whether
	// the samples were stored as IEEE floats.
	Bits  int
	Float bool
}

// Len is the number of samples per channel.
func (w Waveform) Len() int {
	if len(w.Channels) == 0 {
		return 0
	}
	return len(w.Channels[0])
}

// Mono mixes all channels down to one by averaging them. A mono waveform is
// returned as is (not copied).
func (w Waveform) Mono() []float32 {
	if len(w.Channels) == 1 {
		return w.Channels[0]
	}
	out := make([]float32, w.Len())
	if len(w.Channels) == 0 {
		return out
	}
	inv := 1 / float32(len(w.Channels))
	for _, ch := range w.Channels {
		for i, v := range ch {
			out[i] += v
		}
	}
	for i := range out {
		out[i] *= inv
	}
	return out
}

// WAV format tags.
const (
	wavFormatPCM        = 1
	wavFormatFloat      = 3
	wavFormatExtensible = 0xFFFE
	maxWAVChannels      = 64
	maxWAVRate          = 1 << 20
)

// DecodeWAV parses a RIFF/WAVE file held in b: PCM 8 (unsigned), 16, 24 and
// 32-bit integer and 32/64-bit IEEE float, including WAVE_FORMAT_EXTENSIBLE
// headers. Integers are scaled by 1/2^(bits−1) (the convention of sox and
// libsndfile). A data chunk shorter than its header says is ErrTruncated,
// never silently shortened audio; NaN or infinite float samples are an error.
//
// Why not go-audio/wav: v1.1.0 returns float WAVs as integer bit patterns,
// decodes truncated files without error and ignores short reads, so it can
// silently alter a sample. Tests use it as an independent reference for PCM.
func DecodeWAV(b []byte) (Waveform, error) {
	if len(b) < 12 {
		return Waveform{}, fmt.Errorf("WAV header: %w", ErrTruncated)
	}
	if string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		if string(b[0:4]) == "RF64" {
			return Waveform{}, fmt.Errorf("RF64 WAV: %w", ErrUnsupported)
		}
		return Waveform{}, fmt.Errorf("not a RIFF/WAVE file")
	}
	var (
		haveFmt   bool
		format    int
		nch, rate int
		align     int
		bits      int
	)
	pos := 12
	for {
		if pos+8 > len(b) {
			if !haveFmt {
				return Waveform{}, fmt.Errorf("WAV has no fmt chunk: %w", ErrTruncated)
			}
			return Waveform{}, fmt.Errorf("WAV has no data chunk: %w", ErrTruncated)
		}
		id := string(b[pos : pos+4])
		size := int64(binary.LittleEndian.Uint32(b[pos+4:]))
		body := int64(pos + 8)
		switch id {
		case "fmt ":
			if size < 16 || body+size > int64(len(b)) {
				return Waveform{}, fmt.Errorf("WAV fmt chunk of %d bytes: %w", size, ErrTruncated)
			}
			f := b[body : body+size]
			format = int(binary.LittleEndian.Uint16(f[0:]))
			nch = int(binary.LittleEndian.Uint16(f[2:]))
			rate = int(binary.LittleEndian.Uint32(f[4:]))
			align = int(binary.LittleEndian.Uint16(f[12:]))
			bits = int(binary.LittleEndian.Uint16(f[14:]))
			if format == wavFormatExtensible {
				if size < 40 {
					return Waveform{}, fmt.Errorf("WAV extensible fmt chunk of %d bytes, want 40", size)
				}
				format = int(binary.LittleEndian.Uint16(f[24:])) // first two bytes of the sub-format GUID
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return Waveform{}, fmt.Errorf("WAV data chunk before fmt chunk")
			}
			avail := int64(len(b)) - body
			if size > avail {
				return Waveform{}, fmt.Errorf("WAV data chunk declares %d bytes, file has %d: %w", size, avail, ErrTruncated)
			}
			return decodeWAVData(b[body:body+size], format, nch, rate, align, bits)
		}
		if body+size > int64(len(b)) {
			return Waveform{}, fmt.Errorf("WAV chunk %q of %d bytes: %w", id, size, ErrTruncated)
		}
		pos = int(body + size + size&1) // chunks are padded to even sizes
	}
}

func decodeWAVData(d []byte, format, nch, rate, align, bits int) (Waveform, error) {
	if nch < 1 || nch > maxWAVChannels {
		return Waveform{}, fmt.Errorf("WAV with %d channels (want 1..%d)", nch, maxWAVChannels)
	}
	if rate < 1 || rate > maxWAVRate {
		return Waveform{}, fmt.Errorf("WAV sample rate %d Hz out of range", rate)
	}
	isFloat := false
	switch format {
	case wavFormatPCM:
		if bits != 8 && bits != 16 && bits != 24 && bits != 32 {
			return Waveform{}, fmt.Errorf("%d-bit PCM WAV: %w (8, 16, 24, 32 are read)", bits, ErrUnsupported)
		}
	case wavFormatFloat:
		if bits != 32 && bits != 64 {
			return Waveform{}, fmt.Errorf("%d-bit float WAV: %w (32, 64 are read)", bits, ErrUnsupported)
		}
		isFloat = true
	default:
		return Waveform{}, fmt.Errorf("WAV format tag %#x: %w (PCM and IEEE float are read; convert with sox or ffmpeg)", format, ErrUnsupported)
	}
	bps := bits / 8
	if align != nch*bps {
		return Waveform{}, fmt.Errorf("WAV block align %d, want %d for %d channels of %d bits", align, nch*bps, nch, bits)
	}
	if len(d)%align != 0 {
		return Waveform{}, fmt.Errorf("WAV data of %d bytes is not a whole number of %d-byte frames: %w", len(d), align, ErrTruncated)
	}
	n := len(d) / align
	w := Waveform{Rate: rate, Channels: make([][]float32, nch), Bits: bits, Float: isFloat}
	for c := range w.Channels {
		w.Channels[c] = make([]float32, n)
	}
	for i := 0; i < n; i++ {
		frame := d[i*align:]
		for c := 0; c < nch; c++ {
			s := frame[c*bps:]
			var v float32
			switch {
			case isFloat && bits == 32:
				v = math.Float32frombits(binary.LittleEndian.Uint32(s))
			case isFloat:
				v = float32(math.Float64frombits(binary.LittleEndian.Uint64(s)))
			case bits == 8:
				v = float32(int(s[0])-128) / 128
			case bits == 16:
				v = float32(int16(binary.LittleEndian.Uint16(s))) / (1 << 15)
			case bits == 24:
				u := int32(uint32(s[0])<<8|uint32(s[1])<<16|uint32(s[2])<<24) >> 8
				v = float32(u) / (1 << 23)
			default:
				v = float32(float64(int32(binary.LittleEndian.Uint32(s))) / (1 << 31))
			}
			if isFloat && (math.IsNaN(float64(v)) || math.IsInf(float64(v), 0)) {
				return Waveform{}, fmt.Errorf("WAV sample %d of channel %d is %v", i, c, v)
			}
			w.Channels[c][i] = v
		}
	}
	return w, nil
}

// AudioConfig says how a WAV file becomes an audio tensor.
//
// Pipeline: decode → channel handling → resample to SampleRate →
// pad/trim to Length → optional seeded noise at SNR (training only).
type AudioConfig struct {
	// SampleRate in Hz the model expects; files at another rate are
	// resampled with a band-limited windowed-sinc filter. 0 keeps the file's
	// rate (every file of a dataset should then share it).
	SampleRate int `json:"sample_rate,omitempty"`
	// Channels: 0 mixes all channels down to mono (output [L]); n > 0 requires
	// files with exactly n channels (output [n,L]), a different count is an error.
	Channels int `json:"channels,omitempty"`
	// Length in samples at SampleRate: longer audio is trimmed, shorter is
	// zero-padded. 0 keeps the natural length.
	Length int `json:"length,omitempty"`
	// Align chooses what to keep when trimming and where to pad: "start"
	// (default: keep the beginning, pad at the end) or "center".
	Align string `json:"align,omitempty"`
	// Resample tunes the resampling filter; the zero value is high quality.
	Resample ResampleConfig `json:"resample,omitempty"`
	// NoiseSNR, when AddNoise is set, is the signal-to-noise ratio in dB of
	// white Gaussian noise added during training (seeded, see AddNoise).
	AddNoise bool    `json:"add_noise,omitempty"`
	NoiseSNR float64 `json:"noise_snr,omitempty"`
}

// Validate checks the configuration.
func (c AudioConfig) Validate() error {
	if c.SampleRate < 0 || c.SampleRate > maxWAVRate {
		return fmt.Errorf("audio sample_rate %d out of range", c.SampleRate)
	}
	if c.Channels < 0 || c.Channels > maxWAVChannels {
		return fmt.Errorf("audio channels %d out of range", c.Channels)
	}
	if c.Length < 0 {
		return fmt.Errorf("audio length %d must be >= 0", c.Length)
	}
	if c.Align != "" && c.Align != "start" && c.Align != "center" {
		return fmt.Errorf("audio align %q: want \"start\" or \"center\"", c.Align)
	}
	if math.IsNaN(c.NoiseSNR) || math.IsInf(c.NoiseSNR, 0) {
		return fmt.Errorf("audio noise_snr %v must be finite", c.NoiseSNR)
	}
	return c.Resample.Validate()
}

// OutputShape is [Length] or [Channels, Length], or nil when Length is 0.
func (c AudioConfig) OutputShape() []int {
	if c.Length == 0 {
		return nil
	}
	if c.Channels > 0 {
		return []int{c.Channels, c.Length}
	}
	return []int{c.Length}
}

// AudioDecoder turns WAV files into tensors per an AudioConfig. It caches
// one Resampler per source rate and is safe for concurrent use.
type AudioDecoder struct {
	cfg   AudioConfig
	mu    sync.Mutex
	cache map[int]*Resampler
}

// NewAudioDecoder validates cfg and returns a decoder.
func NewAudioDecoder(cfg AudioConfig) (*AudioDecoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &AudioDecoder{cfg: cfg, cache: map[int]*Resampler{}}, nil
}

// Config returns the decoder's configuration.
func (d *AudioDecoder) Config() AudioConfig { return d.cfg }

// Load reads the WAV file at path (no noise). Errors are *InputError naming path.
func (d *AudioDecoder) Load(path string) (Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Tensor{}, inputErr(path, 0, "", err)
	}
	w, err := DecodeWAV(b)
	if err != nil {
		return Tensor{}, inputErr(path, 0, "", err)
	}
	t, err := d.Process(w)
	return t, inputErr(path, 0, "", err)
}

func (d *AudioDecoder) resampler(in int) (*Resampler, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.cache[in]; ok {
		return r, nil
	}
	r, err := NewResampler(in, d.cfg.SampleRate, d.cfg.Resample)
	if err != nil {
		return nil, err
	}
	d.cache[in] = r
	return r, nil
}

// Process applies channel handling, resampling and pad/trim to w.
func (d *AudioDecoder) Process(w Waveform) (Tensor, error) {
	var chans [][]float32
	if d.cfg.Channels == 0 {
		chans = [][]float32{w.Mono()}
	} else {
		if len(w.Channels) != d.cfg.Channels {
			return Tensor{}, fmt.Errorf("audio has %d channels, config wants %d (set channels: 0 to mix down to mono)", len(w.Channels), d.cfg.Channels)
		}
		chans = w.Channels
	}
	if w.Len() == 0 {
		return Tensor{}, fmt.Errorf("audio has no samples")
	}
	if d.cfg.SampleRate != 0 && d.cfg.SampleRate != w.Rate {
		r, err := d.resampler(w.Rate)
		if err != nil {
			return Tensor{}, err
		}
		rs := make([][]float32, len(chans))
		for c, x := range chans {
			rs[c] = r.Process(x)
		}
		chans = rs
	}
	L := len(chans[0])
	if d.cfg.Length > 0 {
		L = d.cfg.Length
	}
	t := Tensor{Data: make([]float32, len(chans)*L)}
	if d.cfg.Channels == 0 {
		t.Shape = []int{L}
	} else {
		t.Shape = []int{len(chans), L}
	}
	for c, x := range chans {
		FitLength(t.Data[c*L:(c+1)*L], x, d.cfg.Align)
	}
	return t, nil
}

// FitLength copies src into dst (whose length is the target length),
// trimming or zero-padding. align "center" keeps/places the middle; anything
// else keeps the beginning and pads at the end.
func FitLength(dst, src []float32, align string) { fitInto(dst, src, 1, align) }

// fitInto copies the rows (of rowLen values) of src into dst, trimming or
// zero-padding at the end, or at both ends for align "center".
func fitInto(dst, src []float32, rowLen int, align string) {
	clear(dst)
	n, m := len(dst)/rowLen, len(src)/rowLen
	off := 0
	if align == "center" {
		off = (m - n) / 2 // >0: trim both ends; <0: pad both ends
	}
	if off >= 0 {
		copy(dst, src[min(off, m)*rowLen:])
	} else {
		copy(dst[-off*rowLen:], src)
	}
}

// AddNoise adds white Gaussian noise to x in place so that the ratio of the
// signal's mean power to the noise's mean power is exactly snrDB decibels
// (the drawn noise is rescaled to the target power). A silent signal (zero
// power) has no defined SNR and is left unchanged. Draws come from rng, so a
// seed (see AugmentSeed, NewAugmentRand) reproduces the same noise.
func AddNoise(x []float32, snrDB float64, rng *rand.Rand) {
	if len(x) == 0 {
		return
	}
	var ps float64
	for _, v := range x {
		ps += float64(v) * float64(v)
	}
	ps /= float64(len(x))
	if ps == 0 {
		return
	}
	noise := make([]float64, len(x))
	var pn float64
	for i := range noise {
		noise[i] = rng.NormFloat64()
		pn += noise[i] * noise[i]
	}
	pn /= float64(len(x))
	if pn == 0 {
		return
	}
	scale := math.Sqrt(ps / math.Pow(10, snrDB/10) / pn)
	for i := range x {
		x[i] += float32(noise[i] * scale)
	}
}
