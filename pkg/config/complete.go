package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"

	"github.com/go-viper/mapstructure/v2"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/modality"
)

// DefaultEpochs is train.epochs when neither it nor stages say otherwise.
const DefaultEpochs = 10

// GPT2VocabSize is the vocabulary of the gpt2 tokenizer (pkg/data), the
// text vocab_size a gpt2 text input implies.
const GPT2VocabSize = 50257

// Complete fills the defaults that depend on other keys, in place:
// train.epochs 0 (the stages' total, or DefaultEpochs), modality types from their names, cfc_mode and ode_unfolds by backbone,
// the built-in dataset's manifest, a data input per modality when the
// experiment has data (column = modality name, kind from the type), stage
// names and scales, and
// every preprocessing key: sizes the data input fixes (image channels and
// size, audio rate and length, text length and the gpt2 vocabulary, sensor
// channels and length, video frames and size), then pkg/modality's
// defaults. Values that are only known from the data (the class count, a
// built vocabulary's size) stay 0 until SetDataSizes. Sections whose keys
// are invalid are left for Validate to report.
func (c *Config) Complete() {
	d := &c.Data
	if d.Builtin != "" {
		if d.Dir == "" {
			d.Dir = filepath.Join("data", d.Builtin)
		}
		if d.Train == "" {
			d.Train = filepath.Join(d.Dir, "manifest.csv")
		}
		if d.SplitColumn == "" {
			d.SplitColumn = "split"
		}
	}
	if c.Train.Epochs == 0 {
		for _, st := range c.Train.Stages {
			c.Train.Epochs += st.Epochs
		}
		if c.Train.Epochs == 0 {
			c.Train.Epochs = DefaultEpochs
		}
	}
	for i := range c.Train.Stages {
		if c.Train.Stages[i].Name == "" {
			c.Train.Stages[i].Name = fmt.Sprintf("stage%d", i+1)
		}
		if c.Train.Stages[i].LRScale == 0 {
			c.Train.Stages[i].LRScale = 1
		}
	}
	for _, name := range sortedNames(c.Model.Modalities) {
		mc := c.Model.Modalities[name]
		if mc.Type == "" {
			if _, ok := preprocessingTypes[name]; ok {
				mc.Type = name
			}
		}
		switch mc.Backbone {
		case "cfc":
			if mc.CfCMode == "" {
				mc.CfCMode = "default"
			}
		case "ltc":
			if mc.ODEUnfolds == 0 {
				mc.ODEUnfolds = 6
			}
		}
		_, given := d.Inputs[name]
		hasData := d.Train != "" || d.Builtin != ""
		if given || (hasData && inputKindOfType[mc.Type] != "") {
			// With data, every modality but mlp reads a manifest column.
			if d.Inputs == nil {
				d.Inputs = map[string]InputConfig{}
			}
			in := d.Inputs[name]
			if in.Column == "" {
				in.Column = name
			}
			if in.Kind == "" {
				in.Kind = inputKindOfType[mc.Type]
			}
			d.Inputs[name] = in
		}
		if pc, err := c.preprocessor(name, mc); err == nil {
			mc.Preprocessing = encodePreprocessing(pc.WithDefaults())
		}
		c.Model.Modalities[name] = mc
	}
}

// PreprocessorConfig returns modality name's preprocessor configuration:
// its type, architecture, output dim (= input_dim) and settings, with the
// sizes its data input fixes filled in (not pkg/modality's defaults).
func (c *Config) PreprocessorConfig(name string) (modality.Config, error) {
	mc, ok := c.Model.Modalities[name]
	if !ok {
		return modality.Config{}, fmt.Errorf("no modality %q", name)
	}
	return c.preprocessor(name, mc)
}

func (c *Config) preprocessor(name string, mc ModalityConfig) (modality.Config, error) {
	pc := modality.Config{Kind: mc.Type, OutputDim: mc.InputDim}
	settings := map[string]any{}
	for k, v := range mc.Preprocessing {
		settings[k] = v
	}
	if a, ok := settings[archKey]; ok {
		s, isStr := a.(string)
		if !isStr {
			return pc, fmt.Errorf("%s: want a string, got %v", archKey, a)
		}
		pc.Architecture = s
		delete(settings, archKey)
	}
	t, builtin := preprocessingTypes[mc.Type]
	if !builtin {
		if len(settings) > 0 {
			pc.Options = settings
		}
		return pc, nil
	}
	target := reflect.New(t)
	if err := strictDecode(settings, target.Interface()); err != nil {
		return pc, err
	}
	reflect.ValueOf(&pc).Elem().FieldByName(fieldOfKind[mc.Type]).Set(target.Elem())
	if in, ok := c.Data.Inputs[name]; ok {
		if err := c.fillFromInput(&pc, in); err != nil {
			return pc, err
		}
	}
	return pc, nil
}

// fieldOfKind is the modality.Config field holding each type's settings.
var fieldOfKind = map[string]string{
	modality.KindVision: "Vision", modality.KindAudio: "Audio", modality.KindText: "Text",
	modality.KindSensor: "Sensor", modality.KindVideo: "Video", modality.KindMLP: "MLP",
}

// fillFromInput sets the preprocessor sizes the data input fixes, where
// the preprocessing section leaves them 0.
func (c *Config) fillFromInput(pc *modality.Config, in InputConfig) error {
	switch pc.Kind {
	case modality.KindVision:
		var ic data.ImageConfig
		if err := c.InputSettings(in, &ic); err != nil {
			return err
		}
		h, w := ic.Height, ic.Width
		if ic.Augment.CropHeight > 0 {
			h, w = ic.Augment.CropHeight, ic.Augment.CropWidth
		}
		v := &pc.Vision
		v.InChannels = orInt(v.InChannels, orInt(ic.Channels, 3))
		v.Height = orInt(v.Height, h)
		v.Width = orInt(v.Width, w)
	case modality.KindAudio:
		var ac data.AudioConfig
		if err := c.InputSettings(in, &ac); err != nil {
			return err
		}
		pc.Audio.SampleRate = orInt(pc.Audio.SampleRate, ac.SampleRate)
		pc.Audio.Samples = orInt(pc.Audio.Samples, ac.Length)
	case modality.KindText:
		var tc data.TextConfig
		if err := c.InputSettings(in, &tc); err != nil {
			return err
		}
		pc.Text.SeqLen = orInt(pc.Text.SeqLen, tc.Length)
		if tc.Tokenizer == "gpt2" {
			pc.Text.VocabSize = orInt(pc.Text.VocabSize, GPT2VocabSize)
		}
	case modality.KindSensor:
		var sc data.SensorConfig
		if err := c.InputSettings(in, &sc); err != nil {
			return err
		}
		pc.Sensor.Sensors = orInt(pc.Sensor.Sensors, len(sc.Channels))
		pc.Sensor.TimeSteps = orInt(pc.Sensor.TimeSteps, sc.Length)
	case modality.KindVideo:
		var vc data.VideoConfig
		if err := c.InputSettings(in, &vc); err != nil {
			return err
		}
		pc.Video.Frames = orInt(pc.Video.Frames, vc.Frames)
		f := &pc.Video.Frame
		f.InChannels = orInt(f.InChannels, orInt(vc.Channels, 3))
		f.Height = orInt(f.Height, vc.Height)
		f.Width = orInt(f.Width, vc.Width)
	}
	return nil
}

// InputSettings decodes a data input's kind settings into out (a
// *data.ImageConfig, *data.AudioConfig, ...), strictly.
func (c *Config) InputSettings(in InputConfig, out any) error {
	return jsonDecode(in.Settings, out)
}

// jsonDecode decodes plain values into a pkg/data struct (json tags),
// rejecting unknown keys.
func jsonDecode(v any, out any) error {
	if v == nil {
		v = map[string]any{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%v", err)
	}
	return nil
}

// strictDecode decodes plain values into a mapstructure-tagged struct,
// rejecting unknown keys.
func strictDecode(v map[string]any, out any) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: out, ErrorUnused: true})
	if err != nil {
		return err
	}
	return dec.Decode(v)
}

// encodePreprocessing flattens a preprocessor config into the
// preprocessing section: architecture plus the type's settings.
func encodePreprocessing(pc modality.Config) map[string]any {
	out := map[string]any{archKey: pc.Architecture}
	if f, ok := fieldOfKind[pc.Kind]; ok {
		for k, v := range encode(reflect.ValueOf(pc).FieldByName(f)).(map[string]any) {
			out[k] = v
		}
		return out
	}
	for k, v := range pc.Options {
		out[k] = v
	}
	return out
}

func orInt(x, def int) int {
	if x == 0 {
		return def
	}
	return x
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
