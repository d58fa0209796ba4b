package config

import (
	"fmt"
	"path/filepath"
	"sort"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/train"
)

// Resolved is a configuration turned into the option structs of the
// library packages.
type Resolved struct {
	// Network builds the model (model.NewNetwork).
	Network model.NetworkConfig
	// Data says how to assemble the datasets.
	Data DataPlan
	// Train configures the trainer (train.New).
	Train train.Config
	// Export is the export section as given.
	Export ExportConfig
	// Run is the run section with the device resolved ("cpu").
	Run RunConfig
	// RunDir is run.dir/run.name.
	RunDir string
	// Dtype is the parameter dtype.
	Dtype tensor.Dtype
}

// DataPlan is the data section as pkg/data option structs: what to open
// and how to split it.
type DataPlan struct {
	// Builtin is the built-in dataset name ("" for none).
	Builtin string
	// Train is the training manifest (with every input column, typed and
	// keyed by modality name). Val and Test are the same with their own
	// paths; a zero Path means the rows come from Train's manifest (split
	// column, or fractions).
	Train, Val, Test data.ManifestConfig
	// SplitColumn names the per-row split column ("" for none).
	SplitColumn string
	// ValFraction and TestFraction are carved (stratified by label for
	// category labels) off the training rows when no other source gives
	// that part.
	ValFraction, TestFraction float64
	// Augment enables training augmentation.
	Augment bool
	// Seed seeds splits and augmentation (run.seed).
	Seed int64
	// MaxTrainSamples and MaxEvalSamples cap the parts (0: all).
	MaxTrainSamples, MaxEvalSamples int
}

// Resolve converts a validated config into the library option structs. It
// fails (with an *Error) when the configuration cannot be run as is: a
// size only the data can tell (the class count, a built vocabulary) still
// 0 — call SetDataSizes first. run.device is passed through as set (cpu,
// cuda or auto): whether this build and machine can run it is the
// command's question (cmd/lsfuse's openDevice).
func Resolve(c *Config) (*Resolved, error) {
	var l errorList
	r := &Resolved{Export: c.Export, Run: c.Run, RunDir: filepath.Join(c.Run.Dir, c.Run.Name), Train: c.TrainConfig()}
	if r.Run.Device == "" {
		r.Run.Device = "auto"
	}
	r.Dtype = tensor.Float32
	if c.Run.Dtype == "float64" {
		r.Dtype = tensor.Float64
	}
	net, err := c.NetworkConfig()
	if err != nil {
		l = append(l, err)
	}
	r.Network = net
	r.Data = c.DataPlan()
	if err := l.err(); err != nil {
		return nil, err
	}
	return r, nil
}

// NetworkConfig converts the model section. Sizes still 0 that only the
// data can tell are errors saying so.
func (c *Config) NetworkConfig() (model.NetworkConfig, error) {
	m := c.Model
	var l errorList
	if m.OutputDim == 0 {
		l.keyf("model.output_dim", "is 0 and no data gave the number of classes: set model.output_dim (or data.label_classes)")
	}
	tokenLen := m.TokenLen
	var lt data.TextConfig
	_ = jsonDecode(c.Data.LabelText, &lt)
	if (m.Head == model.HeadTokens || m.Head == model.HeadCaption) && tokenLen == 0 {
		tokenLen = lt.Length
	}
	nc := model.NetworkConfig{
		Modalities: map[string]model.ModalityConfig{},
		Fusion: fusion.Config{Strategy: m.FusionStrategy, Dim: m.FusionDim, Heads: m.NumAttentionHeads, Dropout: m.FusionDropout,
			ModalityWeights: m.ModalityWeights, MissingEmbedding: m.MissingEmbedding, ModalityDropout: copyMap(m.ModalityDropout)},
		OutputDim: m.OutputDim, Head: m.Head, HeadHidden: m.HeadHidden, TokenLen: tokenLen, IgnoreIndex: m.IgnoreIndex,
		Caption: model.CaptionConfig{EmbedDim: m.Caption.EmbedDim, Units: m.Caption.Units, BackboneUnits: m.Caption.BackboneUnits,
			Mode: m.Caption.Mode, BOS: m.Caption.BOS, EOS: m.Caption.EOS, MaxLen: m.Caption.MaxLen, BeamSize: m.Caption.BeamSize},
		Align: append([]string(nil), m.TemporalAlign...),
	}
	if lt.Tokenizer == "gpt2" { // <|endoftext|> starts and ends gpt2 captions
		if nc.Caption.BOS == 0 {
			nc.Caption.BOS = GPT2VocabSize - 1
		}
		if nc.Caption.EOS == 0 {
			nc.Caption.EOS = GPT2VocabSize - 1
		}
	}
	for _, name := range sortedNames(m.Modalities) {
		mc := m.Modalities[name]
		pc, err := c.preprocessor(name, mc)
		if err != nil {
			l.keyf("model.modalities."+name+".preprocessing", "%v", err)
			continue
		}
		pc = pc.WithDefaults()
		if pc.Kind == "text" && pc.Text.VocabSize == 0 {
			l.keyf("model.modalities."+name+".preprocessing.vocab_size", "is 0 and no training data gave the vocabulary: set it, or train so the vocabulary is built")
		}
		nc.Modalities[name] = model.ModalityConfig{
			Preprocessor: pc,
			Encoder: model.EncoderConfig{
				Name: name, InputDim: mc.InputDim, EncoderDim: mc.EncoderDim, LiquidUnits: mc.LiquidUnits,
				SpikingUnits: mc.SpikingUnits, NumSpikeSteps: mc.NumSpikeSteps, SpikingLayers: mc.SpikingLayers,
				Beta: mc.Beta, Threshold: mc.Threshold, Reset: mc.Reset,
				LearnBeta: mc.LearnBeta, LearnThreshold: mc.LearnThreshold, GradedSpikes: mc.GradedSpikes,
				Surrogate: nn.Surrogate{Kind: mc.Surrogate.Kind, Slope: mc.Surrogate.Slope, Scale: mc.Surrogate.Scale},
				Dropout:   mc.Dropout, Backbone: mc.Backbone, CfCMode: mc.CfCMode,
				BackboneUnits: mc.BackboneUnits, BackboneLayers: mc.BackboneLayers,
				BackboneActivation: mc.BackboneActivation, BackboneDropout: mc.BackboneDropout,
				ElapsedTime: mc.ElapsedTime, ODEUnfolds: mc.ODEUnfolds, Fused: m.FusedOps,
			},
		}
	}
	return nc, l.err()
}

// TrainConfig converts the train section (seeded by run.seed).
func (c *Config) TrainConfig() train.Config {
	t := c.Train
	tc := train.Config{
		Epochs: t.Epochs, BatchSize: t.BatchSize, Optimizer: t.Optimizer, LR: t.LR, WeightDecay: t.WeightDecay,
		Momentum: t.Momentum, Nesterov: t.Nesterov,
		Schedule: train.ScheduleConfig{Kind: t.Schedule.Kind, Base: t.Schedule.Base, StepSize: t.Schedule.StepSize,
			Gamma: t.Schedule.Gamma, MinLR: t.Schedule.MinLR, Total: t.Schedule.Total, Warmup: t.Schedule.Warmup},
		ModalityLR: copyMap(t.ModalityLR), ClipNorm: t.ClipNorm, AccumSteps: t.AccumSteps,
		LossScale: train.LossScaleConfig{Enabled: t.LossScale.Enabled, Init: t.LossScale.Init, GrowthInterval: t.LossScale.GrowthInterval},
		EarlyStop: train.EarlyStopConfig{Monitor: t.EarlyStop.Monitor, Mode: t.EarlyStop.Mode, Patience: t.EarlyStop.Patience,
			MinDelta: t.EarlyStop.MinDelta, StopOnNonFinite: t.EarlyStop.StopOnNonFinite},
		Seed: c.Run.Seed, DropLast: t.DropLast, Workers: t.Workers, Prefetch: t.Prefetch, Cache: t.Cache,
		LogEvery: t.LogEvery, CheckpointEvery: t.CheckpointEvery, KeepLast: t.KeepLast,
	}
	for _, s := range t.Stages {
		tc.Stages = append(tc.Stages, train.StageConfig{Name: s.Name, Epochs: s.Epochs,
			Freeze: append([]string(nil), s.Freeze...), Train: append([]string(nil), s.Train...), LRScale: s.LRScale})
	}
	return tc
}

// DataPlan converts the data section. Settings were checked by Validate.
func (c *Config) DataPlan() DataPlan {
	d := c.Data
	var lt data.TextConfig
	_ = jsonDecode(d.LabelText, &lt)
	base := data.ManifestConfig{
		Format: d.Format, Columns: map[string]data.ColumnSpec{}, LabelColumn: d.LabelColumn, LabelKind: d.LabelKind,
		LabelClasses: append([]string(nil), d.LabelClasses...), LabelText: lt, NormalizeLabel: d.NormalizeLabel,
		OnError: d.OnError, Workers: c.Train.Workers,
	}
	for _, name := range sortedNames(d.Inputs) {
		in := d.Inputs[name]
		spec := data.ColumnSpec{Kind: in.Kind, Modality: name, FromFile: in.FromFile, Optional: in.Optional}
		switch in.Kind {
		case data.KindImage:
			_ = c.InputSettings(in, &spec.Image)
		case data.KindAudio:
			_ = c.InputSettings(in, &spec.Audio)
		case data.KindText:
			_ = c.InputSettings(in, &spec.Text)
		case data.KindSensor:
			_ = c.InputSettings(in, &spec.Sensor)
		case data.KindVideo:
			_ = c.InputSettings(in, &spec.Video)
		}
		base.Columns[in.Column] = spec
	}
	p := DataPlan{Builtin: d.Builtin, SplitColumn: d.SplitColumn, ValFraction: d.ValFraction, TestFraction: d.TestFraction,
		Augment: d.Augment, Seed: c.Run.Seed, MaxTrainSamples: d.MaxTrainSamples, MaxEvalSamples: d.MaxEvalSamples}
	p.Train, p.Val, p.Test = base, base, base
	p.Train.Path, p.Val.Path, p.Test.Path = d.Train, d.Val, d.Test
	if d.Val == "" {
		p.Val = data.ManifestConfig{}
	}
	if d.Test == "" {
		p.Test = data.ManifestConfig{}
	}
	return p
}

// SetDataSizes fills the sizes only the data can tell, where the config
// leaves them 0: model.output_dim from outputs (the number of label
// classes, the regression target length or the label vocabulary; ignored
// when 0), and the vocab_size of each text modality whose data input
// builds a vocabulary (vocab maps modality name → vocabulary size). Call it
// after fitting the training statistics, before Resolve; the result is the
// configuration a run saves and embeds in its checkpoints.
func (c *Config) SetDataSizes(outputs int, vocab map[string]int) {
	if c.Model.OutputDim == 0 && outputs > 0 {
		c.Model.OutputDim = outputs
	}
	names := make([]string, 0, len(vocab))
	for n := range vocab {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mc, ok := c.Model.Modalities[n]
		if !ok || mc.Type != "text" {
			continue
		}
		if v, _ := mc.Preprocessing["vocab_size"].(int); v == 0 {
			pp := map[string]any{}
			for k, x := range mc.Preprocessing {
				pp[k] = x
			}
			pp["vocab_size"] = vocab[n]
			mc.Preprocessing = pp
			c.Model.Modalities[n] = mc
		}
	}
}

func copyMap(m map[string]float64) map[string]float64 {
	if m == nil {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// String is a short description of the plan's sources, for logs.
func (p DataPlan) String() string {
	s := "train " + p.Train.Path
	if p.SplitColumn != "" {
		s += fmt.Sprintf(" (split column %q)", p.SplitColumn)
	}
	if p.Val.Path != "" {
		s += ", val " + p.Val.Path
	}
	if p.Test.Path != "" {
		s += ", test " + p.Test.Path
	}
	return s
}
