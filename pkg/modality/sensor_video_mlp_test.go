package modality_test

import (
	"reflect"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

func tinySensor(attention bool) modality.Config {
	return modality.Config{Kind: "sensor", OutputDim: 3, Sensor: modality.SensorConfig{
		Sensors: 3, TimeSteps: 10, Channels: []int{4, 4}, Pool: 2, Attention: attention, Heads: 2}}
}

func TestSensorGradients(t *testing.T) {
	shape := []int{2, 3, 10}
	x := randVals(31, 1, prod(shape))
	// conv1, bn1 (2), conv2, bn2 (2), fc (2), x = 9.
	t.Run("conv", func(t *testing.T) { gradCheck(t, mustNew(t, tinySensor(false)), shape, x, nil, 9) })
	// + attention q/k/v/out projections (8) and the layer norm (2).
	t.Run("attention", func(t *testing.T) { gradCheck(t, mustNew(t, tinySensor(true)), shape, x, nil, 19) })
}

func TestSensorShapes(t *testing.T) {
	for _, att := range []bool{false, true} {
		p := mustNew(t, tinySensor(att))
		if got := p.InputShape(5); !reflect.DeepEqual(got, []int{5, 3, 10}) {
			t.Errorf("InputShape = %v", got)
		}
		for _, steps := range []int{10, 1, 17} {
			shape := []int{2, 3, steps}
			r := forward(t, p, tensor.Float32, false, shape, randVals(32, 1, prod(shape)), nil, nil)
			if !reflect.DeepEqual([]int(r.shape), []int{2, 3}) {
				t.Errorf("attention=%v, %d steps: output %v", att, steps, r.shape)
			}
			if _, ok := paramShapes(r.store)["pre.attention.q_proj.weight"]; ok != att {
				t.Errorf("attention=%v but q_proj present=%v", att, ok)
			}
		}
	}
	wantErr(t, buildErr(mustNew(t, tinySensor(false)), tensor.Float64, []int{2, 4, 10}),
		"sensor preprocessor expects input [batch, sensors=3, time]", "sensors is 4, want 3")
}

// rnnCell is a minimal TemporalCell for tests: h_t = tanh(W x_t + U h_{t−1}),
// h_0 = 0, standing in for pkg/model's CfC cell.
type rnnCell struct{ hidden int }

func (r rnnCell) Run(c *nn.Ctx, steps []*G.Node) (*G.Node, error) {
	var h *G.Node
	for _, x := range steps {
		in, err := nn.Linear{In: x.Shape()[1], Out: r.hidden}.Forward(c.Sub("w"), x)
		if err != nil {
			return nil, err
		}
		if h != nil {
			rec, err := nn.Linear{In: r.hidden, Out: r.hidden, NoBias: true}.Forward(c.Sub("u"), h)
			if err != nil {
				return nil, err
			}
			if in, err = G.Add(in, rec); err != nil {
				return nil, err
			}
		}
		if h, err = nn.Tanh(in); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func tinyVideo(arch, temporal string) modality.Config {
	cfg := modality.Config{Kind: "video", Architecture: arch, OutputDim: 3, Video: modality.VideoConfig{
		Frames: 3, Frame: modality.VisionConfig{InChannels: 1, Height: 6, Width: 5, Channels: []int{3}},
		FrameDim: 4, Temporal: temporal, Conv3DChannels: []int{3, 4}}}
	if temporal == "liquid" {
		cfg.Video.Cell = rnnCell{hidden: 5}
	}
	return cfg
}

func TestVideoGradients(t *testing.T) {
	shape := []int{2, 3, 1, 6, 5}
	x := randVals(41, 1, prod(shape))
	for _, tc := range []struct {
		arch, temporal string
		min            int
	}{
		// frame conv1 (2) + frame fc (2) + fc (2) + x, plus the aggregator.
		{"frames", "mean", 7},
		{"frames", "conv", 9},
		{"frames", "liquid", 10},
		// conv1, bn1 (2), conv2, bn2 (2), fc (2), x.
		{"conv3d", "", 9},
	} {
		t.Run(tc.arch+"_"+tc.temporal, func(t *testing.T) {
			gradCheck(t, mustNew(t, tinyVideo(tc.arch, tc.temporal)), shape, x, nil, tc.min)
		})
	}
}

func TestVideoSharesTheFrameBackbone(t *testing.T) {
	// The per-frame backbone has one set of parameters whatever the clip
	// length, and with mean aggregation the order of the frames does not
	// matter.
	p := mustNew(t, tinyVideo("frames", "mean"))
	shape := []int{2, 3, 1, 6, 5}
	x := randVals(42, 1, prod(shape))
	r := forward(t, p, tensor.Float64, false, shape, x, nil, nil)
	frame := 6 * 5
	rev := make([]float64, len(x))
	for b := 0; b < 2; b++ {
		for f := 0; f < 3; f++ {
			copy(rev[(b*3+f)*frame:(b*3+f+1)*frame], x[(b*3+2-f)*frame:(b*3+3-f)*frame])
		}
	}
	r2 := forward(t, p, tensor.Float64, false, shape, rev, nil, r.store)
	assertClose(t, "reversed clip", r2.y, r.y, 1e-12, 1e-10)
	n := r.store.NumParams()
	long := []int{2, 7, 1, 6, 5}
	r3 := forward(t, p, tensor.Float64, false, long, randVals(43, 1, prod(long)), nil, nil)
	if r3.store.NumParams() != n || !reflect.DeepEqual([]int(r3.shape), []int{2, 3}) {
		t.Errorf("7 frames: %d params (3 frames: %d), output %v", r3.store.NumParams(), n, r3.shape)
	}
	// A conv temporal aggregator is order-sensitive.
	pc := mustNew(t, tinyVideo("frames", "conv"))
	a := forward(t, pc, tensor.Float64, false, shape, x, nil, nil)
	b := forward(t, pc, tensor.Float64, false, shape, rev, nil, a.store)
	if reflect.DeepEqual(a.y, b.y) {
		t.Errorf("temporal conv output unchanged by reversing the frames")
	}
}

func TestVideoInputChecks(t *testing.T) {
	p := mustNew(t, tinyVideo("frames", "conv"))
	if got := p.InputShape(4); !reflect.DeepEqual(got, []int{4, 3, 1, 6, 5}) {
		t.Errorf("InputShape = %v", got)
	}
	wantErr(t, buildErr(p, tensor.Float64, []int{2, 1, 6, 5}), "video preprocessor expects input [batch, frames, channels=1, height, width]")
	wantErr(t, buildErr(p, tensor.Float64, []int{2, 3, 3, 6, 5}), "channels is 3, want 1")
	// liquid without an injected cell is a config error.
	cfg := tinyVideo("frames", "liquid")
	cfg.Video.Cell = nil
	_, err := modality.New(cfg)
	wantErr(t, err, `video.temporal: "liquid" needs VideoConfig.Cell`)
}

func TestMLPGradientsAndShapes(t *testing.T) {
	cfg := modality.Config{Kind: "mlp", OutputDim: 3, MLP: modality.MLPConfig{InputDim: 6, Hidden: []int{5, 4}, Activation: "gelu", Dropout: 0.3}}
	p := mustNew(t, cfg)
	x := randVals(51, 1, 4*6)
	gradCheck(t, p, []int{4, 6}, x, nil, 7)
	r := forward(t, p, tensor.Float32, false, []int{4, 6}, x, nil, nil)
	want := map[string]string{
		"pre.fc1.weight": "[5 6]", "pre.fc1.bias": "[5]", "pre.fc2.weight": "[4 5]", "pre.fc2.bias": "[4]",
		"pre.out.weight": "[3 4]", "pre.out.bias": "[3]",
	}
	if got := paramShapes(r.store); !reflect.DeepEqual(got, want) || !reflect.DeepEqual([]int(r.shape), []int{4, 3}) {
		t.Errorf("params %v, output %v", got, r.shape)
	}
	wantErr(t, buildErr(p, tensor.Float64, []int{4, 7}), "mlp preprocessor expects input [batch, features=6]")
}
