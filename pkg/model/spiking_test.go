package model

import (
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

func TestSpikingEncoderWidths(t *testing.T) {
	for _, tc := range []struct {
		layers int
		want   []int
	}{{0, []int{8, 4}}, {1, []int{4}}, {3, []int{8, 8, 4}}} {
		e, err := NewSpikingEncoder(SpikingEncoderConfig{InputDim: 6, OutputDim: 4, Layers: tc.layers, Steps: 2})
		if err != nil {
			t.Fatal(err)
		}
		got := e.Widths()
		same := len(got) == len(tc.want)
		for i := 0; same && i < len(got); i++ {
			same = got[i] == tc.want[i]
		}
		if !same {
			t.Errorf("layers=%d: widths %v, want %v", tc.layers, got, tc.want)
		}
	}
}

func TestSpikingEncoderGradcheck(t *testing.T) {
	// Two layers (in → 2·out → out) with dropout on the first layer's spikes,
	// subtract and zero resets, Smooth surrogate; loss on every layer's
	// spikes and rates.
	for _, reset := range []string{ResetSubtract, ResetZero} {
		t.Run(reset, func(t *testing.T) {
			nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
				e, err := NewSpikingEncoder(SpikingEncoderConfig{InputDim: 4, OutputDim: 3, Steps: 4, Dropout: 0.3,
					LIF: LIFConfig{Threshold: 0.6, Reset: reset, LearnBeta: true, LearnThreshold: true,
						Surrogate: nn.Surrogate{Kind: "sigmoid", Slope: 3, Smooth: true}}})
				if err != nil {
					return nil, nil, err
				}
				x := G.NewTensor(c.Graph(), c.Dtype(), 2, G.WithShape(3, 4), G.WithName("x"), G.WithValue(nntest.RandInput(9, 2, 3, 4)))
				out, err := e.Forward(c.Sub("spk"), x)
				if err != nil {
					return nil, nil, err
				}
				terms := append(append([]*G.Node{}, out.Last()...), out.Rates...)
				var loss *G.Node
				for i, s := range terms {
					l, err := nntest.WeightedSum(s, int64(60+i))
					if err != nil {
						return nil, nil, err
					}
					if loss == nil {
						loss = l
					} else if loss, err = G.Add(loss, l); err != nil {
						return nil, nil, err
					}
				}
				return loss, G.Nodes{x}, nil
			}, nntest.Options{Train: true, Entries: 4, MinChecked: 9})
		})
	}
}

func TestSpikingEncoderErrors(t *testing.T) {
	cases := []struct {
		cfg  SpikingEncoderConfig
		want string
	}{
		{SpikingEncoderConfig{InputDim: 4, OutputDim: 3, Steps: 0}, "steps (num_spike_steps) must be ≥ 1, got 0"},
		{SpikingEncoderConfig{InputDim: 4, OutputDim: 0, Steps: 2}, "output dim (spiking_units) must be ≥ 1"},
		{SpikingEncoderConfig{InputDim: 4, OutputDim: 3, Steps: 2, Layers: -2}, "layers (spiking_layers) must be ≥ 1"},
		{SpikingEncoderConfig{InputDim: 4, OutputDim: 3, Steps: 2, LIF: LIFConfig{Reset: "x"}}, "spiking encoder layer lif1: lif: reset must be"},
	}
	for _, tc := range cases {
		if _, err := NewSpikingEncoder(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewSpikingEncoder(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func TestEncoderFloat32MatchesFloat64(t *testing.T) {
	// The same builders in float32 (training dtype) and float64 (checks):
	// with equal weights the features agree to float32 precision. Both
	// liquid backbones. The spike trains must be identical (a rounding flip
	// near θ would fail the test loudly, not silently loosen it).
	for _, backbone := range []string{BackboneCfC, BackboneLTC} {
		cfg := EncoderConfig{Name: "m", InputDim: 5, EncoderDim: 6, SpikingUnits: 4, LiquidUnits: 3, NumSpikeSteps: 4,
			Backbone: backbone, BackboneUnits: 5}
		var feats [2][]float64
		var spikes [2][]float64
		for i, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			store, _ := nn.NewStore(dt, 5) // init is a function of (seed, name): same weights up to rounding
			c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{})
			enc, err := NewModalityEncoder(cfg)
			if err != nil {
				t.Fatal(err)
			}
			xv, _ := nn.ToFloat64(nntest.RandInput(4, 3, 2, 5))
			x := G.NewTensor(c.Graph(), dt, 2, G.WithShape(2, 5), G.WithName("x"), G.WithValue(nn.NewDense(dt, []int{2, 5}, xv)))
			out, err := enc.Forward(c.Sub("m"), x)
			if err != nil {
				t.Fatal(err)
			}
			loss, err := G.Sum(out.Feature)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := G.Grad(loss, c.Learnables()...); err != nil {
				t.Fatal(err)
			}
			vm := G.NewTapeMachine(c.Graph(), G.BindDualValues(c.Learnables()...), G.TraceExec())
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			vm.Close()
			feats[i], _ = nn.ToFloat64(out.Feature.Value().(tensor.Tensor))
			for _, s := range out.Spikes[len(out.Spikes)-1] {
				v, _ := nn.ToFloat64(s.Value().(tensor.Tensor))
				spikes[i] = append(spikes[i], v...)
			}
		}
		fired := 0.0
		for j := range spikes[0] {
			if spikes[0][j] != spikes[1][j] {
				t.Fatalf("%s: spike %d differs between float64 and float32", backbone, j)
			}
			fired += spikes[0][j]
		}
		if fired == 0 {
			t.Errorf("%s: no spikes in the last layer; the comparison would not cover the liquid cell's input", backbone)
		}
		for j := range feats[0] {
			if d := math.Abs(feats[0][j] - feats[1][j]); d > 1e-5*(1+math.Abs(feats[0][j])) {
				t.Errorf("%s feature[%d]: float64 %g, float32 %g", backbone, j, feats[0][j], feats[1][j])
			}
		}
	}
}
