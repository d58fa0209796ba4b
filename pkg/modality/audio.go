package modality

import (
	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// AudioConfig shapes the audio preprocessor (Config.Audio).
type AudioConfig struct {
	// SampleRate of the waveforms, in Hz. 0 means 16000.
	SampleRate int `mapstructure:"sample_rate" yaml:"sample_rate"`
	// Samples is the waveform length InputShape returns. Forward accepts
	// any length of more than n_fft/2 samples (centred frames), of at
	// least n_fft samples (NoCenter), or of at least raw_kernel (raw).
	// 0 means SampleRate (one second).
	Samples int `mapstructure:"samples" yaml:"samples"`
	// NFFT is the frame (and DFT and Hann window) length in samples; the
	// spectrum has NFFT/2+1 bins. 0 means 400 (25 ms at 16 kHz).
	NFFT int `mapstructure:"n_fft" yaml:"n_fft"`
	// Hop is the distance between frame starts, in samples. 0 means 160
	// (10 ms at 16 kHz).
	Hop int `mapstructure:"hop" yaml:"hop"`
	// NMels is the number of mel filters (the conv stack's input
	// channels). 0 means 64. Too many mels for NFFT leaves a filter empty,
	// which is an error.
	NMels int `mapstructure:"n_mels" yaml:"n_mels"`
	// FMin and FMax bound the mel filters, in Hz. FMin 0 means 0 Hz; FMax
	// 0 means SampleRate/2 (integer division, as torchaudio).
	FMin float64 `mapstructure:"f_min" yaml:"f_min"`
	FMax float64 `mapstructure:"f_max" yaml:"f_max"`
	// LogEps is added before the log: log(mel + LogEps). 0 means 1e-6.
	LogEps float64 `mapstructure:"log_eps" yaml:"log_eps"`
	// NoCenter starts frame f at sample f·hop with no padding. false (the
	// default) centres frame f on sample f·hop over a reflect-padded
	// waveform, as torch.stft(center=True).
	NoCenter bool `mapstructure:"no_center" yaml:"no_center"`
	// Channels are the widths of the 1-D conv blocks (Conv1d → BatchNorm →
	// ReLU → MaxPool1d). mel: the first block reads the n_mels log-mel
	// channels over time. raw: the first block is the strided raw-waveform
	// conv. Empty means [64, 128].
	Channels []int `mapstructure:"channels" yaml:"channels"`
	// Kernel of the conv blocks over time (padding Kernel/2). 0 means 3.
	Kernel int `mapstructure:"kernel" yaml:"kernel"`
	// Pool is the max-pool size and stride after each block; a block is
	// not pooled when the sequence is shorter than Pool. 0 means 2; 1
	// disables pooling.
	Pool int `mapstructure:"pool" yaml:"pool"`
	// RawKernel and RawStride shape the first conv of the raw variant,
	// which reads the waveform directly (no padding). 0 means 80 and 16
	// (5 ms windows every 1 ms at 16 kHz, as M5, Dai et al. 2017).
	RawKernel int `mapstructure:"raw_kernel" yaml:"raw_kernel"`
	RawStride int `mapstructure:"raw_stride" yaml:"raw_stride"`
}

func (a AudioConfig) withDefaults() AudioConfig {
	a.SampleRate = orInt(a.SampleRate, 16000)
	a.Samples = orInt(a.Samples, a.SampleRate)
	a.NFFT = orInt(a.NFFT, 400)
	a.Hop = orInt(a.Hop, 160)
	a.NMels = orInt(a.NMels, 64)
	if a.FMax == 0 {
		a.FMax = float64(a.SampleRate / 2)
	}
	if a.LogEps == 0 {
		a.LogEps = 1e-6
	}
	a.Channels = orInts(a.Channels, []int{64, 128})
	a.Kernel = orInt(a.Kernel, 3)
	a.Pool = orInt(a.Pool, 2)
	a.RawKernel = orInt(a.RawKernel, 80)
	a.RawStride = orInt(a.RawStride, 16)
	return a
}

func (a AudioConfig) validate(v *validator, arch string) {
	before := len(*v.list())
	v.positive("sample_rate", a.SampleRate)
	v.positive("samples", a.Samples)
	v.widths("channels", a.Channels)
	v.positive("kernel", a.Kernel)
	v.positive("pool", a.Pool)
	if arch == "raw" {
		v.positive("raw_kernel", a.RawKernel)
		v.positive("raw_stride", a.RawStride)
		if a.RawKernel > 0 && a.Samples > 0 && a.Samples < a.RawKernel {
			v.add("samples", "%d samples are shorter than raw_kernel %d", a.Samples, a.RawKernel)
		}
		return
	}
	if a.NFFT < 2 {
		v.add("n_fft", "must be at least 2, got %d", a.NFFT)
	}
	v.positive("hop", a.Hop)
	v.positive("n_mels", a.NMels)
	if a.LogEps <= 0 {
		v.add("log_eps", "must be positive, got %g", a.LogEps)
	}
	if a.FMin < 0 {
		v.add("f_min", "must not be negative, got %g", a.FMin)
	}
	if a.SampleRate > 0 && a.FMax > float64(a.SampleRate)/2 {
		v.add("f_max", "%g Hz is above the Nyquist frequency %g Hz", a.FMax, float64(a.SampleRate)/2)
	}
	if a.FMax <= a.FMin {
		v.add("f_max", "%g Hz must be above f_min %g Hz", a.FMax, a.FMin)
	}
	if len(*v.list()) > before {
		return // the checks below need sane numbers
	}
	if _, err := MelFilterbank(a.SampleRate, a.NFFT, a.NMels, a.FMin, a.FMax); err != nil {
		v.add("n_mels", "%v", err)
	}
	if _, _, err := frameIndex(a.Samples, a.NFFT, a.Hop, !a.NoCenter); err != nil {
		v.add("samples", "%v", err)
	}
}

// Audio is the waveform preprocessor: [B, samples] → [B, OutputDim].
//
//   - mel: LogMelSpectrogram (fixed DFT and HTK mel filterbank, see
//     melspec.go) → [B, n_mels, frames]; conv blocks conv<i>/bn<i> over
//     time (Conv1d with n_mels input channels → BatchNorm → ReLU →
//     MaxPool1d); global average pool over time; fc Linear.
//   - raw: the waveform as one channel [B, 1, samples]; conv1 Conv1d(1,
//     Channels[0], raw_kernel, stride raw_stride) → bn1 → ReLU →
//     MaxPool1d, then the remaining conv blocks as for mel; GAP; fc.
//
// Batch norms use batch statistics when training and running statistics
// in evaluation graphs.
type Audio struct {
	cfg  AudioConfig
	arch string
	out  int
}

func newAudio(cfg AudioConfig, arch string, out int) *Audio {
	return &Audio{cfg: cfg, arch: arch, out: out}
}

// Kind returns "audio".
func (a *Audio) Kind() string { return KindAudio }

// InputShape returns [batch, Samples].
func (a *Audio) InputShape(batch int) []int { return []int{batch, a.cfg.Samples} }

// IntInput returns false.
func (a *Audio) IntInput() bool { return false }

// OutputDim returns the feature size.
func (a *Audio) OutputDim() int { return a.out }

// Forward maps waveforms x [B, samples] (any long-enough length) to
// features [B, OutputDim].
func (a *Audio) Forward(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	return guard(c, KindAudio, func() (*G.Node, error) { return a.forward(c, x) })
}

func (a *Audio) forward(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	h, err := a.features(c, x)
	if err != nil {
		return nil, err
	}
	return poolHead(c, h, a.out)
}

// features checks x [B, samples] and runs the front end and conv stack,
// giving [B, C, F] before any pooling over time (shared by Forward and
// ForwardSequence).
func (a *Audio) features(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	if err := checkInput(c, x, KindAudio, false, []int{0, 0}, []string{"batch", "samples"}); err != nil {
		return nil, err
	}
	if a.arch == "raw" {
		return a.raw(c, x)
	}
	h, err := LogMelSpectrogram(c.Sub("melspec"), x, a.cfg)
	if err != nil {
		return nil, err
	}
	return conv1dStack(c, h, a.cfg.Channels, a.cfg.Kernel, a.cfg.Pool, 1)
}

func (a *Audio) raw(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s[1] < a.cfg.RawKernel {
		return nil, c.Errorf("audio preprocessor (raw): a waveform of %d samples is shorter than raw_kernel %d", s[1], a.cfg.RawKernel)
	}
	h, err := reshape(c, x, s[0], 1, s[1])
	if err != nil {
		return nil, err
	}
	w := a.cfg.Channels[0]
	conv := nn.Conv1d{InC: 1, OutC: w, Kernel: a.cfg.RawKernel, Stride: a.cfg.RawStride, NoBias: true}
	if h, err = conv.Forward(c.Sub("conv1"), h); err != nil {
		return nil, err
	}
	if h, err = batchNorm(c, "bn1", w, h); err != nil {
		return nil, err
	}
	if h, err = activate(c, "relu", h); err != nil {
		return nil, err
	}
	if h, err = maxPool1d(c, h, a.cfg.Pool); err != nil {
		return nil, err
	}
	return conv1dStack(c, h, a.cfg.Channels[1:], a.cfg.Kernel, a.cfg.Pool, 2)
}
