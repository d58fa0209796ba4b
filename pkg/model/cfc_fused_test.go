package model

import (
	"fmt"
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// cfcParityGraph runs a CfC over T random steps [B, in], unrolled (Forward)
// or fused (ForwardFused on the stacked sequence); loss Σ_t probe_t·h_t.
// Outputs: every state h_t.
func cfcParityGraph(cfg CfCConfig, steps, batch int, fused bool) parityBuild {
	return func(c *nn.Ctx) (*G.Node, []*G.Node, G.Nodes, error) {
		cell, err := NewCfC(cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		var xs G.Nodes
		for i := 0; i < steps; i++ {
			xs = append(xs, G.NewTensor(c.Graph(), c.Dtype(), 2, G.WithShape(batch, cfg.InputSize), G.WithName(fmt.Sprintf("x%d", i)),
				G.WithValue(nntest.RandInput(int64(40+i), 1, batch, cfg.InputSize))))
		}
		var states []*G.Node
		if fused {
			seq, err := stackSteps(xs)
			if err != nil {
				return nil, nil, nil, err
			}
			out, err := cell.ForwardFused(c.Sub("cell"), seq, true)
			if err != nil {
				return nil, nil, nil, err
			}
			if states, err = seqSteps(out.States); err != nil {
				return nil, nil, nil, err
			}
			// The last state is also exposed on its own: it must be h_T.
			states = append(states, out.Last)
		} else {
			if states, err = cell.Forward(c.Sub("cell"), xs); err != nil {
				return nil, nil, nil, err
			}
			states = append(states, states[len(states)-1])
		}
		loss, err := sumProbes(states, 50)
		return loss, states, xs, err
	}
}

// stackSteps stacks T nodes [B, F] into one T-major [T, B, F] node.
func stackSteps(xs []*G.Node) (*G.Node, error) {
	rows := make([]*G.Node, len(xs))
	for i, x := range xs {
		s := x.Shape()
		r, err := G.Reshape(x, []int{1, s[0], s[1]})
		if err != nil {
			return nil, err
		}
		rows[i] = r
	}
	return nn.Concat(0, rows...)
}

func cfcParity(t *testing.T, label string, cfg CfCConfig, steps, batch int, train bool) {
	t.Helper()
	store, err := nn.NewStore(tensor.Float64, 5)
	if err != nil {
		t.Fatal(err)
	}
	ref := runParity(t, store, train, cfcParityGraph(cfg, steps, batch, false))
	fused := runParity(t, store, train, cfcParityGraph(cfg, steps, batch, true))
	assertParity(t, label, fused, ref, 1e-9)
}

func TestCfCFusedMatchesUnrolled(t *testing.T) {
	// Every mode × one or two backbone layers × activations whose
	// derivative comes from the output (lecun_tanh, relu) or the input
	// (silu), ts ≠ 1; outputs and every gradient equal the unrolled cell's.
	// Backbone dropout in an evaluation graph is the identity, so the fused
	// op builds there (with ncps' module indices shifted by the dropouts).
	for _, mode := range []string{CfCDefault, CfCNoGate, CfCPure} {
		for _, layers := range []int{1, 2} {
			for _, act := range []string{"lecun_tanh", "relu", "silu"} {
				cfg := CfCConfig{InputSize: 3, Units: 4, Mode: mode, BackboneUnits: 5, BackboneLayers: layers,
					BackboneActivation: act, ElapsedTime: 0.8}
				cfcParity(t, fmt.Sprintf("%s/L=%d/%s", mode, layers, act), cfg, 3, 2, false)
			}
		}
		cfg := CfCConfig{InputSize: 3, Units: 4, Mode: mode, BackboneUnits: 5, BackboneLayers: 3, BackboneDropout: 0.3}
		cfcParity(t, mode+"/dropout-eval", cfg, 2, 3, false)
	}
	for _, act := range []string{"tanh", "sigmoid", "identity", "gelu"} {
		cfg := CfCConfig{InputSize: 2, Units: 3, BackboneUnits: 4, BackboneActivation: act}
		cfcParity(t, act, cfg, 2, 2, false)
	}
	// A single step (no state gradient to carry).
	cfcParity(t, "T=1", CfCConfig{InputSize: 3, Units: 4, BackboneUnits: 5}, 1, 2, true)
}

func TestCfCFusedParallelMatchesUnrolled(t *testing.T) {
	// Large enough for the op to split the batch over the cores.
	for _, mode := range []string{CfCDefault, CfCPure} {
		cfg := CfCConfig{InputSize: 6, Units: 16, Mode: mode, BackboneUnits: 32, BackboneLayers: 2}
		cfcParity(t, "parallel/"+mode, cfg, 4, 32, true)
	}
}

func TestCfCFusedGradcheck(t *testing.T) {
	for _, mode := range []string{CfCDefault, CfCNoGate, CfCPure} {
		t.Run(mode, func(t *testing.T) {
			cfg := CfCConfig{InputSize: 3, Units: 4, Mode: mode, BackboneUnits: 5, BackboneLayers: 2, ElapsedTime: 0.8}
			build := cfcParityGraph(cfg, 3, 2, true)
			want := 12 + 3 // backbone.0, backbone.2 and 4 heads (w, b) + 3 inputs
			if mode == CfCPure {
				want = 8 + 3
			}
			nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
				loss, _, in, err := build(c)
				return loss, in, err
			}, nntest.Options{Entries: 4, MinChecked: want})
		})
	}
}

func TestCfCFusedErrors(t *testing.T) {
	cell, err := NewCfC(CfCConfig{InputSize: 3, Units: 4, BackboneUnits: 5, BackboneLayers: 2, BackboneDropout: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCtx(t, true).Sub("audio").Sub("cfc")
	x := c.Input("x", 2, 5, 3)
	if _, err := cell.ForwardFused(c, x, false); err == nil || !strings.Contains(err.Error(), "audio.cfc: cfc: the fused sequence op has no backbone dropout") {
		t.Errorf("dropout in training: %v", err)
	}
	y := c.Input("y", 2, 5, 4)
	if _, err := cell.ForwardFused(c, y, false); err == nil || !strings.Contains(err.Error(), "cfc expects an input sequence [steps, batch, 3], got (2, 5, 4)") {
		t.Errorf("wrong width: %v", err)
	}
}

func TestCfCApproxMath(t *testing.T) {
	// The float32 kernels' exp, tanh and sigmoid against the math package:
	// relative error below 2e-8 (float32 rounding is 6e-8), over the range
	// the cell sees and into saturation.
	worst := map[string]float64{}
	for i := -40000; i <= 40000; i++ {
		x := float64(i) * 1e-3 // [−40, 40]
		for name, pair := range map[string][2]float64{
			"exp":     {expApprox(x), math.Exp(x)},
			"tanh":    {tanhApprox(x), math.Tanh(x)},
			"sigmoid": {sigmoidApprox(x), 1 / (1 + math.Exp(-x))},
		} {
			got, want := pair[0], pair[1]
			rel := math.Abs(got-want) / math.Max(math.Abs(want), 1e-300)
			if want == 0 {
				rel = math.Abs(got)
			}
			worst[name] = math.Max(worst[name], rel)
		}
	}
	for name, w := range worst {
		if !(w < 2e-8) {
			t.Errorf("%s: largest relative error %.3g, want < 2e-8", name, w)
		}
	}
	if expApprox(-200) != 0 || !math.IsInf(expApprox(200), 1) || tanhApprox(-30) != -1 {
		t.Errorf("saturation: exp(−200) = %g, exp(200) = %g, tanh(−30) = %g", expApprox(-200), expApprox(200), tanhApprox(-30))
	}
	t.Logf("largest relative errors: %v", worst)
}
