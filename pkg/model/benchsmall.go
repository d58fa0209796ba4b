package model

import (
	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/modality"
)

// BenchSmallParams is the parameter count of the bench-small reference
// model (../shared/bench/ref_torch.py reports params: 315210).
const BenchSmallParams = 315210

// BenchSmallConfig returns the "bench-small" model of the performance
// reference (../shared/bench/README.md), layer for layer:
//
//   - vision [B,1,28,28]: Conv(1,16,3,s2,p1)-ReLU-Conv(16,32,3,s2,p1)-ReLU-
//     global average pool-Linear(32,128)
//   - text [B,16] ids, vocabulary 1000: Embedding(1000,64) + learned
//     positions (16×64), plain mean over the 16 tokens (no padding id),
//     Linear(64,128)
//   - per modality encoder: Linear(128,128); one LIF layer of 64 units over
//     T = 8 steps (β 0.95, θ 1, subtract reset, fast-sigmoid slope 25); CfC
//     of 64 units (default mode, one backbone layer of 64, lecun_tanh) over
//     the T spike vectors; Linear(64,128) of the last state
//   - hybrid fusion, 4 heads, fusion_dim 128: attention over the 2 tokens,
//     residual + LayerNorm, mean, concatenated with both features,
//     Linear(384,128)-ReLU, then the head Linear(128,10); cross-entropy
//
// 315,210 trainable parameters. Change NumSpikeSteps of both encoders for
// the T=32 rows of the reference table. lsfuse orders modalities by name
// (text, vision) where the reference stacks vision first: the attention
// block is permutation-equivariant and the mean permutation-invariant, so
// the only difference is the column order of the Linear(384,128) input
// ([pooled, text, vision] here, [pooled, vision, text] there).
func BenchSmallConfig() NetworkConfig {
	enc := EncoderConfig{
		EncoderDim: 128, SpikingUnits: 64, SpikingLayers: 1, NumSpikeSteps: 8,
		Beta: 0.95, Threshold: 1, Reset: "subtract",
		LiquidUnits: 64, Backbone: BackboneCfC, CfCMode: "default", BackboneUnits: 64, BackboneLayers: 1,
		Fused: true,
	}
	return NetworkConfig{
		Modalities: map[string]ModalityConfig{
			"vision": {
				Preprocessor: modality.Config{Kind: modality.KindVision, Architecture: "simple", OutputDim: 128,
					Vision: modality.VisionConfig{InChannels: 1, Height: 28, Width: 28, Channels: []int{16, 32}, Kernel: 3, Stride: 2}},
				Encoder: enc,
			},
			"text": {
				Preprocessor: modality.Config{Kind: modality.KindText, OutputDim: 128,
					Text: modality.TextConfig{VocabSize: 1000, SeqLen: 16, EmbedDim: 64, Positions: "learned", PadID: -1, Pooling: "mean"}},
				Encoder: enc,
			},
		},
		Fusion:    fusion.Config{Strategy: fusion.Hybrid, Dim: 128, Heads: 4},
		OutputDim: 10,
		Head:      HeadClassification,
	}
}
