package config

// Config is one experiment: the model, the data it trains on, how it
// trains, how it is exported and where the run goes. It is the decoded form
// of the YAML experiment file; every key is snake_case and every field
// below names its key, type, unit, default and valid range. Load fills it
// (defaults < files < environment < flags), Complete fills the defaults
// that depend on other keys, and Validate checks it.
type Config struct {
	// Model (model) is the network: modalities, fusion and head.
	Model ModelConfig `mapstructure:"model"`
	// Data (data) says where the samples come from and how they are batched.
	Data DataConfig `mapstructure:"data"`
	// Train (train) is the optimisation: epochs, optimiser, schedule,
	// stages, early stopping, checkpoints.
	Train TrainConfig `mapstructure:"train"`
	// Export (export) configures `lsfuse export`.
	Export ExportConfig `mapstructure:"export"`
	// Run (run) names the run and its directory, seed and device.
	Run RunConfig `mapstructure:"run"`
}

// ModelConfig is the seed's MultiModalFusionNetwork(modality_configs,
// fusion_strategy, fusion_dim, num_attention_heads, output_dim) plus the
// head. It becomes a model.NetworkConfig (see Resolve).
type ModelConfig struct {
	// Modalities (model.modalities.<name>) maps a modality name to its
	// encoder and preprocessing. Names are lower-case snake_case
	// ([a-z][a-z0-9_]*), at least one is required; the name is used in
	// parameter names, data inputs and error messages.
	Modalities map[string]ModalityConfig `mapstructure:"modalities"`
	// FusionStrategy (model.fusion_strategy, string): early, late, hybrid or
	// hierarchical. Default hybrid. hybrid and hierarchical need the same
	// encoder_dim for every modality.
	FusionStrategy string `mapstructure:"fusion_strategy"`
	// FusionDim (model.fusion_dim, int ≥ 1): width of the fused
	// representation handed to the head. Default 128.
	FusionDim int `mapstructure:"fusion_dim"`
	// NumAttentionHeads (model.num_attention_heads, int ≥ 1): heads of the
	// cross-modal attention (hybrid, hierarchical); must divide the common
	// encoder_dim. Default 4.
	NumAttentionHeads int `mapstructure:"num_attention_heads"`
	// FusionDropout (model.fusion_dropout, float in [0, 1)): attention-weight
	// dropout and dropout after the fusion projection, training only.
	// Default 0.
	FusionDropout float64 `mapstructure:"fusion_dropout"`
	// ModalityWeights (model.modality_weights, bool): learnable softmax
	// weights per modality (the seed's "modality balancing"). Default false
	// (fixed 1/M).
	ModalityWeights bool `mapstructure:"modality_weights"`
	// ModalityDropout (model.modality_dropout.<name>, float in [0, 1)): the
	// probability that a training sample loses that modality (replaced by a
	// learned missing embedding); the seed's answer to one modality
	// dominating. Default none.
	ModalityDropout map[string]float64 `mapstructure:"modality_dropout"`
	// FusedOps (model.fused_ops, bool): run each encoder's LIF and CfC
	// sequences as fused kernels (one op per sequence, hand-written BPTT)
	// instead of the unrolled per-step graph. Same equations, much faster;
	// the unrolled graph stays the tested reference. Default true.
	FusedOps bool `mapstructure:"fused_ops"`
	// MissingEmbedding (model.missing_embedding, bool): give every modality
	// a learned "missing" embedding so the model runs with a modality absent.
	// Implied by any positive modality_dropout. Default false.
	MissingEmbedding bool `mapstructure:"missing_embedding"`
	// OutputDim (model.output_dim, int ≥ 1): number of classes, regression
	// targets or the token vocabulary. 0 (the default) takes it from the
	// data: the number of label classes, the label vector's length or the
	// label vocabulary's size.
	OutputDim int `mapstructure:"output_dim"`
	// Head (model.head, string): classification, regression, tokens or
	// caption (an autoregressive liquid decoder trained with teacher
	// forcing on data.label_kind tokens; see model.caption). Default
	// classification.
	Head string `mapstructure:"head"`
	// HeadHidden (model.head_hidden, int ≥ 0): width of a hidden ReLU layer
	// in the head; 0 (the default) is a single Linear.
	HeadHidden int `mapstructure:"head_hidden"`
	// TokenLen (model.token_len, int ≥ 1): predicted positions of the tokens
	// head, or the caption head's label length (<bos> … <eos> <pad>…; it
	// predicts token_len − 1 positions); 0 takes data.label_text.length.
	// Ignored by other heads.
	TokenLen int `mapstructure:"token_len"`
	// IgnoreIndex (model.ignore_index, int): label id the tokens and caption
	// losses skip (padding). Default 0 (the <pad> id of built
	// vocabularies); -1 ignores nothing (gpt2 captions, whose padding is
	// <eos>).
	IgnoreIndex int `mapstructure:"ignore_index"`
	// Caption (model.caption) sizes the caption head and its generation.
	Caption CaptionSettings `mapstructure:"caption"`
	// TemporalAlign (model.temporal_align, list of modality names): the
	// seed's TemporalAligner. The listed modalities (audio, video frames
	// with temporal conv or mean, text) keep one preprocessor feature per
	// time step; the steps are resampled by linear interpolation to the
	// modalities' common num_spike_steps and drive their spiking encoders
	// step by step instead of direct coding. Default none.
	TemporalAlign []string `mapstructure:"temporal_align"`
}

// ModalityConfig is one entry of the seed's modality_configs: the
// preprocessor (raw input → [B, input_dim]) and the liquid-spiking encoder
// ([B, input_dim] → [B, encoder_dim]).
type ModalityConfig struct {
	// Type (type, string): the preprocessor kind — vision, audio, text,
	// sensor, video or mlp. Default: the modality's name when that is a
	// kind (a modality named "vision" is of type vision), else required.
	Type string `mapstructure:"type"`
	// InputDim (input_dim, int ≥ 1): the preprocessor's output width and the
	// encoder's input width. Default 128.
	InputDim int `mapstructure:"input_dim"`
	// EncoderDim (encoder_dim, int ≥ 1): width of the projection and of the
	// modality feature. Default 128.
	EncoderDim int `mapstructure:"encoder_dim"`
	// LiquidUnits (liquid_units, int ≥ 1): the liquid cell's state width.
	// Default 64.
	LiquidUnits int `mapstructure:"liquid_units"`
	// SpikingUnits (spiking_units, int ≥ 1): width of the last spiking
	// layer. Default 64.
	SpikingUnits int `mapstructure:"spiking_units"`
	// SpikingLayers (spiking_layers, int ≥ 1): Linear→LIF layers. Default 1.
	SpikingLayers int `mapstructure:"spiking_layers"`
	// NumSpikeSteps (num_spike_steps, int ≥ 1): T, the simulation steps of
	// the spiking encoder (and sequence length of the liquid cell).
	// Default 8.
	NumSpikeSteps int `mapstructure:"num_spike_steps"`
	// Beta (beta, float in [0, 1]): membrane decay. Default 0.95.
	Beta float64 `mapstructure:"beta"`
	// Threshold (threshold, float > 0): firing threshold. Default 1.
	Threshold float64 `mapstructure:"threshold"`
	// Reset (reset, string): subtract, zero or none. Default subtract.
	Reset string `mapstructure:"reset"`
	// LearnBeta, LearnThreshold (learn_beta, learn_threshold, bool):
	// per-neuron trainable β and θ. Default false.
	LearnBeta      bool `mapstructure:"learn_beta"`
	LearnThreshold bool `mapstructure:"learn_threshold"`
	// GradedSpikes (graded_spikes, bool): a trainable factor per spiking
	// neuron. Default false.
	GradedSpikes bool `mapstructure:"graded_spikes"`
	// Surrogate (surrogate) is the spike's backward pass.
	Surrogate SurrogateConfig `mapstructure:"surrogate"`
	// Dropout (dropout, float in [0, 1)): dropout on spikes between spiking
	// layers, training only (the seed's per-modality dropout). Default 0.
	Dropout float64 `mapstructure:"dropout"`
	// Backbone (backbone, string): the liquid cell, cfc or ltc. Default cfc.
	Backbone string `mapstructure:"backbone"`
	// CfCMode (cfc_mode, string): default, no_gate or pure (cfc only).
	// Default "default" for cfc; must stay empty for ltc.
	CfCMode string `mapstructure:"cfc_mode"`
	// BackboneUnits, BackboneLayers (backbone_units, backbone_layers,
	// int ≥ 1): the CfC backbone MLP. Default 64 and 1.
	BackboneUnits  int `mapstructure:"backbone_units"`
	BackboneLayers int `mapstructure:"backbone_layers"`
	// BackboneActivation (backbone_activation, string): relu, gelu, silu,
	// tanh, sigmoid, lecun_tanh or identity. Default lecun_tanh.
	BackboneActivation string `mapstructure:"backbone_activation"`
	// BackboneDropout (backbone_dropout, float in [0, 1)): dropout in the
	// CfC backbone, training only. Default 0.
	BackboneDropout float64 `mapstructure:"backbone_dropout"`
	// ElapsedTime (elapsed_time, float > 0): the liquid cell's time step ts
	// between spike steps. Default 1.
	ElapsedTime float64 `mapstructure:"elapsed_time"`
	// ODEUnfolds (ode_unfolds, int ≥ 1): LTC solver steps per update
	// (ltc only). Default 6 for ltc, 0 for cfc.
	ODEUnfolds int `mapstructure:"ode_unfolds"`
	// Preprocessing (preprocessing) holds the preprocessor's settings: the
	// key "architecture" and the keys of the type's settings (pkg/modality:
	// VisionConfig for vision, AudioConfig for audio, ...), flat, e.g.
	// {architecture: simple, in_channels: 1, height: 28, width: 28}. Keys of
	// another type are errors. Zero or absent keys take pkg/modality's
	// defaults, and sizes given by the data input (image size, audio length,
	// text length, sensor channels) are filled in from data.inputs.<name>.
	Preprocessing map[string]any `mapstructure:"preprocessing"`
}

// CaptionSettings (model.caption) is model.CaptionConfig: the caption
// head's liquid decoder and how captions are generated (evaluation BLEU,
// lsfuse predict).
type CaptionSettings struct {
	// EmbedDim (embed_dim, int ≥ 1): token embedding width. Default 64.
	EmbedDim int `mapstructure:"embed_dim"`
	// Units (units, int ≥ 1): the decoder CfC's state width. Default 128.
	Units int `mapstructure:"units"`
	// BackboneUnits (backbone_units, int ≥ 0): the CfC backbone width; 0
	// (default) means units.
	BackboneUnits int `mapstructure:"backbone_units"`
	// Mode (mode, string): the CfC mode, default, no_gate or pure.
	// Default "default".
	Mode string `mapstructure:"mode"`
	// BOS, EOS (bos, eos, int ≥ 0): the ids that start and end a caption;
	// 0 (default) takes the label tokenizer's (2 and 3 for word and char
	// vocabularies, 50256 for gpt2).
	BOS int `mapstructure:"bos"`
	EOS int `mapstructure:"eos"`
	// MaxLen (max_len, int ≥ 0): the most tokens generated after <bos>; 0
	// (default) means token_len − 1.
	MaxLen int `mapstructure:"max_len"`
	// BeamSize (beam_size, int ≥ 1): beam width of generation; 1 (default)
	// is greedy decoding.
	BeamSize int `mapstructure:"beam_size"`
}

// SurrogateConfig (model.modalities.<name>.surrogate) selects the spike's
// surrogate gradient (nn.Surrogate).
type SurrogateConfig struct {
	// Kind (kind, string): fast_sigmoid, atan, sigmoid, triangular or
	// straight_through. Default fast_sigmoid.
	Kind string `mapstructure:"kind"`
	// Slope (slope, float ≥ 0): sharpness; 0 takes the kind's default
	// (fast_sigmoid 25, atan 2, sigmoid 25, triangular 1). Default 25.
	Slope float64 `mapstructure:"slope"`
	// Scale (scale, float > 0): multiplies the surrogate derivative.
	// Default 1.
	Scale float64 `mapstructure:"scale"`
}

// DataConfig (data) says where samples come from: manifests (CSV or JSONL
// whose columns name files or values per modality plus a label) or a
// built-in dataset, and how they are batched. Relative paths in a config
// file are relative to that file's directory; paths given by flags or the
// environment are relative to the working directory.
type DataConfig struct {
	// Builtin (data.builtin, string): avdigits or fashion, a dataset made by
	// `lsfuse data <name>`; it sets the manifest to <dir>/manifest.csv, the
	// split column and the input columns unless they are given. Default ""
	// (use data.train).
	Builtin string `mapstructure:"builtin"`
	// Dir (data.dir, path): where the built-in dataset lives. Default
	// data/<builtin>.
	Dir string `mapstructure:"dir" lsfuse:"path"`
	// Train (data.train, path): the training manifest, or the manifest of
	// every split when split_column is set. Required unless builtin.
	Train string `mapstructure:"train" lsfuse:"path"`
	// Val, Test (data.val, data.test, path): separate validation and test
	// manifests (same columns). Default "": rows of data.train selected by
	// split_column, or carved off by val_fraction / test_fraction.
	Val  string `mapstructure:"val" lsfuse:"path"`
	Test string `mapstructure:"test" lsfuse:"path"`
	// Format (data.format, string): csv or jsonl; "" picks by extension.
	Format string `mapstructure:"format"`
	// SplitColumn (data.split_column, string): a manifest column naming each
	// row's split (train, val/valid/validation/dev, test). Default "".
	SplitColumn string `mapstructure:"split_column"`
	// ValFraction (data.val_fraction, float in [0, 1)): share of the
	// training rows held out (class-stratified, seeded by run.seed) for
	// validation when there is no validation manifest or split. Default 0.1.
	ValFraction float64 `mapstructure:"val_fraction"`
	// TestFraction (data.test_fraction, float in [0, 1)): share of the
	// training rows held out for testing when there is no test manifest or
	// split. Default 0.
	TestFraction float64 `mapstructure:"test_fraction"`
	// LabelColumn (data.label_column, string): the target column. Default
	// "label".
	LabelColumn string `mapstructure:"label_column"`
	// LabelKind (data.label_kind, string): category, number, vector or
	// tokens. Default category.
	LabelKind string `mapstructure:"label_kind"`
	// LabelClasses (data.label_classes, list of strings): the class list
	// (class id = position). Empty (default): the sorted classes of the
	// training split.
	LabelClasses []string `mapstructure:"label_classes"`
	// NormalizeLabel (data.normalize_label, bool): standardise number/vector
	// labels with training-split moments. Default false.
	NormalizeLabel bool `mapstructure:"normalize_label"`
	// LabelText (data.label_text): tokenisation of tokens labels, with the
	// keys of data.TextConfig (tokenizer, length, add_bos, add_eos, vocab,
	// allow_empty). Default empty (word tokenizer, natural length).
	LabelText map[string]any `mapstructure:"label_text"`
	// OnError (data.on_error, string): fail (the first bad row is an error
	// naming file, row and column) or skip (bad rows are dropped and
	// counted). Default fail.
	OnError string `mapstructure:"on_error"`
	// Inputs (data.inputs.<modality>) maps each model modality to its
	// manifest column and decoding. Every model modality needs one.
	Inputs map[string]InputConfig `mapstructure:"inputs"`
	// Augment (data.augment, bool): seeded training augmentation (image
	// crop/flip, audio noise, as configured per input; needs train.cache
	// false). Default false.
	Augment bool `mapstructure:"augment"`
	// MaxTrainSamples, MaxEvalSamples (data.max_train_samples,
	// data.max_eval_samples, int ≥ 0): use only the first N samples of the
	// training (validation, test) part, for quick runs; 0 (default) uses
	// all.
	MaxTrainSamples int `mapstructure:"max_train_samples"`
	MaxEvalSamples  int `mapstructure:"max_eval_samples"`
}

// InputConfig (data.inputs.<modality>) types one manifest column as a
// modality's input. Besides the keys below it takes, flat, the keys of
// its kind's decoding settings (pkg/data: ImageConfig for image — channels,
// height, width, interpolation, mean, std, normalize, augment —,
// AudioConfig for audio — sample_rate, channels, length, align, resample,
// add_noise, noise_snr —, TextConfig for text — tokenizer, length, add_bos,
// add_eos, vocab, allow_empty —, SensorConfig for sensor, VideoConfig for
// video). Keys of another kind are errors.
type InputConfig struct {
	// Column (column, string): the manifest column. Default: the modality
	// name.
	Column string `mapstructure:"column"`
	// Kind (kind, string): image, audio, text, sensor or video. Default from
	// the modality type (vision → image, audio → audio, text → text, sensor
	// → sensor, video → video).
	Kind string `mapstructure:"kind"`
	// Optional (optional, bool): an empty cell means the modality is absent
	// for that sample. Default false.
	Optional bool `mapstructure:"optional"`
	// FromFile (from_file, bool, text only): the cell is a path to a text
	// file. Default false.
	FromFile bool `mapstructure:"from_file"`
	// Settings holds the kind's decoding keys (see the type comment).
	Settings map[string]any `mapstructure:",remain"`
}

// TrainConfig (train) is the optimisation, key for key train.Config (see
// pkg/train for the exact semantics; Resolve converts it, with the seed
// from run.seed).
type TrainConfig struct {
	// Epochs (train.epochs, int ≥ 0): passes over the training data. 0
	// (the default) means the stages' total, or 10 without stages. With
	// stages, a smaller value cuts them short and a larger one extends the
	// last stage.
	Epochs int `mapstructure:"epochs"`
	// BatchSize (train.batch_size, int ≥ 1): samples per micro-batch (and
	// per validation batch). Default 32.
	BatchSize int `mapstructure:"batch_size"`
	// Optimizer (train.optimizer, string): adam, adamw (decoupled weight
	// decay) or sgd. Default adam.
	Optimizer string `mapstructure:"optimizer"`
	// LR (train.lr, float > 0): the base learning rate. Default 1e-3.
	LR float64 `mapstructure:"lr"`
	// WeightDecay (train.weight_decay, float ≥ 0): L2 (adam, sgd) or
	// decoupled (adamw) decay. Default 0.
	WeightDecay float64 `mapstructure:"weight_decay"`
	// Momentum (train.momentum, float in [0, 1)): SGD momentum. Default 0.
	Momentum float64 `mapstructure:"momentum"`
	// Nesterov (train.nesterov, bool): Nesterov momentum (sgd, needs
	// momentum > 0). Default false.
	Nesterov bool `mapstructure:"nesterov"`
	// Schedule (train.schedule) maps the optimiser step to a learning rate.
	Schedule ScheduleSettings `mapstructure:"schedule"`
	// ModalityLR (train.modality_lr.<prefix>, float ≥ 0): learning-rate
	// multiplier of the parameters under a scope: a modality name, fusion
	// or head (the seed's "different learning rates per modality"); 0
	// freezes the group. Default none (1 for every parameter).
	ModalityLR map[string]float64 `mapstructure:"modality_lr"`
	// ClipNorm (train.clip_norm, float ≥ 0): global L2 gradient-norm limit;
	// 0 (default) disables clipping.
	ClipNorm float64 `mapstructure:"clip_norm"`
	// AccumSteps (train.accum_steps, int ≥ 1): micro-batches whose
	// gradients are averaged into one optimiser step. Default 1.
	AccumSteps int `mapstructure:"accum_steps"`
	// LossScale (train.loss_scale) is dynamic loss scaling.
	LossScale LossScaleSettings `mapstructure:"loss_scale"`
	// MixedPrecision (train.mixed_precision, string): off, fp16 or bf16.
	// Default off. With fp16 or bf16 every GEMM of the CUDA executor
	// rounds its two inputs to that format and multiplies them with
	// float32 accumulation into float32 outputs; weights, optimiser state
	// and activations stay float32 (master weights). It needs --device
	// cuda (a CPU run with it is a usage error). fp16 keeps 11 significant
	// bits but a range of only about 6e-8 to 65504, so small gradients
	// underflow: use it with train.loss_scale.enabled true. bf16 keeps
	// float32's range with 8 significant bits and needs no loss scale.
	MixedPrecision string `mapstructure:"mixed_precision"`
	// Stages (train.stages) are progressive training stages, run in order;
	// empty (default) trains everything for train.epochs.
	Stages []StageSettings `mapstructure:"stages"`
	// EarlyStop (train.early_stop) picks the monitored metric (which also
	// chooses best.ckpt) and when to stop.
	EarlyStop EarlyStopSettings `mapstructure:"early_stop"`
	// DropLast (train.drop_last, bool): drop a short last training batch.
	// Default false.
	DropLast bool `mapstructure:"drop_last"`
	// Workers (train.workers, int ≥ 0): decoding goroutines; 0 means 1.
	// Default 2.
	Workers int `mapstructure:"workers"`
	// Prefetch (train.prefetch, int ≥ 0): batches decoded ahead. Default 2.
	Prefetch int `mapstructure:"prefetch"`
	// Cache (train.cache, bool): keep decoded samples in memory after the
	// first epoch (not with data.augment). Default true.
	Cache bool `mapstructure:"cache"`
	// LogEvery (train.log_every, int ≥ 0): micro-batches between step lines
	// in metrics.jsonl (and plain progress lines); 0 writes epoch lines
	// only. Default 10.
	LogEvery int `mapstructure:"log_every"`
	// CheckpointEvery (train.checkpoint_every, int ≥ 0): also write
	// epoch-N.ckpt every N epochs; 0 (default) writes none. last.ckpt and
	// best.ckpt are always written.
	CheckpointEvery int `mapstructure:"checkpoint_every"`
	// KeepLast (train.keep_last, int ≥ 0): keep only the newest N
	// epoch-N.ckpt; 0 (default) keeps all.
	KeepLast int `mapstructure:"keep_last"`
}

// ScheduleSettings (train.schedule) is train.ScheduleConfig.
type ScheduleSettings struct {
	// Kind (kind, string): constant, step or cosine. Default constant.
	Kind string `mapstructure:"kind"`
	// Base (base, float ≥ 0): the peak rate; 0 (default) means train.lr.
	Base float64 `mapstructure:"base"`
	// StepSize (step_size, int ≥ 0) and Gamma (gamma, float): step
	// multiplies the rate by gamma every step_size optimiser steps. Gamma
	// 0 means 0.1.
	StepSize int     `mapstructure:"step_size"`
	Gamma    float64 `mapstructure:"gamma"`
	// MinLR (min_lr, float ≥ 0): the floor cosine anneals to. Default 0.
	MinLR float64 `mapstructure:"min_lr"`
	// Total (total, int ≥ 0): cosine's length in optimiser steps; 0
	// (default) means the whole run.
	Total int `mapstructure:"total"`
	// Warmup (warmup, int ≥ 0): linear warm-up steps. Default 0.
	Warmup int `mapstructure:"warmup"`
}

// LossScaleSettings (train.loss_scale) is train.LossScaleConfig: the loss
// is multiplied by S, gradients divided by S; a non-finite gradient skips
// the step and halves S, growth_interval good steps double it.
type LossScaleSettings struct {
	// Enabled (enabled, bool). Default false.
	Enabled bool `mapstructure:"enabled"`
	// Init (init, float > 0): the initial scale. Default 65536.
	Init float64 `mapstructure:"init"`
	// GrowthInterval (growth_interval, int ≥ 1): good steps before doubling.
	// Default 2000.
	GrowthInterval int `mapstructure:"growth_interval"`
}

// StageSettings (train.stages[i]) is train.StageConfig: one progressive
// training stage (the seed's recipe: 1 encoders, 2 fusion with frozen
// encoders, 3 everything at a lower rate).
type StageSettings struct {
	// Name (name, string): shown in logs and metrics. Default "stage<i>".
	Name string `mapstructure:"name"`
	// Epochs (epochs, int ≥ 0): length of the stage; 0 only for the last
	// stage, meaning until train.epochs.
	Epochs int `mapstructure:"epochs"`
	// Freeze (freeze, list of parameter scopes such as "vision" or
	// "fusion"): not updated during the stage.
	Freeze []string `mapstructure:"freeze"`
	// Train (train, list of scopes): when set, only these are updated
	// (freeze then carves out of them). Default: everything.
	Train []string `mapstructure:"train"`
	// LRScale (lr_scale, float ≥ 0): multiplies the learning rate during
	// the stage; 0 means 1. Default 1.
	LRScale float64 `mapstructure:"lr_scale"`
}

// EarlyStopSettings (train.early_stop) is train.EarlyStopConfig.
type EarlyStopSettings struct {
	// Monitor (monitor, string): val_loss, val_accuracy, val_macro_f1,
	// val_mse, val_mae, train_loss or train_accuracy; "" (default) means
	// val_loss with a validation set, else train_loss.
	Monitor string `mapstructure:"monitor"`
	// Mode (mode, string): min, max, or "" (default) for the metric's
	// natural direction.
	Mode string `mapstructure:"mode"`
	// Patience (patience, int ≥ 0): epochs without improvement before
	// stopping; 0 (default) never stops early.
	Patience int `mapstructure:"patience"`
	// MinDelta (min_delta, float ≥ 0): the smallest improvement. Default 0.
	MinDelta float64 `mapstructure:"min_delta"`
	// StopOnNonFinite (stop_on_non_finite, bool): end the run with an error
	// on a NaN or Inf loss; false skips such steps. Default true.
	StopOnNonFinite bool `mapstructure:"stop_on_non_finite"`
}

// ExportConfig (export) configures `lsfuse export`.
type ExportConfig struct {
	// Format (export.format, string): safetensors or onnx. Default
	// safetensors.
	Format string `mapstructure:"format"`
	// Opset (export.opset, int in [13, 21]): the ONNX opset. Default 17
	// (layer norms as LayerNormalization nodes).
	Opset int `mapstructure:"opset"`
}

// RunConfig (run) names and places a run.
type RunConfig struct {
	// Name (run.name, string): the run's directory name under run.dir.
	// Default: the stem of the last config file, or "run".
	Name string `mapstructure:"name"`
	// Dir (run.dir, path): the parent of run directories. Default "runs".
	Dir string `mapstructure:"dir" lsfuse:"path"`
	// Seed (run.seed, int): seeds initialisation, shuffling, splits, dropout
	// and augmentation. Default 1.
	Seed int64 `mapstructure:"seed"`
	// Device (run.device, string): cpu, cuda or auto (CUDA when the build
	// has the backend and a driver and GPU are found, else cpu). Default
	// auto.
	Device string `mapstructure:"device"`
	// Dtype (run.dtype, string): float32 or float64 parameters. Default
	// float32.
	Dtype string `mapstructure:"dtype"`
}
