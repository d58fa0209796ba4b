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

// benchEncoderParams is the parameter count of one bench-small
// ModalityEncoder in PyTorch: sum(p.numel()) of ref_torch.py's
// ModalityEncoder(CFG) = 16,512 (proj) + 8,256 (lif.fc) + 8,256 (CfC
// backbone) + 4×4,160 (ff1, ff2, time_a, time_b) + 8,320 (out). golden.py
// recomputes it into encoder.json and TestGoldenEncoder cross-checks.
const benchEncoderParams = 57984

// benchEncoderConfig is bench-small's per-modality encoder.
func benchEncoderConfig(name string) EncoderConfig {
	return EncoderConfig{Name: name, InputDim: 128, EncoderDim: 128, SpikingUnits: 64, LiquidUnits: 64,
		NumSpikeSteps: 8, SpikingLayers: 1, BackboneUnits: 64, BackboneLayers: 1}
}

func TestBenchSmallEncoderParamCount(t *testing.T) {
	enc, err := NewModalityEncoder(benchEncoderConfig("vision"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := enc.Config()
	if cfg.Beta != 0.95 || cfg.Threshold != 1 || cfg.Reset != ResetSubtract || cfg.Surrogate.Kind != "fast_sigmoid" ||
		cfg.Surrogate.Slope != 25 || cfg.CfCMode != CfCDefault || cfg.BackboneActivation != "lecun_tanh" || cfg.ElapsedTime != 1 {
		t.Errorf("resolved bench config %+v differs from ref_torch.py", cfg)
	}
	store, _ := nn.NewStore(tensor.Float32, 1)
	c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{})
	out, err := enc.Forward(c.Sub("vision"), c.Input("x", 2, 128))
	if err != nil {
		t.Fatal(err)
	}
	if n := store.NumParams(); n != benchEncoderParams {
		t.Errorf("bench-small encoder has %d parameters, PyTorch has %d", n, benchEncoderParams)
	}
	if s := out.Feature.Shape(); !s.Eq(tensor.Shape{2, 128}) || len(out.Spikes) != 1 || len(out.Spikes[0]) != 8 {
		t.Errorf("feature %v, %d spiking layers", s, len(out.Spikes))
	}
	for _, name := range []string{"vision.proj.weight", "vision.spiking.lif1.fc.weight", "vision.cfc.backbone.0.weight",
		"vision.cfc.ff1.weight", "vision.cfc.ff2.weight", "vision.cfc.time_a.weight", "vision.cfc.time_b.bias", "vision.out.weight"} {
		if store.Lookup(name) == nil {
			t.Errorf("parameter %s missing", name)
		}
	}
}

func TestEncoderConfigErrors(t *testing.T) {
	base := benchEncoderConfig("audio")
	cases := []struct {
		edit func(*EncoderConfig)
		want string
	}{
		{func(c *EncoderConfig) { c.NumSpikeSteps = 0 }, `modality "audio": num_spike_steps must be ≥ 1, got 0`},
		{func(c *EncoderConfig) { c.InputDim = 0 }, `modality "audio": input_dim must be ≥ 1`},
		{func(c *EncoderConfig) { c.LiquidUnits = -3 }, `modality "audio": liquid_units must be ≥ 1, got -3`},
		{func(c *EncoderConfig) { c.Backbone = "lstm" }, `modality "audio": backbone must be cfc or ltc, got "lstm"`},
		{func(c *EncoderConfig) { c.CfCMode = "fast" }, `modality "audio": cfc: mode (cfc_mode) must be default, no_gate or pure, got "fast"`},
		{func(c *EncoderConfig) { c.Beta = 2 }, `modality "audio": spiking encoder layer lif1: lif: beta must be in [0, 1], got 2`},
		{func(c *EncoderConfig) { c.Reset = "hard" }, `reset must be subtract, zero or none, got "hard"`},
		{func(c *EncoderConfig) { c.Surrogate.Kind = "erf" }, `modality "audio": spiking encoder layer lif1: lif: surrogate: unknown kind "erf"`},
		{func(c *EncoderConfig) { c.Dropout = 1 }, `modality "audio": spiking encoder: dropout must be in [0, 1), got 1`},
		{func(c *EncoderConfig) { c.BackboneActivation = "softsign" }, `modality "audio": cfc: backbone_activation:`},
		{func(c *EncoderConfig) { c.Backbone, c.CfCMode = "ltc", "pure" }, `cfc_mode "pure" is set but backbone is ltc`},
		{func(c *EncoderConfig) { c.Name = "" }, "name must not be empty"},
	}
	for _, tc := range cases {
		cfg := base
		tc.edit(&cfg)
		if _, err := NewModalityEncoder(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to contain %q", err, tc.want)
		}
	}
	// A wrong input width at build time names the modality, the scope and
	// the key.
	enc, err := NewModalityEncoder(base)
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCtx(t, false).Sub("encoders").Sub("audio")
	_, err = enc.Forward(c, c.Input("x", 2, 100))
	if err == nil || !strings.Contains(err.Error(), `encoders.audio: modality "audio": encoder input has shape (2, 100), want [batch, 128] (input_dim)`) {
		t.Errorf("wrong input width: %v", err)
	}
	if _, err = enc.Forward(c, nil); err == nil || !strings.Contains(err.Error(), `modality "audio": missing input`) {
		t.Errorf("nil input: %v", err)
	}
}

// encoderGradGraph builds a small encoder with a Smooth surrogate (so the
// whole graph is differentiable) and a probe loss on the feature and the
// rates.
func encoderGradGraph(cfg EncoderConfig, scale float64) nntest.Build {
	return func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		enc, err := NewModalityEncoder(cfg)
		if err != nil {
			return nil, nil, err
		}
		x := G.NewTensor(c.Graph(), c.Dtype(), 2, G.WithShape(3, cfg.InputDim), G.WithName("x"), G.WithValue(nntest.RandInput(5, scale, 3, cfg.InputDim)))
		out, err := enc.Forward(c.Sub(cfg.Name), x)
		if err != nil {
			return nil, nil, err
		}
		loss, err := nntest.WeightedSum(out.Feature, 8)
		if err != nil {
			return nil, nil, err
		}
		for i, r := range out.Rates {
			l, err := nntest.WeightedSum(r, int64(30+i))
			if err != nil {
				return nil, nil, err
			}
			if loss, err = G.Add(loss, l); err != nil {
				return nil, nil, err
			}
		}
		return loss, G.Nodes{x}, nil
	}
}

func smallEncoderConfig(backbone, mode string) EncoderConfig {
	return EncoderConfig{Name: "toy", InputDim: 4, EncoderDim: 5, SpikingUnits: 3, LiquidUnits: 4, NumSpikeSteps: 3,
		Threshold: 0.5, LearnBeta: true, LearnThreshold: true, GradedSpikes: true, Dropout: 0.3,
		Surrogate: nn.Surrogate{Kind: "atan", Smooth: true}, Backbone: backbone, CfCMode: mode,
		BackboneUnits: 4, BackboneLayers: 2, BackboneDropout: 0.25, ODEUnfolds: 3}
}

func TestModalityEncoderGradcheck(t *testing.T) {
	// Full encoder graphs (two spiking layers with dropout between, liquid
	// cell, output layer), training mode with fixed dropout masks. Inputs of
	// scale 2 keep membranes away from the detached reset's step.
	for _, tc := range []struct{ backbone, mode string }{{"cfc", "default"}, {"ltc", ""}} {
		t.Run(tc.backbone, func(t *testing.T) {
			cfg := smallEncoderConfig(tc.backbone, tc.mode)
			r := nntest.Check(t, encoderGradGraph(cfg, 2), nntest.Options{Train: true, Entries: 3, MinChecked: 12})
			t.Logf("%s: %d tensors, %d entries, max error %.3g", tc.backbone, r.Checked, r.Entries, r.MaxError)
		})
	}
}

func TestSurrogateOffFreezesEverythingUpstream(t *testing.T) {
	// The surrogate-off control: with exact-zero surrogate gradients, the
	// input, the projection and every spiking layer get exactly zero
	// gradient; the liquid cell and output layer still learn.
	cfg := smallEncoderConfig("cfc", "")
	cfg.Surrogate = nn.Surrogate{Off: true}
	cfg.Dropout, cfg.BackboneDropout = 0, 0
	c := newTestCtx(t, true)
	loss, inputs, err := encoderGradGraph(cfg, 2)(c)
	if err != nil {
		t.Fatal(err)
	}
	wrt := append(c.Learnables(), inputs...)
	if _, err := G.Grad(loss, wrt...); err != nil {
		t.Fatal(err)
	}
	runGraph(t, c.Graph(), wrt...)
	upstream, downstream := 0, 0
	for _, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		g, _ := nn.ToFloat64(gv.(tensor.Tensor))
		norm := 0.0
		for _, v := range g {
			norm += v * v
		}
		name := n.Name()
		isUp := name == "x" || strings.HasPrefix(name, "toy.proj.") || (strings.HasPrefix(name, "toy.spiking.") && !strings.HasSuffix(name, "graded_spikes"))
		switch {
		case isUp && norm != 0:
			t.Errorf("%s: gradient norm² %g with the surrogate off, want exactly 0", name, norm)
		case isUp:
			upstream++
		case norm == 0 && !strings.HasSuffix(name, "graded_spikes"):
			t.Errorf("%s: zero gradient downstream of the spikes", name)
		default:
			downstream++
		}
	}
	if upstream < 7 || downstream < 8 {
		t.Errorf("checked %d upstream and %d downstream tensors", upstream, downstream)
	}
}

func TestSpikeTelemetry(t *testing.T) {
	// Hand-built spikes: 2 samples × 3 neurons × 2 steps.
	//   neuron 0 fires everywhere (saturated), neuron 1 never (silent),
	//   neuron 2 fires in 1 of 4 (sample, step) pairs.
	c := newTestCtx(t, false)
	mk := func(name string, v []float64) *G.Node {
		return G.NewTensor(c.Graph(), tensor.Float64, 2, G.WithShape(2, 3), G.WithName(name), G.WithValue(nn.NewDense(tensor.Float64, []int{2, 3}, v)))
	}
	s1 := mk("s1", []float64{1, 0, 0, 1, 0, 1})
	s2 := mk("s2", []float64{1, 0, 0, 0.5, 0, 0}) // graded spikes count as firing
	st, err := spikeStats([]*G.Node{s1, s2})
	if err != nil {
		t.Fatal(err)
	}
	out := &EncoderOutput{Stats: []*G.Node{st}, Layers: []string{"m.spiking.lif1"}}
	if _, err := SpikeTelemetry(out); err == nil || !strings.Contains(err.Error(), "run the graph first") {
		t.Errorf("telemetry before a run: %v", err)
	}
	vm := G.NewTapeMachine(c.Graph())
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	tel, err := SpikeTelemetry(out)
	if err != nil {
		t.Fatal(err)
	}
	want := LayerTelemetry{Layer: "m.spiking.lif1", Neurons: 3, Rate: (1 + 0 + 0.25) / 3, Silent: 1.0 / 3, Saturated: 1.0 / 3}
	if len(tel.Layers) != 1 || tel.Layers[0] != want {
		t.Errorf("telemetry %+v, want %+v", tel.Layers, want)
	}
}

func TestEncoderTelemetryMatchesSpikes(t *testing.T) {
	// A real encoder run on a plain TapeMachine (no TraceExec: intermediate
	// values may be overwritten) must still report telemetry equal to what
	// the spikes give when every value is kept.
	cfg := smallEncoderConfig("cfc", "")
	cfg.Surrogate = nn.Surrogate{}
	cfg.InputDim, cfg.EncoderDim, cfg.SpikingUnits, cfg.NumSpikeSteps = 6, 8, 5, 6
	var tels [2]Telemetry
	var spikes [][][]float64
	for i, trace := range []bool{false, true} {
		store, _ := nn.NewStore(tensor.Float64, 3)
		c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{})
		enc, err := NewModalityEncoder(cfg)
		if err != nil {
			t.Fatal(err)
		}
		x := G.NewTensor(c.Graph(), tensor.Float64, 2, G.WithShape(4, 6), G.WithName("x"), G.WithValue(nntest.RandInput(2, 3, 4, 6)))
		out, err := enc.Forward(c.Sub("toy"), x)
		if err != nil {
			t.Fatal(err)
		}
		opts := []G.VMOpt{}
		if trace {
			opts = append(opts, G.TraceExec())
		}
		vm := G.NewTapeMachine(c.Graph(), opts...)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Close()
		if tels[i], err = SpikeTelemetry(out); err != nil {
			t.Fatal(err)
		}
		if trace {
			for _, layer := range out.Spikes {
				var l [][]float64
				for _, s := range layer {
					l = append(l, values(t, s))
				}
				spikes = append(spikes, l)
			}
		}
	}
	if len(tels[0].Layers) != 2 {
		t.Fatalf("%d layers of telemetry, want 2", len(tels[0].Layers))
	}
	for l, layer := range spikes {
		n := tels[0].Layers[l].Neurons
		fired, total := 0, 0
		for _, s := range layer {
			for _, v := range s {
				if v != 0 {
					fired++
				}
				total++
			}
		}
		if got, want := tels[0].Layers[l].Rate, float64(fired)/float64(total); math.Abs(got-want) > 1e-12 || n != len(layer[0])/4 {
			t.Errorf("layer %d: rate %g (%d neurons), spikes give %g", l, got, n, want)
		}
		if tels[0].Layers[l] != tels[1].Layers[l] {
			t.Errorf("layer %d: telemetry %+v without trace, %+v with", l, tels[0].Layers[l], tels[1].Layers[l])
		}
	}
	if r := tels[0].Layers[0].Rate; r <= 0 || r >= 1 {
		t.Errorf("first layer rate %g: the test input should make some, not all, neurons fire", r)
	}
}
