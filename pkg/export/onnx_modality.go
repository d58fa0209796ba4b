package export

import (
	"math"

	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/model"
)

// The preprocessors of pkg/modality as ONNX nodes, in evaluation mode
// (dropout off, batch norms on running statistics). Each mirrors the
// Gorgonia builder of the same name and reads the same parameters.

// bnEps is the eps of every preprocessor batch norm (PyTorch's default,
// as pkg/modality uses).
const bnEps = 1e-5

// preprocessor adds modality mod's preprocessor of cfg to x under s (the
// modality's "pre" scope) and returns the feature [B, output_dim].
func preprocessor(s scope, mod string, cfg modality.Config, x value) value {
	cfg = cfg.WithDefaults() // validated by model.NewNetwork
	switch cfg.Kind {
	case modality.KindVision:
		return vision(s, cfg.Vision, cfg.Architecture, cfg.OutputDim, x)
	case modality.KindAudio:
		return audio(s, cfg.Audio, cfg.Architecture, cfg.OutputDim, x)
	case modality.KindText:
		return text(s, cfg.Text, cfg.OutputDim, x)
	case modality.KindSensor:
		return sensor(s, cfg.Sensor, cfg.OutputDim, x)
	case modality.KindVideo:
		return video(s, mod, cfg.Video, cfg.Architecture, cfg.OutputDim, x)
	case modality.KindMLP:
		return mlp(s, cfg.MLP, cfg.OutputDim, x)
	}
	s.fail("modality %q: preprocessor kind %q (added with modality.Register) is not supported by the ONNX exporter", mod, cfg.Kind)
	return value{}
}

// poolHead is global average pooling then the Linear "fc".
func poolHead(s scope, x value, out int) value {
	return linear(s.sub("fc"), globalAvgPool(s, x), out, true)
}

// vision is modality.Vision: simple, resnet or efficient features, global
// average pool, fc.
func vision(s scope, cfg modality.VisionConfig, arch string, out int, x value) value {
	var h value
	switch arch {
	case "simple":
		h = x
		for i, w := range cfg.Channels {
			h = conv(s.subf("conv%d", i+1), h, w, cfg.Kernel, cfg.Stride, cfg.Kernel/2, 1, 1, true)
			if cfg.BatchNorm {
				h = batchNorm(s.subf("bn%d", i+1), h, bnEps)
			}
			h = activation(s, cfg.Activation, h)
		}
	case "resnet":
		h = visionStem(s, cfg, x)
		for si, w := range cfg.Channels {
			for bi := 0; bi < cfg.Blocks; bi++ {
				stride := 1
				if si > 0 && bi == 0 {
					stride = 2
				}
				h = basicBlock(s.subf("stage%d", si+1).subf("block%d", bi+1), cfg, h, w, stride)
			}
		}
	case "efficient":
		h = visionStem(s, cfg, x)
		for i, w := range cfg.Channels[1:] {
			b := s.subf("block%d", i+1)
			in := h.shape[1]
			h = convBNAct(b, cfg, h, "dw", "dw_bn", in, 3, 2, 1, in, true)
			h = convBNAct(b, cfg, h, "pw", "pw_bn", w, 1, 1, 0, 1, true)
		}
	default:
		s.fail("vision architecture %q is not supported by the ONNX exporter", arch)
		return value{}
	}
	return poolHead(s, h, out)
}

// convBNAct is a bias-free conv (scope conv), a batch norm (scope bn) and,
// when act, the configured activation.
func convBNAct(s scope, cfg modality.VisionConfig, x value, convName, bnName string, outC, k, stride, pad, groups int, act bool) value {
	y := conv(s.sub(convName), x, outC, k, stride, pad, 1, groups, false)
	y = batchNorm(s.sub(bnName), y, bnEps)
	if act {
		y = activation(s, cfg.Activation, y)
	}
	return y
}

func visionStem(s scope, cfg modality.VisionConfig, x value) value {
	return convBNAct(s.sub("stem"), cfg, x, "conv", "bn", cfg.Channels[0], 3, cfg.Stride, 1, 1, true)
}

// basicBlock is a residual block: act(bn2(conv2(act(bn1(conv1(x))))) +
// shortcut), the shortcut a 1×1 conv + bn ("proj") when the width or the
// resolution changes.
func basicBlock(s scope, cfg modality.VisionConfig, x value, width, stride int) value {
	h := convBNAct(s, cfg, x, "conv1", "bn1", width, 3, stride, 1, 1, true)
	h = convBNAct(s, cfg, h, "conv2", "bn2", width, 3, 1, 1, 1, false)
	short := x
	if stride != 1 || x.shape[1] != width {
		short = convBNAct(s.sub("proj"), cfg, x, "conv", "bn", width, 1, stride, 0, 1, false)
	}
	return activation(s, cfg.Activation, s.add(h, short))
}

// conv1dStack is modality's conv<i>/bn<i> blocks: Conv1d (no bias) →
// BatchNorm → ReLU → MaxPool1d(pool) while the sequence is at least pool
// long; blocks are numbered from first.
func conv1dStack(s scope, x value, widths []int, k, pool, first int) value {
	for i, w := range widths {
		n := first + i
		x = conv(s.subf("conv%d", n), x, w, k, 1, k/2, 1, 1, false)
		x = batchNorm(s.subf("bn%d", n), x, bnEps)
		x = s.unary("Relu", x)
		x = maxPool1d(s, x, pool)
	}
	return x
}

func maxPool1d(s scope, x value, pool int) value {
	if s.failed() || pool <= 1 || x.shape[2] < pool {
		return x
	}
	return maxPool(s, x, pool, pool, 0)
}

// audio is modality.Audio: the log-mel front end (framing as a Gather of
// constant sample indices, the windowed DFT and the mel filterbank as
// MatMul with constant matrices) and conv blocks, or the raw-waveform
// conv; then global average pool and fc.
func audio(s scope, cfg modality.AudioConfig, arch string, out int, x value) value {
	if s.failed() {
		return value{}
	}
	samples := x.shape[1]
	var h value
	switch arch {
	case "mel":
		h = logMel(s.sub("melspec"), cfg, x)
		h = conv1dStack(s, h, cfg.Channels, cfg.Kernel, cfg.Pool, 1)
	case "raw":
		if samples < cfg.RawKernel {
			s.fail("audio preprocessor (raw): a waveform of %d samples is shorter than raw_kernel %d", samples, cfg.RawKernel)
			return value{}
		}
		h = s.unsqueeze(x, 1)
		h = conv(s.sub("conv1"), h, cfg.Channels[0], cfg.RawKernel, cfg.RawStride, 0, 1, 1, false)
		h = batchNorm(s.sub("bn1"), h, bnEps)
		h = s.unary("Relu", h)
		h = maxPool1d(s, h, cfg.Pool)
		h = conv1dStack(s, h, cfg.Channels[1:], cfg.Kernel, cfg.Pool, 2)
	default:
		s.fail("audio architecture %q is not supported by the ONNX exporter", arch)
		return value{}
	}
	return poolHead(s, h, out)
}

// logMel is modality.LogMelSpectrogram: waveforms [B, samples] →
// log(mel power + eps) [B, n_mels, frames]. Its constants "frame_index",
// "dft" and "mel_fb" are initializers under s.
func logMel(s scope, cfg modality.AudioConfig, x value) value {
	n, nMels := cfg.NFFT, cfg.NMels
	nFreq := n/2 + 1
	fb, err := modality.MelFilterbank(cfg.SampleRate, n, nMels, cfg.FMin, cfg.FMax)
	if err != nil {
		s.fail("%v", err)
		return value{}
	}
	idx, frames, err := modality.FrameIndex(x.shape[1], n, cfg.Hop, !cfg.NoCenter)
	if err != nil {
		s.fail("%v", err)
		return value{}
	}
	// The filterbank stacked twice: applied to re² and im², summed by MatMul.
	fb2 := append(append([]float64(nil), fb...), fb...)
	fr := s.gather(x, s.intConst("frame_index", []int{frames, n}, idx), 1) // [B, frames, n_fft]
	spec := s.matmul(fr, s.constant("dft", []int{n, 2 * nFreq}, modality.DFTMatrix(n)))
	spec = s.mul(spec, spec)
	spec = s.matmul(spec, s.constant("mel_fb", []int{2 * nFreq, nMels}, fb2))
	spec = s.unary("Log", s.add(spec, s.b.scalar(cfg.LogEps)))
	return s.transpose(spec, 0, 2, 1)
}

// text is modality.Text: token and position embeddings (Gather), pooled
// over the tokens (mean over non-padding tokens, first token, or masked
// max), then fc.
func text(s scope, cfg modality.TextConfig, out int, ids value) value {
	if s.failed() {
		return value{}
	}
	l, e := ids.shape[1], cfg.EmbedDim
	if cfg.Positions == "learned" && l != cfg.SeqLen {
		s.fail("text preprocessor: the exported input has %d tokens, the learned position table seq_len %d", l, cfg.SeqLen)
		return value{}
	}
	x := s.gather(s.sub("tok").param("weight", cfg.VocabSize, e), ids, 0) // [B, L, E]
	switch cfg.Positions {
	case "learned":
		x = s.add(x, s.sub("pos").param("weight", cfg.SeqLen, e))
	case "sinusoidal":
		x = s.add(x, s.constant("positions", []int{l, e}, modality.SinusoidalPositions(l, e)))
	case "none":
	default:
		s.fail("text positions %q are not supported by the ONNX exporter", cfg.Positions)
		return value{}
	}
	var keep value // bool [B, L]: not padding; unset without padding
	if cfg.PadID >= 0 {
		pad := s.b.ints([]int{}, cfg.PadID)
		keep = s.unary("Not", s.binary("Equal", ids, pad, tBool))
	}
	var pooled value
	switch cfg.Pooling {
	case "mean":
		if keep.name == "" {
			pooled = s.reduce("ReduceMean", x, false, 1)
			break
		}
		k := s.cast(keep, tFloat)
		count := s.reduce("ReduceSum", k, true, 1)
		w := s.div(k, s.binary("Max", count, s.b.scalar(1), tFloat)) // all-padding rows pool to 0
		pooled = s.reduce("ReduceSum", s.mul(x, s.unsqueeze(w, 2)), false, 1)
	case "first":
		pooled = s.gather(x, s.b.ints([]int{}, 0), 1)
	case "max":
		if keep.name == "" {
			pooled = s.reduce("ReduceMax", x, false, 1)
			break
		}
		masked := s.op("Where", []value{s.unsqueeze(keep, 2), x, s.b.scalar(math.Inf(-1))}, tFloat, x.shape)
		mx := s.reduce("ReduceMax", masked, false, 1)
		hasTok := s.binary("Greater", s.reduce("ReduceMax", s.cast(keep, tFloat), true, 1), s.b.scalar(0), tBool)
		pooled = s.op("Where", []value{hasTok, mx, s.b.scalar(0)}, tFloat, mx.shape)
	default:
		s.fail("text pooling %q is not supported by the ONNX exporter", cfg.Pooling)
		return value{}
	}
	return linear(s.sub("fc"), pooled, out, true)
}

// sensor is modality.Sensor: conv blocks over time, then global average
// pooling, or temporal self-attention + residual + LayerNorm and the mean
// over time; then fc.
func sensor(s scope, cfg modality.SensorConfig, out int, x value) value {
	h := conv1dStack(s, x, cfg.Channels, cfg.Kernel, cfg.Pool, 1)
	if !cfg.Attention {
		return poolHead(s, h, out)
	}
	if s.failed() {
		return value{}
	}
	width := h.shape[1]
	a := s.transpose(h, 0, 2, 1) // [B, time, C]
	a = s.add(a, attention(s.sub("attention"), a, a, width, cfg.Heads))
	a = layerNorm(s.sub("norm"), a, 1e-5)
	return linear(s.sub("fc"), s.reduce("ReduceMean", a, false, 1), out, true)
}

// video is modality.Video: the frames variant runs the vision backbone on
// every frame (frames folded into the batch) and aggregates over time
// (temporal conv + ReLU + mean, mean, or pkg/model's CfC cell unrolled over
// the frames for "liquid"); conv3d runs Conv3d blocks.
func video(s scope, mod string, cfg modality.VideoConfig, arch string, out int, x value) value {
	if s.failed() {
		return value{}
	}
	if arch == "conv3d" {
		h := s.transpose(x, 0, 2, 1, 3, 4) // [B, C, T, H, W]
		for i, w := range cfg.Conv3DChannels {
			h = conv(s.subf("conv%d", i+1), h, w, 3, cfg.Conv3DStride, 1, 1, 1, false)
			h = batchNorm(s.subf("bn%d", i+1), h, bnEps)
			h = s.unary("Relu", h)
		}
		return poolHead(s, h, out)
	}
	if arch != "frames" {
		s.fail("video architecture %q is not supported by the ONNX exporter", arch)
		return value{}
	}
	tc := s.sub("temporal")
	switch cfg.Temporal {
	case "conv", "mean":
	case "liquid":
		if cfg.Cell != nil {
			tc.fail("modality %q: video temporal \"liquid\" with a custom TemporalCell (%T) is not supported by the ONNX exporter "+
				"(only pkg/model's CfC cell, which the network installs when VideoConfig.Cell is nil)", mod, cfg.Cell)
			return value{}
		}
	default:
		tc.fail("modality %q: video temporal aggregator %q is not supported by the ONNX exporter", mod, cfg.Temporal)
		return value{}
	}
	t, d := x.shape[1], cfg.FrameDim
	frames := s.reshape(x, -1, x.shape[2], x.shape[3], x.shape[4])
	feat := vision(s.sub("frame"), cfg.Frame, cfg.Backbone, d, frames)
	feat = s.reshape(feat, -1, t, d)
	var agg value
	switch cfg.Temporal {
	case "mean":
		agg = tc.reduce("ReduceMean", feat, false, 1)
	case "conv":
		seq := tc.transpose(feat, 0, 2, 1) // [B, frame_dim, T]
		k := cfg.TemporalKernel
		seq = conv(tc.sub("conv"), seq, d, k, 1, k/2, 1, 1, true)
		agg = globalAvgPool(tc, tc.unary("Relu", seq))
	case "liquid":
		steps := make([]value, t)
		for i := range steps {
			steps[i] = tc.gather(feat, s.b.ints([]int{}, i), 1) // frame i: [B, frame_dim]
		}
		cell, err := model.NewCfC(model.TemporalCfCConfig(d))
		if err != nil {
			tc.fail("modality %q: %v", mod, err)
			return value{}
		}
		agg = cfc(tc.sub(model.BackboneCfC), cell.Config(), steps)
	}
	return linear(s.sub("fc"), agg, out, true)
}

// mlp is modality.MLP: fc<i> Linear → activation per hidden width, then
// the Linear "out".
func mlp(s scope, cfg modality.MLPConfig, out int, x value) value {
	for i, h := range cfg.Hidden {
		x = linear(s.subf("fc%d", i+1), x, h, true)
		x = activation(s, cfg.Activation, x)
	}
	return linear(s.sub("out"), x, out, true)
}
