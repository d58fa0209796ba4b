package modality_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

func TestConfigErrorsNameTheField(t *testing.T) {
	vision := func(arch string, v modality.VisionConfig) modality.Config {
		return modality.Config{Kind: "vision", Architecture: arch, Vision: v}
	}
	cases := []struct {
		name string
		cfg  modality.Config
		want []string
	}{
		{"no kind", modality.Config{}, []string{"kind: missing (valid: vision, audio, text, sensor, video, mlp"}},
		{"unknown kind", modality.Config{Kind: "smell"}, []string{`kind: unknown "smell" (valid: vision, audio, text, sensor, video, mlp`}},
		{"architecture", vision("resnt", modality.VisionConfig{}), []string{`vision.architecture: unknown "resnt" (valid: simple, resnet, efficient)`}},
		{"vision widths", vision("simple", modality.VisionConfig{Channels: []int{8, 0}}), []string{"vision.channels: width 1 is 0"}},
		{"vision negative", vision("resnet", modality.VisionConfig{Blocks: -1, Stride: -2}), []string{"vision.blocks: must be positive, got -1", "vision.stride: must be positive, got -2"}},
		{"vision activation", vision("simple", modality.VisionConfig{Activation: "relu6"}), []string{`vision.activation: unknown "relu6"`}},
		{"output_dim", modality.Config{Kind: "mlp", OutputDim: -3, MLP: modality.MLPConfig{InputDim: 4}}, []string{"mlp.output_dim: must be positive, got -3"}},
		{"options on built-in", modality.Config{Kind: "vision", Options: map[string]any{"depth": 3}}, []string{"vision.options: only preprocessors added with Register take options; vision got [depth]"}},
		{"audio arch", modality.Config{Kind: "audio", Architecture: "wav2vec"}, []string{`audio.architecture: unknown "wav2vec" (valid: mel, raw)`}},
		{"audio empty mel filter", modality.Config{Kind: "audio", Audio: modality.AudioConfig{NMels: 128}}, []string{"audio.n_mels: mel filter 0", "contains no FFT bin"}},
		{"audio nyquist", modality.Config{Kind: "audio", Audio: modality.AudioConfig{SampleRate: 8000, FMax: 5000}}, []string{"audio.f_max: 5000 Hz is above the Nyquist frequency 4000 Hz"}},
		{"audio hop", modality.Config{Kind: "audio", Audio: modality.AudioConfig{Hop: -1}}, []string{"audio.hop: must be positive"}},
		{"audio short", modality.Config{Kind: "audio", Audio: modality.AudioConfig{Samples: 100}}, []string{"audio.samples: a waveform of 100 samples is too short"}},
		{"raw short", modality.Config{Kind: "audio", Architecture: "raw", Audio: modality.AudioConfig{Samples: 50}}, []string{"audio.samples: 50 samples are shorter than raw_kernel 80"}},
		{"text vocab", modality.Config{Kind: "text"}, []string{"text.vocab_size: must be positive"}},
		{"text pooling", modality.Config{Kind: "text", Text: modality.TextConfig{VocabSize: 10, Pooling: "avg", Positions: "rotary"}},
			[]string{`text.pooling: unknown "avg" (valid: mean, first, max)`, `text.positions: unknown "rotary"`}},
		{"text pad", modality.Config{Kind: "text", Text: modality.TextConfig{VocabSize: 10, PadID: 10}}, []string{"text.pad_id: 10 is outside the vocabulary [0, 10)"}},
		{"text dropout", modality.Config{Kind: "text", Text: modality.TextConfig{VocabSize: 10, Dropout: 1}}, []string{"text.dropout: must be in [0, 1), got 1"}},
		{"sensor count", modality.Config{Kind: "sensor"}, []string{"sensor.sensors: must be positive"}},
		{"sensor heads", modality.Config{Kind: "sensor", Sensor: modality.SensorConfig{Sensors: 3, Channels: []int{6}, Attention: true, Heads: 4}},
			[]string{"sensor.heads: the last channel width 6 is not divisible by 4 heads"}},
		{"video frame", modality.Config{Kind: "video", Video: modality.VideoConfig{Frame: modality.VisionConfig{Channels: []int{0}}}}, []string{"video.frame.channels: width 0 is 0"}},
		{"video backbone", modality.Config{Kind: "video", Video: modality.VideoConfig{Backbone: "vit"}}, []string{`video.backbone: unknown "vit" (valid: simple, resnet, efficient)`}},
		{"video temporal", modality.Config{Kind: "video", Video: modality.VideoConfig{Temporal: "lstm"}}, []string{`video.temporal: unknown "lstm" (valid: conv, mean, liquid)`}},
		{"video liquid", modality.Config{Kind: "video", Video: modality.VideoConfig{Temporal: "liquid"}}, []string{`video.temporal: "liquid" needs VideoConfig.Cell`}},
		{"mlp input", modality.Config{Kind: "mlp", MLP: modality.MLPConfig{Hidden: []int{4, -1}}}, []string{"mlp.input_dim: must be positive", "mlp.hidden: width 1 is -1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := modality.New(tc.cfg)
			if p != nil {
				t.Errorf("got a preprocessor with an error config")
			}
			wantErr(t, err, tc.want...)
		})
	}
}

func TestConfigDefaultsBuild(t *testing.T) {
	// Every kind builds from its zero config plus its required fields, and
	// defaults are documented values.
	for _, cfg := range []modality.Config{
		{Kind: "vision"}, {Kind: "vision", Architecture: "resnet"}, {Kind: "vision", Architecture: "efficient"},
		{Kind: "audio"}, {Kind: "audio", Architecture: "raw"},
		{Kind: "text", Text: modality.TextConfig{VocabSize: 100}},
		{Kind: "sensor", Sensor: modality.SensorConfig{Sensors: 6}},
		{Kind: "video"}, {Kind: "video", Architecture: "conv3d"},
		{Kind: "mlp", MLP: modality.MLPConfig{InputDim: 10}},
	} {
		p, err := modality.New(cfg)
		if err != nil {
			t.Errorf("%s/%s: %v", cfg.Kind, cfg.Architecture, err)
			continue
		}
		if p.Kind() != cfg.Kind || p.OutputDim() != modality.DefaultOutputDim {
			t.Errorf("%s: Kind %q OutputDim %d", cfg.Kind, p.Kind(), p.OutputDim())
		}
	}
	d := modality.Config{Kind: "vision"}.WithDefaults()
	if d.Architecture != "simple" || d.Vision.InChannels != 3 || d.Vision.Height != 224 || !reflect.DeepEqual(d.Vision.Channels, []int{16, 32}) ||
		d.Vision.Kernel != 3 || d.Vision.Stride != 2 || d.Vision.Activation != "relu" {
		t.Errorf("vision defaults %+v", d)
	}
	v := modality.Config{Kind: "video", OutputDim: 32}.WithDefaults().Video
	if v.Frames != 8 || v.Backbone != "simple" || v.FrameDim != 32 || v.Temporal != "conv" || v.Frame.InChannels != 3 {
		t.Errorf("video defaults %+v", v)
	}
	tx := modality.Config{Kind: "text", Text: modality.TextConfig{PadID: -7}}.WithDefaults().Text
	if tx.SeqLen != 128 || tx.EmbedDim != 128 || tx.Positions != "learned" || tx.Pooling != "mean" || tx.PadID != -1 {
		t.Errorf("text defaults %+v", tx)
	}
	// WithDefaults does not alias the caller's slices.
	in := modality.Config{Kind: "vision", Vision: modality.VisionConfig{Channels: []int{4}}}
	out := in.WithDefaults()
	out.Vision.Channels[0] = 99
	if in.Vision.Channels[0] != 4 {
		t.Errorf("WithDefaults shares the Channels slice")
	}
}

func TestConfigJoinsEveryProblem(t *testing.T) {
	_, err := modality.New(modality.Config{Kind: "sensor", OutputDim: -1, Sensor: modality.SensorConfig{Kernel: -1}})
	wantErr(t, err, "sensor.output_dim", "sensor.sensors", "sensor.kernel")
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("%d lines, want 3: %v", n, err)
	}
}

// scaleFeatures is a custom preprocessor for the registry test:
// y = scale·x·Wᵀ with one weight "w" [OutputDim, in].
type scaleFeatures struct {
	in, out int
	scale   float64
}

func (s scaleFeatures) Kind() string               { return "scale" }
func (s scaleFeatures) InputShape(batch int) []int { return []int{batch, s.in} }
func (s scaleFeatures) IntInput() bool             { return false }
func (s scaleFeatures) OutputDim() int             { return s.out }
func (s scaleFeatures) Forward(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	y, err := nn.Linear{In: s.in, Out: s.out, NoBias: true}.Forward(c, x)
	if err != nil {
		return nil, err
	}
	k := G.NewConstant(s.scale)
	if c.Dtype() == tensor.Float32 {
		k = G.NewConstant(float32(s.scale))
	}
	return G.Mul(y, k)
}

var registrations atomic.Int64

func TestRegistry(t *testing.T) {
	// Registrations last for the process: a fresh name per run keeps
	// `go test -count=N` working.
	name := fmt.Sprintf("scale_test_%d", registrations.Add(1))
	factory := func(cfg modality.Config) (modality.Preprocessor, error) {
		in, ok := cfg.Options["in"].(int)
		if !ok || in <= 0 {
			return nil, errors.New("options.in: must be a positive integer")
		}
		scale, _ := cfg.Options["scale"].(float64)
		return scaleFeatures{in: in, out: cfg.OutputDim, scale: scale}, nil
	}
	if err := modality.Register(name, factory); err != nil {
		t.Fatal(err)
	}
	wantErr(t, modality.Register(name, factory), "already registered")
	wantErr(t, modality.Register("vision", factory), `register "vision": a built-in kind has that name`)
	wantErr(t, modality.Register("Bad-Name", factory), "must match [a-z][a-z0-9_]*")
	wantErr(t, modality.Register("nilfactory", nil), "nil factory")
	found := false
	for _, k := range modality.Kinds() {
		found = found || k == name
	}
	if !found {
		t.Errorf("Kinds() = %v lacks %q", modality.Kinds(), name)
	}

	p, err := modality.New(modality.Config{Kind: name, OutputDim: 2, Options: map[string]any{"in": 3, "scale": 2.0}})
	if err != nil {
		t.Fatal(err)
	}
	x := []float64{1, 2, 3}
	r := forward(t, p, tensor.Float64, false, []int{1, 3}, x, nil, nil)
	w := param(t, r.store, "pre.weight")
	want := []float64{2 * (w[0]*1 + w[1]*2 + w[2]*3), 2 * (w[3]*1 + w[4]*2 + w[5]*3)}
	assertClose(t, "custom output", r.y, want, 1e-12, 0)

	// The factory's own validation comes back prefixed with the kind, and
	// the default output_dim reaches it.
	_, err = modality.New(modality.Config{Kind: name})
	wantErr(t, err, name+": options.in: must be a positive integer")
	p, err = modality.New(modality.Config{Kind: name, Options: map[string]any{"in": 1}})
	if err != nil || p.OutputDim() != modality.DefaultOutputDim {
		t.Errorf("default output_dim: %v, %v", p, err)
	}
}
