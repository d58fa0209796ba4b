package modality

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Per-step features of the time-based preprocessors (audio, video): what
// pkg/model's temporal alignment (the seed's TemporalAligner) resamples to
// one length before the spiking encoders. Each ForwardSequence applies the
// same parameters as Forward and stops before the pooling over time: its fc
// (an affine map) is applied per step, so the mean of ForwardSequence over
// the steps equals Forward.

// ForwardSequence maps waveforms x [B, samples] to per-frame features
// [B, F, OutputDim] and an all-ones mask [B, F]. F is the number of frames
// left by the conv stack (mel: spectrogram frames after the max-pools;
// raw: conv positions after the pools). Averaging the features over F
// gives Forward's result (in the same mode: batch statistics when
// training).
func (a *Audio) ForwardSequence(c *nn.Ctx, x *G.Node) (seq, mask *G.Node, err error) {
	return sequenceGuard(c, KindAudio, func() (*G.Node, error) {
		h, err := a.features(c, x)
		if err != nil {
			return nil, err
		}
		return channelsLastHead(c, h, a.out) // [B, C, F] → [B, F, out]
	})
}

// ForwardSequence maps clips x [B, frames, C, H, W] to per-frame features
// [B, frames, OutputDim] and an all-ones mask [B, frames], for the frames
// architecture with temporal "conv" (Conv1d over frames → ReLU, then fc per
// frame) or "mean" (fc per frame). Averaging over frames gives Forward's
// result. The "liquid" aggregator keeps only its final state and conv3d
// mixes time into its channels, so both are errors here.
func (v *Video) ForwardSequence(c *nn.Ctx, x *G.Node) (seq, mask *G.Node, err error) {
	return sequenceGuard(c, KindVideo, func() (*G.Node, error) {
		if v.arch == "conv3d" || v.cfg.Temporal == "liquid" {
			return nil, c.Errorf("video preprocessor: per-frame features need architecture frames with temporal conv or mean (got architecture %s, temporal %s)", v.arch, v.cfg.Temporal)
		}
		if err := v.checkInput(c, x); err != nil {
			return nil, err
		}
		feat, err := v.frameFeatures(c, x)
		if err != nil {
			return nil, err
		}
		d := v.cfg.FrameDim
		if v.cfg.Temporal == "mean" {
			return nn.Linear{In: d, Out: v.out}.Forward(c.Sub("fc"), feat)
		}
		tc := c.Sub("temporal")
		h, err := swap12(feat) // [B, frame_dim, T]
		if err != nil {
			return nil, scopedErr(tc, err)
		}
		k := v.cfg.TemporalKernel
		if h, err = (nn.Conv1d{InC: d, OutC: d, Kernel: k, Stride: 1, Padding: k / 2}).Forward(tc.Sub("conv"), h); err != nil {
			return nil, err
		}
		if h, err = activate(tc, "relu", h); err != nil {
			return nil, err
		}
		return channelsLastHead(c, h, v.out)
	})
}

// channelsLastHead turns channels-first features h [B, C, L] into
// [B, L, out] by the fc Linear(C, out) applied at every position: the
// per-position form of poolHead.
func channelsLastHead(c *nn.Ctx, h *G.Node, out int) (*G.Node, error) {
	hs, err := swap12(h)
	if err != nil {
		return nil, scopedErr(c, err)
	}
	return nn.Linear{In: h.Shape()[1], Out: out}.Forward(c.Sub("fc"), hs)
}

// sequenceGuard runs build under guard and pairs its [B, L, D] result with
// an all-ones mask [B, L].
func sequenceGuard(c *nn.Ctx, kind string, build func() (*G.Node, error)) (seq, mask *G.Node, err error) {
	seq, err = guard(c, kind, build)
	if err != nil {
		return nil, nil, err
	}
	s := seq.Shape()
	if s.Dims() != 3 {
		return nil, nil, c.Errorf("%s preprocessor: per-step features have shape %v, want [batch, steps, features]", kind, s)
	}
	ones := make([]float64, s[0]*s[1])
	for i := range ones {
		ones[i] = 1
	}
	return seq, constNode(c, fmt.Sprintf("%s.mask_ones_%dx%d", c.Path(), s[0], s[1]), []int{s[0], s[1]}, ones), nil
}

var (
	_ SequencePreprocessor = (*Audio)(nil)
	_ SequencePreprocessor = (*Video)(nil)
)
