package modality

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Built-in modality kinds (Config.Kind).
const (
	KindVision = "vision"
	KindAudio  = "audio"
	KindText   = "text"
	KindSensor = "sensor"
	KindVideo  = "video"
	KindMLP    = "mlp"
)

// DefaultOutputDim is the feature size a preprocessor produces when
// Config.OutputDim is 0 (bench-small's d).
const DefaultOutputDim = 128

// Config selects and shapes one preprocessor. Only the nested struct of the
// selected Kind is read; the others are ignored. The zero value of every
// field means "the documented default", so a config file names only what
// it changes. Keys are snake_case for YAML (the `mapstructure` and `yaml`
// tags); error messages name fields by these keys, prefixed with the kind:
// "vision.architecture", "audio.n_mels", "video.frame.channels".
type Config struct {
	// Kind is the modality: vision, audio, text, sensor, video, mlp, or the
	// name of a preprocessor added with Register. Required.
	Kind string `mapstructure:"kind" yaml:"kind"`
	// Architecture picks the variant within the kind; "" means the kind's
	// default (first listed):
	//   vision: simple | resnet | efficient
	//   audio:  mel | raw
	//   text:   embedding
	//   sensor: conv
	//   video:  frames | conv3d
	//   mlp:    mlp
	// Registered kinds receive it unchanged.
	Architecture string `mapstructure:"architecture" yaml:"architecture"`
	// OutputDim is the size D of the feature [B, D] the preprocessor
	// returns (the encoder's input_dim). 0 means DefaultOutputDim (128).
	OutputDim int `mapstructure:"output_dim" yaml:"output_dim"`

	// Per-kind settings, each documented on its type; only the struct of
	// the selected Kind is read (video also reads its own Video.Frame).
	Vision VisionConfig `mapstructure:"vision" yaml:"vision"`
	Audio  AudioConfig  `mapstructure:"audio" yaml:"audio"`
	Text   TextConfig   `mapstructure:"text" yaml:"text"`
	Sensor SensorConfig `mapstructure:"sensor" yaml:"sensor"`
	Video  VideoConfig  `mapstructure:"video" yaml:"video"`
	MLP    MLPConfig    `mapstructure:"mlp" yaml:"mlp"`

	// Options holds free-form settings for a preprocessor added with
	// Register; built-in kinds reject a non-empty Options (a misspelt key
	// must not be ignored silently).
	Options map[string]any `mapstructure:"options" yaml:"options"`
}

// architectures lists each built-in kind's variants, default first.
var architectures = map[string][]string{
	KindVision: {"simple", "resnet", "efficient"},
	KindAudio:  {"mel", "raw"},
	KindText:   {"embedding"},
	KindSensor: {"conv"},
	KindVideo:  {"frames", "conv3d"},
	KindMLP:    {"mlp"},
}

// builtinKinds in documentation order.
var builtinKinds = []string{KindVision, KindAudio, KindText, KindSensor, KindVideo, KindMLP}

func isBuiltin(kind string) bool {
	_, ok := architectures[kind]
	return ok
}

// WithDefaults returns a copy of c with every zero field of the selected
// kind replaced by its documented default. It does not validate.
func (c Config) WithDefaults() Config {
	c.Kind = strings.TrimSpace(c.Kind)
	if archs, ok := architectures[c.Kind]; ok && c.Architecture == "" {
		c.Architecture = archs[0]
	}
	if c.OutputDim == 0 {
		c.OutputDim = DefaultOutputDim
	}
	switch c.Kind {
	case KindVision:
		c.Vision = c.Vision.withDefaults(c.Architecture)
	case KindAudio:
		c.Audio = c.Audio.withDefaults()
	case KindText:
		c.Text = c.Text.withDefaults()
	case KindSensor:
		c.Sensor = c.Sensor.withDefaults()
	case KindVideo:
		c.Video = c.Video.withDefaults(c.Architecture, c.OutputDim)
	case KindMLP:
		c.MLP = c.MLP.withDefaults()
	}
	return c
}

// Validate checks a config after WithDefaults and returns every problem
// found, joined; each names its field as "<kind>.<key>". For a kind added
// with Register it only checks that the kind exists and that output_dim is
// positive; its factory validates the rest.
func (c Config) Validate() error {
	if c.Kind == "" {
		return fmt.Errorf("kind: missing (valid: %s, or a name added with Register)", strings.Join(builtinKinds, ", "))
	}
	if !isBuiltin(c.Kind) {
		if lookup(c.Kind) == nil {
			return fmt.Errorf("kind: unknown %q (valid: %s)", c.Kind, strings.Join(Kinds(), ", "))
		}
		if c.OutputDim <= 0 {
			return fmt.Errorf("%s.output_dim: must be positive, got %d", c.Kind, c.OutputDim)
		}
		return nil
	}
	v := &validator{prefix: c.Kind}
	archs := architectures[c.Kind]
	if !contains(archs, c.Architecture) {
		v.add("architecture", "unknown %q (valid: %s)", c.Architecture, strings.Join(archs, ", "))
	}
	v.positive("output_dim", c.OutputDim)
	if len(c.Options) > 0 {
		v.add("options", "only preprocessors added with Register take options; %s got %v", c.Kind, sortedKeys(c.Options))
	}
	switch c.Kind {
	case KindVision:
		c.Vision.validate(v)
	case KindAudio:
		c.Audio.validate(v, c.Architecture)
	case KindText:
		c.Text.validate(v)
	case KindSensor:
		c.Sensor.validate(v)
	case KindVideo:
		c.Video.validate(v, c.Architecture)
	case KindMLP:
		c.MLP.validate(v)
	}
	return v.err()
}

// validator collects field errors under a dotted prefix.
type validator struct {
	prefix string
	errs   *[]error
}

func (v *validator) list() *[]error {
	if v.errs == nil {
		v.errs = new([]error)
	}
	return v.errs
}

// add records "<prefix>.<field>: <message>".
func (v *validator) add(field, format string, args ...any) {
	l := v.list()
	*l = append(*l, fmt.Errorf("%s.%s: %s", v.prefix, field, fmt.Sprintf(format, args...)))
}

// sub returns a validator for a nested struct sharing the same error list.
func (v *validator) sub(name string) *validator {
	return &validator{prefix: v.prefix + "." + name, errs: v.list()}
}

func (v *validator) positive(field string, x int) {
	if x <= 0 {
		v.add(field, "must be positive, got %d", x)
	}
}

func (v *validator) nonNegative(field string, x int) {
	if x < 0 {
		v.add(field, "must not be negative, got %d", x)
	}
}

func (v *validator) widths(field string, xs []int) {
	if len(xs) == 0 {
		v.add(field, "needs at least one width")
	}
	for i, x := range xs {
		if x <= 0 {
			v.add(field, "width %d is %d; every width must be positive", i, x)
		}
	}
}

func (v *validator) oneOf(field, got string, valid ...string) {
	if !contains(valid, got) {
		v.add(field, "unknown %q (valid: %s)", got, strings.Join(valid, ", "))
	}
}

func (v *validator) probability(field string, p float64) {
	if p < 0 || p >= 1 {
		v.add(field, "must be in [0, 1), got %g", p)
	}
}

func (v *validator) activation(field, name string) {
	v.oneOf(field, name, "relu", "gelu", "silu", "tanh", "sigmoid", "lecun_tanh", "identity")
}

func (v *validator) err() error {
	if v.errs == nil || len(*v.errs) == 0 {
		return nil
	}
	return errors.Join(*v.errs...)
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// orInt returns x, or def when x is 0.
func orInt(x, def int) int {
	if x == 0 {
		return def
	}
	return x
}

// orString returns s, or def when s is "".
func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// orInts returns a copy of xs, or of def when xs is empty.
func orInts(xs, def []int) []int {
	if len(xs) == 0 {
		xs = def
	}
	return append([]int(nil), xs...)
}
