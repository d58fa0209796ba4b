package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/modality"
)

// Choices of the string keys.
var (
	fusionStrategies = []string{"early", "late", "hybrid", "hierarchical"}
	heads            = []string{"classification", "regression", "tokens", "caption"}
	resets           = []string{"subtract", "zero", "none"}
	surrogates       = []string{"fast_sigmoid", "atan", "sigmoid", "triangular", "straight_through"}
	backbones        = []string{"cfc", "ltc"}
	cfcModes         = []string{"default", "no_gate", "pure"}
	activations      = []string{"relu", "gelu", "silu", "tanh", "sigmoid", "lecun_tanh", "identity"}
	builtins         = []string{"avdigits", "fashion"}
	labelKinds       = []string{"category", "number", "vector", "tokens"}
	exportFormats    = []string{"safetensors", "onnx"}
	devices          = []string{"cpu", "cuda", "auto"}
	dtypes           = []string{"float32", "float64"}
	precisions       = []string{"off", "fp16", "bf16"}
)

// Validate checks every key's range and the keys that must agree with each
// other, and returns every problem found (nil when there is none). Call it
// after Complete (Load does both). Data files are not opened.
func (c *Config) Validate() error {
	var l errorList
	c.validateModel(&l)
	c.validateData(&l)
	c.validateTrain(&l)
	v := checker{&l}
	v.oneOf("export.format", c.Export.Format, exportFormats)
	if c.Export.Opset < 13 || c.Export.Opset > 21 {
		l.keyf("export.opset", "must be in [13, 21], got %d", c.Export.Opset)
	}
	if c.Run.Name == "" || strings.ContainsAny(c.Run.Name, `/\`) || c.Run.Name == "." || c.Run.Name == ".." {
		l.keyf("run.name", "%q is not a directory name: use letters, digits, - and _", c.Run.Name)
	}
	if c.Run.Dir == "" {
		l.keyf("run.dir", "must not be empty")
	}
	v.oneOf("run.device", c.Run.Device, devices)
	v.oneOf("run.dtype", c.Run.Dtype, dtypes)
	return l.err()
}

// checker adds range errors to a list.
type checker struct{ l *errorList }

func (v checker) oneOf(key, got string, valid []string) {
	if slices.Contains(valid, got) {
		return
	}
	shown := make([]string, 0, len(valid))
	for _, s := range valid {
		if s != "" {
			shown = append(shown, s)
		}
	}
	msg := fmt.Sprintf("unknown value %q (valid: %s)", got, strings.Join(shown, ", "))
	if s := suggest(got, shown); s != "" && got != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	v.l.keyf(key, "%s", msg)
}

func (v checker) atLeast(key string, got, lo int) {
	if got < lo {
		v.l.keyf(key, "must be at least %d, got %d", lo, got)
	}
}

func (v checker) prob(key string, p float64) {
	if !(p >= 0 && p < 1) {
		v.l.keyf(key, "must be in [0, 1), got %g", p)
	}
}

func (v checker) positive(key string, x float64) {
	if !(x > 0) || math.IsInf(x, 0) {
		v.l.keyf(key, "must be a positive number, got %g", x)
	}
}

func (v checker) nonNegative(key string, x float64) {
	if !(x >= 0) || math.IsInf(x, 0) {
		v.l.keyf(key, "must be zero or positive, got %g", x)
	}
}

func (c *Config) validateModel(l *errorList) {
	m := c.Model
	v := checker{l}
	names := sortedNames(m.Modalities)
	if len(names) == 0 {
		l.keyf("model.modalities", "no modalities: add at least one under model.modalities (e.g. vision: {type: vision}), or name them with --modalities")
	}
	v.oneOf("model.fusion_strategy", m.FusionStrategy, fusionStrategies)
	v.atLeast("model.fusion_dim", m.FusionDim, 1)
	v.atLeast("model.num_attention_heads", m.NumAttentionHeads, 1)
	v.prob("model.fusion_dropout", m.FusionDropout)
	for _, n := range sortedNames(m.ModalityDropout) {
		if _, ok := m.Modalities[n]; !ok {
			l.keyf("model.modality_dropout."+n, "no modality %q under model.modalities (%s)", n, strings.Join(names, ", "))
		}
		v.prob("model.modality_dropout."+n, m.ModalityDropout[n])
	}
	v.atLeast("model.output_dim", m.OutputDim, 0)
	v.oneOf("model.head", m.Head, heads)
	v.atLeast("model.head_hidden", m.HeadHidden, 0)
	v.atLeast("model.token_len", m.TokenLen, 0)
	for _, n := range names {
		c.validateModality(l, n)
	}
	c.validateCaption(l)
	c.validateAlign(l)
	// The seed's Troubleshooting #1: attention fuses the features as tokens
	// of one width.
	if (m.FusionStrategy == "hybrid" || m.FusionStrategy == "hierarchical") && len(names) > 0 {
		first := m.Modalities[names[0]].EncoderDim
		var parts []string
		same := true
		for _, n := range names {
			d := m.Modalities[n].EncoderDim
			parts = append(parts, fmt.Sprintf("%s=%d", n, d))
			same = same && d == first
		}
		if !same {
			l.keyf("model.modalities", "fusion_strategy %s fuses the modality features as attention tokens of one width, but encoder_dim differs (%s): "+
				"set the same model.modalities.<name>.encoder_dim for every modality (e.g. %d), or use fusion_strategy early or late, which accept different widths",
				m.FusionStrategy, strings.Join(parts, ", "), first)
		} else if m.NumAttentionHeads > 0 && first > 0 && first%m.NumAttentionHeads != 0 {
			l.keyf("model.num_attention_heads", "%d heads do not divide the modalities' encoder_dim %d: choose a divisor of %d", m.NumAttentionHeads, first, first)
		}
		if m.FusionStrategy == "hierarchical" && len(names) < 2 {
			l.keyf("model.fusion_strategy", "hierarchical fusion needs at least two modalities, got %d: use early or late", len(names))
		}
	}
}

// validateCaption checks model.caption and, for the caption head, the
// settings it needs elsewhere: token labels wrapped in <bos> … <eos>, a
// fusion that forms one representation, an ignore_index that is not <eos>.
func (c *Config) validateCaption(l *errorList) {
	m := c.Model
	cs := m.Caption
	v := checker{l}
	v.atLeast("model.caption.embed_dim", cs.EmbedDim, 1)
	v.atLeast("model.caption.units", cs.Units, 1)
	v.atLeast("model.caption.backbone_units", cs.BackboneUnits, 0)
	v.oneOf("model.caption.mode", cs.Mode, cfcModes)
	v.atLeast("model.caption.bos", cs.BOS, 0)
	v.atLeast("model.caption.eos", cs.EOS, 0)
	v.atLeast("model.caption.max_len", cs.MaxLen, 0)
	v.atLeast("model.caption.beam_size", cs.BeamSize, 1)
	if m.Head != "caption" {
		return
	}
	if m.FusionStrategy == "late" {
		l.keyf("model.fusion_strategy", "late fusion forms no single fused representation for the caption head to decode from: use early, hybrid or hierarchical")
	}
	if c.Data.LabelKind != data.LabelTokens {
		l.keyf("data.label_kind", "is %q but the caption head trains on caption token labels: set data.label_kind: tokens (and data.label_text)", c.Data.LabelKind)
		return
	}
	var lt data.TextConfig
	if jsonDecode(c.Data.LabelText, &lt) != nil {
		return // reported by validateData
	}
	if !lt.AddBOS || !lt.AddEOS {
		l.keyf("data.label_text", "the caption head needs captions wrapped in <bos> … <eos>: set data.label_text.add_bos and add_eos to true")
	}
	if lt.Tokenizer == "gpt2" && m.IgnoreIndex == GPT2VocabSize-1 {
		l.keyf("model.ignore_index", "is %d, gpt2's <|endoftext|>, which is also <eos>: the caption head would never learn to stop; set model.ignore_index: -1", m.IgnoreIndex)
	}
}

// validateAlign checks model.temporal_align: modalities that exist, listed
// once, with one num_spike_steps (the length they are aligned to).
func (c *Config) validateAlign(l *errorList) {
	seen := map[string]bool{}
	first := ""
	for i, n := range c.Model.TemporalAlign {
		key := fmt.Sprintf("model.temporal_align[%d]", i)
		mc, ok := c.Model.Modalities[n]
		switch {
		case !ok:
			l.keyf(key, "no modality %q under model.modalities (%s)", n, strings.Join(sortedNames(c.Model.Modalities), ", "))
		case seen[n]:
			l.keyf(key, "modality %q is listed twice", n)
		case first == "":
			first = n
		case mc.NumSpikeSteps != c.Model.Modalities[first].NumSpikeSteps:
			l.keyf(key, "aligned modalities share one length, num_spike_steps, but %s has %d and %s has %d: set the same model.modalities.<name>.num_spike_steps",
				first, c.Model.Modalities[first].NumSpikeSteps, n, mc.NumSpikeSteps)
		}
		seen[n] = true
	}
}

func (c *Config) validateModality(l *errorList, name string) {
	mc := c.Model.Modalities[name]
	p := "model.modalities." + name + "."
	v := checker{l}
	if mc.Type == "" {
		l.keyf(p+"type", "missing: set the preprocessor type (%s)", strings.Join(modality.Kinds(), ", "))
	} else {
		v.oneOf(p+"type", mc.Type, modality.Kinds())
	}
	for _, f := range []struct {
		key string
		x   int
	}{{"input_dim", mc.InputDim}, {"encoder_dim", mc.EncoderDim}, {"liquid_units", mc.LiquidUnits},
		{"spiking_units", mc.SpikingUnits}, {"spiking_layers", mc.SpikingLayers}, {"num_spike_steps", mc.NumSpikeSteps},
		{"backbone_units", mc.BackboneUnits}, {"backbone_layers", mc.BackboneLayers}} {
		v.atLeast(p+f.key, f.x, 1)
	}
	if !(mc.Beta >= 0 && mc.Beta <= 1) {
		l.keyf(p+"beta", "must be in [0, 1], got %g", mc.Beta)
	}
	v.positive(p+"threshold", mc.Threshold)
	v.oneOf(p+"reset", mc.Reset, resets)
	v.oneOf(p+"surrogate.kind", mc.Surrogate.Kind, surrogates)
	v.nonNegative(p+"surrogate.slope", mc.Surrogate.Slope)
	v.positive(p+"surrogate.scale", mc.Surrogate.Scale)
	v.prob(p+"dropout", mc.Dropout)
	v.oneOf(p+"backbone", mc.Backbone, backbones)
	switch mc.Backbone {
	case "cfc":
		v.oneOf(p+"cfc_mode", mc.CfCMode, cfcModes)
	case "ltc":
		if mc.CfCMode != "" {
			l.keyf(p+"cfc_mode", "is %q but the backbone is ltc: remove cfc_mode", mc.CfCMode)
		}
		v.atLeast(p+"ode_unfolds", mc.ODEUnfolds, 1)
	}
	v.oneOf(p+"backbone_activation", mc.BackboneActivation, activations)
	v.prob(p+"backbone_dropout", mc.BackboneDropout)
	v.positive(p+"elapsed_time", mc.ElapsedTime)
	if mc.Type == "" || !slices.Contains(modality.Kinds(), mc.Type) {
		return
	}
	pc, err := c.preprocessor(name, mc)
	if err != nil {
		l.keyf(p+"preprocessing", "%v", err)
		return
	}
	pc = pc.WithDefaults()
	if pc.Kind == modality.KindText && pc.Text.VocabSize == 0 && c.vocabFromData(name) {
		pc.Text.VocabSize = 1 // set from the training data's vocabulary (SetDataSizes)
	}
	for _, e := range flattenJoin(pc.Validate()) {
		// pkg/modality names fields "<type>.<key>[.<key>]: message".
		key, msg, ok := strings.Cut(e.Error(), ": ")
		if !ok {
			l.keyf(p+"preprocessing", "%v", e)
			continue
		}
		key = strings.TrimPrefix(key, pc.Kind+".")
		l.keyf(p+"preprocessing."+key, "%s", msg)
	}
}

// vocabFromData reports whether the modality's vocabulary size comes from
// a vocabulary built on the training data (a word or char text input).
func (c *Config) vocabFromData(name string) bool {
	in, ok := c.Data.Inputs[name]
	if !ok || in.Kind != data.KindText {
		return false
	}
	var tc data.TextConfig
	return c.InputSettings(in, &tc) == nil && tc.NeedsVocab()
}

// flattenJoin splits an errors.Join tree into its leaves.
func flattenJoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenJoin(e)...)
		}
		return out
	}
	return []error{err}
}

func (c *Config) validateData(l *errorList) {
	d := c.Data
	v := checker{l}
	if d.Builtin != "" {
		v.oneOf("data.builtin", d.Builtin, builtins)
	}
	v.oneOf("data.format", d.Format, []string{"", "csv", "jsonl"})
	v.prob("data.val_fraction", d.ValFraction)
	v.prob("data.test_fraction", d.TestFraction)
	if d.ValFraction+d.TestFraction >= 1 {
		l.keyf("data.val_fraction", "val_fraction %g + test_fraction %g leave no training rows: keep their sum below 1", d.ValFraction, d.TestFraction)
	}
	v.oneOf("data.label_kind", d.LabelKind, labelKinds)
	v.oneOf("data.on_error", d.OnError, []string{"fail", "skip"})
	var lt data.TextConfig
	if err := jsonDecode(d.LabelText, &lt); err != nil {
		l.keyf("data.label_text", "%v", err)
	} else if err := lt.Validate(); err != nil {
		l.keyf("data.label_text", "%v", err)
	}
	for _, f := range []struct {
		key string
		x   int
	}{{"max_train_samples", d.MaxTrainSamples}, {"max_eval_samples", d.MaxEvalSamples}} {
		v.atLeast("data."+f.key, f.x, 0)
	}
	if c.Train.Cache && d.Augment {
		l.keyf("data.augment", "the cache would freeze the per-epoch augmentation: set train.cache: false or data.augment: false")
	}
	mods := sortedNames(c.Model.Modalities)
	for _, n := range sortedNames(d.Inputs) {
		c.validateInput(l, n, mods)
	}
}

func (c *Config) validateInput(l *errorList, name string, mods []string) {
	in := c.Data.Inputs[name]
	p := "data.inputs." + name
	mc, isMod := c.Model.Modalities[name]
	if !isMod {
		l.keyf(p, "no modality %q under model.modalities (%s): every data input feeds the modality of its name", name, strings.Join(mods, ", "))
		return
	}
	if in.Column == "" {
		l.keyf(p+".column", "must name a manifest column")
	}
	if _, ok := inputKinds[in.Kind]; !ok {
		checker{l}.oneOf(p+".kind", in.Kind, sortedNames(inputKinds))
		return
	}
	if want := inputKindOfType[mc.Type]; want != "" && want != in.Kind {
		l.keyf(p+".kind", "is %s but modality %q is of type %s, which reads %s inputs", in.Kind, name, mc.Type, want)
		return
	}
	target := reflect.New(inputKinds[in.Kind])
	if err := c.InputSettings(in, target.Interface()); err != nil {
		l.keyf(p, "%v", err)
		return
	}
	validator, _ := target.Elem().Interface().(interface{ Validate() error })
	if err := validator.Validate(); err != nil {
		l.keyf(p, "%v", err)
	}
	if in.FromFile && in.Kind != data.KindText {
		l.keyf(p+".from_file", "applies to text inputs only")
	}
	// Graphs are static: every sample of a modality must have the shape the
	// preprocessor expects, so the decoder must fix it.
	pcRaw, err := c.preprocessor(name, mc)
	if err != nil {
		return // reported under the modality
	}
	pc := pcRaw.WithDefaults()
	need := func(key, what string, ok bool) {
		if !ok {
			l.keyf(p+"."+key, "must be set: batches need a fixed %s", what)
		}
	}
	mismatch := func(key string, got int, pkey string, want int) {
		if got != want {
			l.keyf(p+"."+key, "is %d but model.modalities.%s.preprocessing.%s is %d: make them equal (or leave the preprocessing key out to take it from the data)", got, name, pkey, want)
		}
	}
	switch in.Kind {
	case data.KindImage:
		var ic data.ImageConfig
		_ = c.InputSettings(in, &ic)
		need("height", "image size (set height and width)", ic.Height > 0 && ic.Width > 0)
		h, w := ic.Height, ic.Width
		if ic.Augment.CropHeight > 0 {
			h, w = ic.Augment.CropHeight, ic.Augment.CropWidth
		}
		if h > 0 && w > 0 {
			mismatch("height", h, "height", pc.Vision.Height)
			mismatch("width", w, "width", pc.Vision.Width)
		}
		mismatch("channels", orInt(ic.Channels, 3), "in_channels", pc.Vision.InChannels)
	case data.KindAudio:
		var ac data.AudioConfig
		_ = c.InputSettings(in, &ac)
		need("length", "clip length in samples", ac.Length > 0)
		if ac.Length > 0 {
			mismatch("length", ac.Length, "samples", pc.Audio.Samples)
		}
		if ac.SampleRate > 0 {
			mismatch("sample_rate", ac.SampleRate, "sample_rate", pc.Audio.SampleRate)
		}
		if ac.Channels > 0 {
			l.keyf(p+".channels", "the audio preprocessor reads mono waveforms: leave channels 0 (mix down)")
		}
	case data.KindText:
		var tc data.TextConfig
		_ = c.InputSettings(in, &tc)
		need("length", "token count (pad/truncate with length)", tc.Length > 0)
		if tc.Length > 0 {
			mismatch("length", tc.Length, "seq_len", pc.Text.SeqLen)
		}
		if tc.Tokenizer == "gpt2" && pc.Text.VocabSize < GPT2VocabSize {
			l.keyf("model.modalities."+name+".preprocessing.vocab_size", "is %d but the gpt2 tokenizer has %d ids", pc.Text.VocabSize, GPT2VocabSize)
		}
	case data.KindSensor:
		var sc data.SensorConfig
		_ = c.InputSettings(in, &sc)
		need("length", "series length (and channels)", sc.Length > 0 && len(sc.Channels) > 0)
		if sc.Length > 0 {
			mismatch("length", sc.Length, "time_steps", pc.Sensor.TimeSteps)
		}
		if len(sc.Channels) > 0 {
			mismatch("channels", len(sc.Channels), "sensors", pc.Sensor.Sensors)
		}
	case data.KindVideo:
		var vc data.VideoConfig
		_ = c.InputSettings(in, &vc)
		need("frames", "clip shape (set frames, height and width)", vc.Frames > 0 && vc.Height > 0 && vc.Width > 0)
		if vc.Frames > 0 {
			mismatch("frames", vc.Frames, "frames", pc.Video.Frames)
		}
		if vc.Height > 0 && vc.Width > 0 {
			mismatch("height", vc.Height, "frame.height", pc.Video.Frame.Height)
			mismatch("width", vc.Width, "frame.width", pc.Video.Frame.Width)
		}
		mismatch("channels", orInt(vc.Channels, 3), "frame.in_channels", pc.Video.Frame.InChannels)
	}
}

func (c *Config) validateTrain(l *errorList) {
	t := c.Train
	v := checker{l}
	// pkg/train checks its own ranges and names keys as train.<key>.
	for _, e := range flattenJoin(c.TrainConfig().Validate()) {
		key, msg, ok := strings.Cut(e.Error(), ": ")
		if !ok {
			key, msg = "train", e.Error()
		}
		l.keyf(key, "%s", msg)
	}
	v.atLeast("train.batch_size", t.BatchSize, 1)
	v.atLeast("train.accum_steps", t.AccumSteps, 1)
	v.oneOf("train.mixed_precision", t.MixedPrecision, precisions)
	for _, n := range sortedNames(t.ModalityLR) {
		if _, ok := c.Model.Modalities[n]; !ok && n != "fusion" && n != "head" {
			l.keyf("train.modality_lr."+n, "no modality %q under model.modalities (scopes: %s, fusion, head)", n, strings.Join(sortedNames(c.Model.Modalities), ", "))
		}
	}
}
