package modality

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// The log-mel front end follows torchaudio.transforms.MelSpectrogram with
// its defaults (power 2, no normalisation, HTK mel scale, no filter
// normalisation, periodic Hann window of n_fft samples, centred frames with
// reflect padding) followed by log(x + eps):
//
//	frames[f, n] = x_pad[f·hop + n]                       (n < n_fft)
//	P[f, k]      = |Σ_n w[n]·frames[f,n]·e^{-2πi·nk/n_fft}|²  (k ≤ n_fft/2)
//	mel[f, m]    = Σ_k P[f, k]·fb[k, m]
//	out[m, f]    = log(mel[f, m] + eps)
//
// The DFT (with the window folded in) and the filterbank are fixed graph
// constants computed from the config: nothing in the front end is trained,
// but the whole chain is differentiable with respect to the waveform.

// HzToMel converts a frequency in Hz to the HTK mel scale:
// mel = 2595·log10(1 + f/700).
func HzToMel(f float64) float64 { return 2595 * math.Log10(1+f/700) }

// MelToHz is the inverse of HzToMel: f = 700·(10^(mel/2595) − 1).
func MelToHz(m float64) float64 { return 700 * (math.Pow(10, m/2595) - 1) }

// HannWindow returns the periodic Hann window of n samples,
// w[i] = 0.5 − 0.5·cos(2πi/n) (torch.hann_window's default).
func HannWindow(n int) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
	}
	return w
}

// MelFilterbank returns the triangular HTK mel filters as a row-major
// [n_fft/2+1, nMels] matrix, as torchaudio.functional.melscale_fbanks
// (mel_scale "htk", norm None) computes them: nMels+2 points equally
// spaced in mel between fMin and fMax give the filter edges; filter m
// rises linearly from edge m to edge m+1 and falls to edge m+2, peaking at
// 1; FFT bin k sits at (sampleRate div 2)·k/(n_fft/2) Hz (torchaudio's
// integer division). An empty filter (no FFT bin inside it: too many mels
// for n_fft) is an error naming it.
func MelFilterbank(sampleRate, nFFT, nMels int, fMin, fMax float64) ([]float64, error) {
	if sampleRate <= 0 || nFFT < 2 || nMels <= 0 {
		return nil, fmt.Errorf("mel filterbank: sample_rate %d, n_fft %d, n_mels %d must be positive (n_fft ≥ 2)", sampleRate, nFFT, nMels)
	}
	if fMin < 0 || fMax <= fMin || fMax > float64(sampleRate)/2 {
		return nil, fmt.Errorf("mel filterbank: need 0 ≤ f_min < f_max ≤ sample_rate/2, got f_min %g, f_max %g, sample_rate %d", fMin, fMax, sampleRate)
	}
	nFreq := nFFT/2 + 1
	mMin, mMax := HzToMel(fMin), HzToMel(fMax)
	edges := make([]float64, nMels+2)
	for i := range edges {
		edges[i] = MelToHz(mMin + (mMax-mMin)*float64(i)/float64(nMels+1))
	}
	fb := make([]float64, nFreq*nMels)
	for m := 0; m < nMels; m++ {
		lo, mid, hi := edges[m], edges[m+1], edges[m+2]
		nonzero := false
		for k := 0; k < nFreq; k++ {
			// torchaudio: all_freqs = linspace(0, sample_rate // 2, n_freqs).
			f := float64(sampleRate/2) * float64(k) / float64(nFreq-1)
			down := (f - lo) / (mid - lo)
			up := (hi - f) / (hi - mid)
			if v := math.Max(0, math.Min(down, up)); v > 0 {
				fb[k*nMels+m] = v
				nonzero = true
			}
		}
		if !nonzero {
			return nil, fmt.Errorf("mel filter %d (%.1f–%.1f Hz) contains no FFT bin (bins are %.1f Hz apart): lower n_mels or raise n_fft",
				m, lo, hi, float64(sampleRate)/float64(nFFT))
		}
	}
	return fb, nil
}

// frameIndex maps each (frame, offset) of the framed signal to a sample
// index of a waveform of samples samples: centred frames read a
// reflect-padded signal (torch pad_mode "reflect", pad n_fft/2), others
// start at sample 0. It returns the index map (frames·nFFT entries) and
// the number of frames.
func frameIndex(samples, nFFT, hop int, center bool) ([]int, int, error) {
	pad := 0
	if center {
		pad = nFFT / 2
		if samples <= pad {
			return nil, 0, fmt.Errorf("a waveform of %d samples is too short for centred frames of n_fft %d (need more than %d samples)", samples, nFFT, pad)
		}
	} else if samples < nFFT {
		return nil, 0, fmt.Errorf("a waveform of %d samples is shorter than one frame (n_fft %d)", samples, nFFT)
	}
	frames := 1 + (samples+2*pad-nFFT)/hop
	idx := make([]int, frames*nFFT)
	for f := 0; f < frames; f++ {
		for n := 0; n < nFFT; n++ {
			i := f*hop + n - pad
			if i < 0 {
				i = -i
			} else if i >= samples {
				i = 2*(samples-1) - i
			}
			idx[f*nFFT+n] = i
		}
	}
	return idx, frames, nil
}

// dftMatrix returns the windowed real DFT as a row-major [n_fft, 2·nFreq]
// matrix: columns k are w[n]·cos(2πnk/N), columns nFreq+k are
// −w[n]·sin(2πnk/N), so frames·D holds the real then the imaginary parts.
func dftMatrix(nFFT int) []float64 {
	nFreq := nFFT/2 + 1
	w := HannWindow(nFFT)
	d := make([]float64, nFFT*2*nFreq)
	for n := 0; n < nFFT; n++ {
		for k := 0; k < nFreq; k++ {
			// Reduce nk mod N first: the angle stays small and exact.
			a := 2 * math.Pi * float64((n*k)%nFFT) / float64(nFFT)
			d[n*2*nFreq+k] = w[n] * math.Cos(a)
			d[n*2*nFreq+nFreq+k] = -w[n] * math.Sin(a)
		}
	}
	return d
}

// LogMelSpectrogram adds the log-mel front end of cfg (its SampleRate,
// NFFT, Hop, NMels, FMin, FMax, LogEps, NoCenter; defaults applied) to the
// graph: waveforms x [B, samples] → log-mel features [B, n_mels, frames],
// frames = 1 + samples/hop when centred, 1 + (samples − n_fft)/hop
// otherwise. It has no parameters; the gradient flows to x.
func LogMelSpectrogram(c *nn.Ctx, x *G.Node, cfg AudioConfig) (*G.Node, error) {
	cfg = cfg.withDefaults()
	v := &validator{prefix: KindAudio}
	cfg.validate(v, "mel")
	if err := v.err(); err != nil {
		return nil, c.Errorf("%v", err)
	}
	s := x.Shape()
	if s.Dims() != 2 {
		return nil, c.Errorf("log-mel spectrogram expects waveforms [batch, samples], got shape %v", s)
	}
	b, samples := s[0], s[1]
	n, hop, nMels := cfg.NFFT, cfg.Hop, cfg.NMels
	nFreq := n/2 + 1
	fb, err := MelFilterbank(cfg.SampleRate, n, nMels, cfg.FMin, cfg.FMax)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	center := !cfg.NoCenter
	idx, frames, err := frameIndex(samples, n, hop, center)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	frameName := fmt.Sprintf("frames{len=%d,n_fft=%d,hop=%d,center=%v}", samples, n, hop, center)
	fr, err := gatherLast(x, frameName, idx, []int{frames, n})
	if err != nil {
		return nil, scopedErr(c, err)
	}
	if fr, err = reshape(c, fr, b*frames, n); err != nil {
		return nil, err
	}
	// [M; M]: the filterbank applied to re² and to im², summed by the matmul.
	fb2 := make([]float64, 2*nFreq*nMels)
	copy(fb2, fb)
	copy(fb2[nFreq*nMels:], fb)
	tag := fmt.Sprintf("sr=%d,n_fft=%d,n_mels=%d,f=%g-%g,%v", cfg.SampleRate, n, nMels, cfg.FMin, cfg.FMax, c.Dtype())
	dft := constNode(c, fmt.Sprintf("modality.hann_dft{n_fft=%d,%v}", n, c.Dtype()), []int{n, 2 * nFreq}, dftMatrix(n))
	mel := constNode(c, "modality.mel_fb{"+tag+"}", []int{2 * nFreq, nMels}, fb2)
	spec, err := G.Mul(fr, dft)
	if err != nil {
		return nil, c.Errorf("dft: %v", err)
	}
	if spec, err = G.Square(spec); err != nil {
		return nil, c.Errorf("power: %v", err)
	}
	if spec, err = G.Mul(spec, mel); err != nil {
		return nil, c.Errorf("mel: %v", err)
	}
	if spec, err = G.Add(spec, scalarConst(c, cfg.LogEps)); err != nil {
		return nil, c.Errorf("log eps: %v", err)
	}
	if spec, err = G.Log(spec); err != nil {
		return nil, c.Errorf("log: %v", err)
	}
	if spec, err = reshape(c, spec, b, frames, nMels); err != nil {
		return nil, err
	}
	out, err := swap12(spec)
	return out, scopedErr(c, err)
}

// scalarConst returns v as a scalar constant of the graph's dtype.
func scalarConst(c *nn.Ctx, v float64) *G.Node {
	if c.Dtype() == G.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}
