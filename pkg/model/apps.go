package model

import (
	"fmt"

	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/modality"
)

// Ready applications: the seed's multimodal_applications.py as functions
// that return a validated NetworkConfig (build it with NewNetwork; the
// fields may be edited first, e.g. a preprocessor's channels). Their
// defaults mirror the seed's constructor arguments and its "Best Practices"
// (fusion strategy and attention heads per task). What the seed does not
// fix, and what lsfuse shrinks so that the models train on a CPU, is marked
// "shrunk" below.

// Modality names the applications use (the keys of data inputs and
// configs).
const (
	AppVision = "vision"
	AppText   = "text"
	AppAudio  = "audio"
	AppVideo  = "video"
	AppSensor = "sensor"
)

// GPT2VocabSize is the seed's text_vocab_size default (GPT-2's BPE).
const GPT2VocabSize = 50257

// AppEncoder sizes every modality encoder of an application. Zero fields
// take the defaults in brackets; the seed's are input_dim 2048/1024,
// encoder_dim 512, liquid_units 256, spiking_units 128, num_spike_steps 32
// (shrunk: lsfuse's bench-small sizes, ~4× fewer steps and ~16× fewer
// multiply-adds).
type AppEncoder struct {
	// InputDim is each preprocessor's output width [128].
	InputDim int
	// EncoderDim is each modality feature's width [128].
	EncoderDim int
	// LiquidUnits is the CfC state width [64].
	LiquidUnits int
	// SpikingUnits is the spiking layer width [64].
	SpikingUnits int
	// NumSpikeSteps is T [8].
	NumSpikeSteps int
}

func (a AppEncoder) withDefaults(steps int) AppEncoder {
	a.InputDim = orDefault(a.InputDim, 128)
	a.EncoderDim = orDefault(a.EncoderDim, 128)
	a.LiquidUnits = orDefault(a.LiquidUnits, 64)
	a.SpikingUnits = orDefault(a.SpikingUnits, 64)
	a.NumSpikeSteps = orDefault(a.NumSpikeSteps, steps)
	return a
}

// modality returns the ModalityConfig of preprocessor p with these sizes:
// one Linear→LIF layer, a CfC whose backbone is as wide as its state.
func (a AppEncoder) modality(p modality.Config) ModalityConfig {
	p.OutputDim = a.InputDim
	return ModalityConfig{Preprocessor: p, Encoder: EncoderConfig{
		InputDim: a.InputDim, EncoderDim: a.EncoderDim, LiquidUnits: a.LiquidUnits, SpikingUnits: a.SpikingUnits,
		NumSpikeSteps: a.NumSpikeSteps, SpikingLayers: 1, BackboneUnits: a.LiquidUnits}}
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// imageSize returns s, or 3×224×224 (the seed's image_size) when zero.
func imageSize(s [3]int) [3]int {
	if s == ([3]int{}) {
		return [3]int{3, 224, 224}
	}
	return s
}

func visionConfig(size [3]int, arch string) modality.Config {
	return modality.Config{Kind: modality.KindVision, Architecture: arch,
		Vision: modality.VisionConfig{InChannels: size[0], Height: size[1], Width: size[2]}}
}

// textConfig embeds ids of a vocabulary of vocab tokens, seqLen per
// sample. Padding is id 0 (pkg/data's built vocabularies), or
// <|endoftext|> for GPT-2's vocabulary.
func textConfig(vocab, seqLen int) modality.Config {
	pad := 0
	if vocab == GPT2VocabSize {
		pad = GPT2VocabSize - 1
	}
	return modality.Config{Kind: modality.KindText, Text: modality.TextConfig{VocabSize: vocab, SeqLen: seqLen, PadID: pad}}
}

func audioConfig(rate, samples int) modality.Config {
	return modality.Config{Kind: modality.KindAudio, Audio: modality.AudioConfig{SampleRate: rate, Samples: samples}}
}

// finishApp validates cfg by building its Network description.
func finishApp(app string, cfg NetworkConfig) (NetworkConfig, error) {
	if _, err := NewNetwork(cfg); err != nil {
		return NetworkConfig{}, fmt.Errorf("%s: %w", app, err)
	}
	return cfg, nil
}

// Vision–language tasks (VisionLanguageOptions.Task).
const (
	// TaskClassify predicts one of NumClasses from image and text: image
	// classification with a description, or VQA with answer classes.
	TaskClassify = "classify"
	// TaskCaption generates the image's caption with the caption head.
	TaskCaption = "caption"
)

// VisionLanguageOptions configure VisionLanguageModel (the seed's
// VisionLanguageModel(image_size, text_vocab_size, text_seq_length,
// fusion_dim, num_classes)).
type VisionLanguageOptions struct {
	// ImageSize is C, H, W [3, 224, 224].
	ImageSize [3]int
	// TextVocabSize is the token vocabulary [50257, GPT-2].
	TextVocabSize int
	// TextSeqLength is the text length in tokens [128].
	TextSeqLength int
	// FusionDim is the fused representation's width [512].
	FusionDim int
	// NumClasses is the number of answer classes [1000]; for TaskCaption
	// the caption vocabulary [TextVocabSize] (the seed's num_classes =
	// 50257 "for generation").
	NumClasses int
	// Task is TaskClassify (default) or TaskCaption.
	Task string
	// CaptionLen is the caption length L in tokens, <bos> and <eos>
	// included [TextSeqLength] (TaskCaption only).
	CaptionLen int
	// Strategy is the fusion strategy [hybrid, the seed's choice for
	// captioning]; Heads the attention heads [8].
	Strategy string
	Heads    int
	// VisionArch is the vision preprocessor [resnet, the seed's].
	VisionArch string
	// Encoder sizes the modality encoders.
	Encoder AppEncoder
	// Caption sizes the caption decoder (TaskCaption only).
	Caption CaptionConfig
}

// VisionLanguageModel returns the image + text network. TaskClassify fuses
// an image ("vision": [B, C, H, W]) and a text ("text": ids [B, L]) and
// classifies. TaskCaption encodes the image alone and decodes its caption
// with the caption head (TokenLen = CaptionLen; IgnoreIndex 0, the padding
// of pkg/data's vocabularies, or -1 for GPT-2's, whose padding is <eos>):
// the decoder is the language side, embedding the caption tokens itself.
func VisionLanguageModel(o VisionLanguageOptions) (NetworkConfig, error) {
	size := imageSize(o.ImageSize)
	vocab := orDefault(o.TextVocabSize, GPT2VocabSize)
	seqLen := orDefault(o.TextSeqLength, 128)
	enc := o.Encoder.withDefaults(8)
	cfg := NetworkConfig{
		Modalities: map[string]ModalityConfig{AppVision: enc.modality(visionConfig(size, orString(o.VisionArch, "resnet")))},
		Fusion:     fusion.Config{Strategy: orString(o.Strategy, fusion.Hybrid), Dim: orDefault(o.FusionDim, 512), Heads: orDefault(o.Heads, 8)},
	}
	switch o.Task {
	case "", TaskClassify:
		cfg.Modalities[AppText] = enc.modality(textConfig(vocab, seqLen))
		cfg.OutputDim = orDefault(o.NumClasses, 1000)
	case TaskCaption:
		cfg.Head = HeadCaption
		cfg.OutputDim = orDefault(o.NumClasses, vocab)
		cfg.TokenLen = orDefault(o.CaptionLen, seqLen)
		cfg.Caption = o.Caption
		if cfg.OutputDim == GPT2VocabSize {
			// GPT-2's <|endoftext|> is <bos>, <eos> and padding at once:
			// ignoring padding would ignore <eos>, so nothing is ignored
			// (the model also learns that <eos> follows <eos>).
			cfg.IgnoreIndex = -1
			if cfg.Caption.BOS == 0 && cfg.Caption.EOS == 0 {
				cfg.Caption.BOS, cfg.Caption.EOS = GPT2VocabSize-1, GPT2VocabSize-1
			}
		}
	default:
		return NetworkConfig{}, fmt.Errorf("vision-language model: task %q: want %s or %s", o.Task, TaskClassify, TaskCaption)
	}
	return finishApp("vision-language model", cfg)
}

// AudioVideoOptions configure AudioVideoModel (the seed's
// AudioVideoModel(video_frames, audio_sample_rate, fusion_dim,
// num_classes)).
type AudioVideoOptions struct {
	// VideoFrames is the clip length [16].
	VideoFrames int
	// FrameSize is each frame's C, H, W [3, 112, 112] (not in the seed).
	FrameSize [3]int
	// AudioSampleRate is in Hz [16000]; AudioSamples the waveform length
	// [AudioSampleRate: one second].
	AudioSampleRate, AudioSamples int
	// FusionDim [512]; NumClasses [400, Kinetics-400 actions].
	FusionDim, NumClasses int
	// Strategy [hierarchical, the seed's choice for video]; Heads [8; the
	// seed says 12, which does not divide the encoder width 128].
	Strategy string
	Heads    int
	// NoAlign turns the temporal alignment off: each modality's encoder
	// then sees its pooled clip feature at every step (direct coding).
	NoAlign bool
	// Encoder sizes the encoders; NumSpikeSteps defaults to VideoFrames,
	// the common length both modalities are aligned to.
	Encoder AppEncoder
}

// AudioVideoModel returns the video + audio network with the seed's
// TemporalAligner: the audio's log-mel frames (after its conv stack) and
// the video's frame features (after its temporal conv) are resampled by
// linear interpolation to T = num_spike_steps steps and drive their
// spiking encoders step by step (see TemporalResample and
// NetworkConfig.Align). Inputs: "video" [B, frames, C, H, W], "audio"
// [B, samples].
func AudioVideoModel(o AudioVideoOptions) (NetworkConfig, error) {
	frames := orDefault(o.VideoFrames, 16)
	fs := o.FrameSize
	if fs == ([3]int{}) {
		fs = [3]int{3, 112, 112}
	}
	rate := orDefault(o.AudioSampleRate, 16000)
	enc := o.Encoder.withDefaults(frames)
	video := modality.Config{Kind: modality.KindVideo, Architecture: "frames", Video: modality.VideoConfig{
		Frames: frames, Frame: modality.VisionConfig{InChannels: fs[0], Height: fs[1], Width: fs[2]}}}
	cfg := NetworkConfig{
		Modalities: map[string]ModalityConfig{
			AppVideo: enc.modality(video),
			AppAudio: enc.modality(audioConfig(rate, orDefault(o.AudioSamples, rate))),
		},
		Fusion:    fusion.Config{Strategy: orString(o.Strategy, fusion.Hierarchical), Dim: orDefault(o.FusionDim, 512), Heads: orDefault(o.Heads, 8)},
		OutputDim: orDefault(o.NumClasses, 400),
	}
	if !o.NoAlign {
		cfg.Align = []string{AppAudio, AppVideo}
	}
	return finishApp("audio-video model", cfg)
}

// RobotOptions configure RobotMultiSensorModel (the seed's
// RobotMultiSensorModel(camera_size, num_sensors, fusion_dim,
// action_dim=7)).
type RobotOptions struct {
	// CameraSize is C, H, W [3, 224, 224].
	CameraSize [3]int
	// NumSensors is the number of sensor channels [10: LiDAR, IMU, GPS…];
	// SensorSteps the length of each series [100] (not in the seed).
	NumSensors, SensorSteps int
	// FusionDim [512]; ActionDim [7: 6-DoF + gripper].
	FusionDim, ActionDim int
	// Strategy [early, the seed's choice for robot control: fast]; Heads
	// [4].
	Strategy string
	Heads    int
	// Encoder sizes the encoders.
	Encoder AppEncoder
}

// RobotMultiSensorModel returns the camera + sensors network regressing
// the action vector (head regression, mean squared error). Inputs:
// "vision" [B, C, H, W] (the efficient architecture, the seed's camera
// choice) and "sensor" [B, sensors, steps] (1-D convolutions).
func RobotMultiSensorModel(o RobotOptions) (NetworkConfig, error) {
	enc := o.Encoder.withDefaults(8)
	sensor := modality.Config{Kind: modality.KindSensor, Sensor: modality.SensorConfig{
		Sensors: orDefault(o.NumSensors, 10), TimeSteps: orDefault(o.SensorSteps, 100)}}
	cfg := NetworkConfig{
		Modalities: map[string]ModalityConfig{
			AppVision: enc.modality(visionConfig(imageSize(o.CameraSize), "efficient")),
			AppSensor: enc.modality(sensor),
		},
		Fusion:    fusion.Config{Strategy: orString(o.Strategy, fusion.Early), Dim: orDefault(o.FusionDim, 512), Heads: orDefault(o.Heads, 4)},
		Head:      HeadRegression,
		OutputDim: orDefault(o.ActionDim, 7),
	}
	return finishApp("robot model", cfg)
}

// TriModalOptions configure TriModalModel (the seed's
// TriModalModel(image_size, text_vocab_size, audio_sample_rate,
// fusion_dim, num_classes)).
type TriModalOptions struct {
	// ImageSize [3, 224, 224]; TextVocabSize [50257]; TextSeqLength [128].
	ImageSize                    [3]int
	TextVocabSize, TextSeqLength int
	// AudioSampleRate [16000]; AudioSamples [one second].
	AudioSampleRate, AudioSamples int
	// FusionDim [512]; NumClasses [1000].
	FusionDim, NumClasses int
	// Strategy [hybrid]; Heads [8].
	Strategy string
	Heads    int
	// Encoder sizes the encoders.
	Encoder AppEncoder
}

// TriModalModel returns the vision + audio + text classifier. Inputs:
// "vision" [B, C, H, W] (resnet), "audio" [B, samples] (log-mel + conv),
// "text" [B, L] ids.
func TriModalModel(o TriModalOptions) (NetworkConfig, error) {
	enc := o.Encoder.withDefaults(8)
	rate := orDefault(o.AudioSampleRate, 16000)
	cfg := NetworkConfig{
		Modalities: map[string]ModalityConfig{
			AppVision: enc.modality(visionConfig(imageSize(o.ImageSize), "resnet")),
			AppAudio:  enc.modality(audioConfig(rate, orDefault(o.AudioSamples, rate))),
			AppText:   enc.modality(textConfig(orDefault(o.TextVocabSize, GPT2VocabSize), orDefault(o.TextSeqLength, 128))),
		},
		Fusion:    fusion.Config{Strategy: orString(o.Strategy, fusion.Hybrid), Dim: orDefault(o.FusionDim, 512), Heads: orDefault(o.Heads, 8)},
		OutputDim: orDefault(o.NumClasses, 1000),
	}
	return finishApp("tri-modal model", cfg)
}
