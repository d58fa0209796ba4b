package export

import (
	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/model"
)

// Tiny configurations covering every preprocessor variant and the encoder
// options (LIF resets, learnable β/θ, graded spikes, 1 and 2 spiking
// layers, CfC default/no_gate/pure, multi-layer backbones, LTC), used by the
// component tests and combined into whole networks by the network tests.
// Every modality feature is featDim wide so the attention strategies accept
// any pair.

const featDim = 4

// enc returns a tiny encoder config; mutate the copy for variants.
func enc() model.EncoderConfig {
	return model.EncoderConfig{EncoderDim: featDim, SpikingUnits: 6, SpikingLayers: 1, NumSpikeSteps: 4,
		LiquidUnits: 3, BackboneUnits: 4, Threshold: 0.3}
}

func pre(c modality.Config) modality.Config { c.OutputDim = featDim; return c }

var (
	mlpPre = pre(modality.Config{Kind: modality.KindMLP, MLP: modality.MLPConfig{InputDim: 5, Hidden: []int{6}, Activation: "gelu"}})
	// vision simple with batch norms, resnet (2 stages: identity and
	// projected shortcuts), efficient (depthwise + pointwise).
	visionSimple = pre(modality.Config{Kind: modality.KindVision, Vision: modality.VisionConfig{InChannels: 2, Height: 6, Width: 5,
		Channels: []int{3, 4}, BatchNorm: true, Activation: "silu"}})
	visionPlain  = pre(modality.Config{Kind: modality.KindVision, Vision: modality.VisionConfig{InChannels: 1, Height: 5, Width: 5, Kernel: 5}})
	visionResnet = pre(modality.Config{Kind: modality.KindVision, Architecture: "resnet", Vision: modality.VisionConfig{InChannels: 1,
		Height: 6, Width: 6, Channels: []int{2, 3}, Stride: 1}})
	visionEfficient = pre(modality.Config{Kind: modality.KindVision, Architecture: "efficient", Vision: modality.VisionConfig{InChannels: 3,
		Height: 7, Width: 6, Channels: []int{2, 4}}})
	audioMel = pre(modality.Config{Kind: modality.KindAudio, Audio: modality.AudioConfig{SampleRate: 8000, Samples: 200, NFFT: 32, Hop: 16,
		NMels: 6, Channels: []int{3, 4}, Pool: 2}})
	audioMelNoCenter = pre(modality.Config{Kind: modality.KindAudio, Audio: modality.AudioConfig{SampleRate: 8000, Samples: 120, NFFT: 24,
		Hop: 10, NMels: 5, FMin: 100, FMax: 3000, NoCenter: true, Channels: []int{3}, Pool: 1}})
	audioRaw = pre(modality.Config{Kind: modality.KindAudio, Architecture: "raw", Audio: modality.AudioConfig{SampleRate: 8000, Samples: 160,
		Channels: []int{3, 4}, RawKernel: 16, RawStride: 8}})
	textMean = pre(modality.Config{Kind: modality.KindText, Text: modality.TextConfig{VocabSize: 11, SeqLen: 5, EmbedDim: 4}})
	textMax  = pre(modality.Config{Kind: modality.KindText, Text: modality.TextConfig{VocabSize: 11, SeqLen: 5, EmbedDim: 4,
		Positions: "sinusoidal", Pooling: "max"}})
	textMaxNoPad = pre(modality.Config{Kind: modality.KindText, Text: modality.TextConfig{VocabSize: 11, SeqLen: 4, EmbedDim: 3,
		Pooling: "max", PadID: -1}})
	textFirst = pre(modality.Config{Kind: modality.KindText, Text: modality.TextConfig{VocabSize: 11, SeqLen: 5, EmbedDim: 4,
		Positions: "none", Pooling: "first", PadID: -1}})
	textPlainMean = pre(modality.Config{Kind: modality.KindText, Text: modality.TextConfig{VocabSize: 11, SeqLen: 5, EmbedDim: 4, PadID: -1}})
	sensorAttn    = pre(modality.Config{Kind: modality.KindSensor, Sensor: modality.SensorConfig{Sensors: 3, TimeSteps: 8, Channels: []int{4},
		Pool: 2, Attention: true, Heads: 2}})
	sensorPlain = pre(modality.Config{Kind: modality.KindSensor, Sensor: modality.SensorConfig{Sensors: 2, TimeSteps: 6, Channels: []int{3, 2}}})
	videoFrames = pre(modality.Config{Kind: modality.KindVideo, Video: modality.VideoConfig{Frames: 3,
		Frame: modality.VisionConfig{InChannels: 1, Height: 5, Width: 5, Channels: []int{2}}, FrameDim: 3}})
	videoMean = pre(modality.Config{Kind: modality.KindVideo, Video: modality.VideoConfig{Frames: 2, Backbone: "resnet",
		Frame: modality.VisionConfig{InChannels: 1, Height: 4, Width: 4, Channels: []int{2}}, Temporal: "mean"}})
	videoEfficient = pre(modality.Config{Kind: modality.KindVideo, Video: modality.VideoConfig{Frames: 2, Backbone: "efficient",
		Frame: modality.VisionConfig{InChannels: 2, Height: 4, Width: 4, Channels: []int{2, 3}}, TemporalKernel: 1}})
	videoLiquid = pre(modality.Config{Kind: modality.KindVideo, Video: modality.VideoConfig{Frames: 3,
		Frame: modality.VisionConfig{InChannels: 1, Height: 4, Width: 4, Channels: []int{2}}, FrameDim: 3, Temporal: "liquid"}})
	video3D = pre(modality.Config{Kind: modality.KindVideo, Architecture: "conv3d", Video: modality.VideoConfig{Frames: 4,
		Frame: modality.VisionConfig{InChannels: 1, Height: 6, Width: 6}, Conv3DChannels: []int{2, 3}}})
)

// preprocessorCase is one preprocessor exported at opset.
type preprocessorCase struct {
	name  string
	cfg   modality.Config
	opset int
}

func preprocessorCases() []preprocessorCase {
	cases := []preprocessorCase{
		{"vision_simple_bn", visionSimple, 17}, {"vision_simple", visionPlain, 13}, {"vision_resnet", visionResnet, 17},
		{"vision_efficient", visionEfficient, 21}, {"audio_mel", audioMel, 17}, {"audio_mel_nocenter", audioMelNoCenter, 13},
		{"audio_raw", audioRaw, 17}, {"text_mean_pad", textMean, 17}, {"text_mean_pad_opset18", textMean, 18},
		{"text_max_pad", textMax, 13}, {"text_max_pad_opset18", textMax, 18}, {"text_max", textMaxNoPad, 17},
		{"text_first", textFirst, 17}, {"text_mean", textPlainMean, 21}, {"sensor_attention", sensorAttn, 17},
		{"sensor_attention_opset13", sensorAttn, 13}, {"sensor", sensorPlain, 17}, {"video_frames_conv", videoFrames, 17},
		{"video_frames_mean", videoMean, 18}, {"video_frames_efficient", videoEfficient, 17}, {"video_conv3d", video3D, 17},
		{"mlp_gelu", mlpPre, 17}, {"mlp_gelu_opset20", mlpPre, 20},
	}
	for _, act := range []string{"relu", "silu", "tanh", "sigmoid", "lecun_tanh", "identity"} {
		c := pre(modality.Config{Kind: modality.KindMLP, MLP: modality.MLPConfig{InputDim: 3, Hidden: []int{4, 3}, Activation: act}})
		cases = append(cases, preprocessorCase{"mlp_" + act, c, 17})
	}
	return cases
}

// Encoder variants.
func zeroResetEnc() model.EncoderConfig {
	e := enc()
	e.Reset, e.LearnBeta, e.LearnThreshold, e.GradedSpikes = model.ResetZero, true, true, true
	return e
}

func twoLayerEnc() model.EncoderConfig {
	e := enc()
	e.SpikingLayers, e.CfCMode, e.BackboneLayers, e.BackboneDropout = 2, model.CfCNoGate, 3, 0.3
	e.BackboneActivation = "silu"
	return e
}

func pureEnc() model.EncoderConfig {
	e := enc()
	e.CfCMode, e.Reset, e.ElapsedTime = model.CfCPure, model.ResetNone, 0.5
	return e
}

func ltcEnc() model.EncoderConfig {
	e := enc()
	e.Backbone, e.ODEUnfolds, e.NumSpikeSteps, e.ElapsedTime = model.BackboneLTC, 3, 2, 0.7
	return e
}

func learnThresholdEnc() model.EncoderConfig {
	e := enc()
	e.LearnThreshold, e.BackboneActivation, e.Beta = true, "gelu", 0.8
	return e
}

type encoderCase struct {
	name  string
	cfg   model.EncoderConfig
	opset int
}

func encoderCases() []encoderCase {
	subtract := enc()
	subtract.Surrogate.Kind = "atan"
	return []encoderCase{
		{"subtract_cfc_default", subtract, 17}, {"zero_reset_learned_graded", zeroResetEnc(), 17},
		{"two_layers_cfc_no_gate_deep_backbone", twoLayerEnc(), 13}, {"no_reset_cfc_pure", pureEnc(), 17},
		{"ltc", ltcEnc(), 17}, {"ltc_opset21", ltcEnc(), 21}, {"learned_threshold_gelu_backbone", learnThresholdEnc(), 17},
		{"learned_threshold_gelu_backbone_opset20", learnThresholdEnc(), 20},
	}
}
