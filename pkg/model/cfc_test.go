package model

import (
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// cellGradGraph runs a liquid cell over 3 random input steps [2, in] and
// returns a probe loss over every output (and the inputs to check).
func cellGradGraph(in int, forward func(c *nn.Ctx, xs []*G.Node) ([]*G.Node, error)) nntest.Build {
	return func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		var xs G.Nodes
		for i := 0; i < 3; i++ {
			xs = append(xs, G.NewTensor(c.Graph(), c.Dtype(), 2, G.WithShape(2, in), G.WithName("x"+string(rune('0'+i))),
				G.WithValue(nntest.RandInput(int64(40+i), 1, 2, in))))
		}
		outs, err := forward(c.Sub("cell"), xs)
		if err != nil {
			return nil, nil, err
		}
		var loss *G.Node
		for i, o := range outs {
			l, err := nntest.WeightedSum(o, int64(50+i))
			if err != nil {
				return nil, nil, err
			}
			if loss == nil {
				loss = l
			} else if loss, err = G.Add(loss, l); err != nil {
				return nil, nil, err
			}
		}
		return loss, xs, nil
	}
}

func TestCfCGradcheck(t *testing.T) {
	// Every mode, two backbone layers with dropout between them (training
	// graph, fixed masks), ts ≠ 1.
	for _, mode := range []string{CfCDefault, CfCNoGate, CfCPure} {
		t.Run(mode, func(t *testing.T) {
			cell, err := NewCfC(CfCConfig{InputSize: 3, Units: 4, Mode: mode, BackboneUnits: 5, BackboneLayers: 2,
				BackboneDropout: 0.3, ElapsedTime: 0.8})
			if err != nil {
				t.Fatal(err)
			}
			want := 12 // backbone.0, backbone.2 (w, b) + 4 heads (w, b)
			if mode == CfCPure {
				want = 8 // backbone (4) + ff1 (2) + w_tau + A
			}
			nntest.Check(t, cellGradGraph(3, cell.Forward), nntest.Options{Train: true, Entries: 4, MinChecked: want + 3})
		})
	}
}

func TestCfCParamNamesFollowNCPS(t *testing.T) {
	// ncps' nn.Sequential indexes activations and dropouts too: with 3
	// layers and dropout the Linear modules are backbone.0, .2 and .5.
	cell, err := NewCfC(CfCConfig{InputSize: 2, Units: 3, BackboneUnits: 4, BackboneLayers: 3, BackboneDropout: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCtx(t, true)
	if _, err := cell.Forward(c.Sub("cfc"), []*G.Node{c.Input("x", 2, 2)}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range c.Store().Params() {
		names = append(names, p.Name)
	}
	want := "cfc.backbone.0.bias cfc.backbone.0.weight cfc.backbone.2.bias cfc.backbone.2.weight cfc.backbone.5.bias cfc.backbone.5.weight " +
		"cfc.ff1.bias cfc.ff1.weight cfc.ff2.bias cfc.ff2.weight cfc.time_a.bias cfc.time_a.weight cfc.time_b.bias cfc.time_b.weight"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("parameters\n %s\nwant\n %s", got, want)
	}
}

func TestCfCErrors(t *testing.T) {
	cases := []struct {
		cfg  CfCConfig
		want string
	}{
		{CfCConfig{InputSize: 0, Units: 2}, "input size must be ≥ 1"},
		{CfCConfig{InputSize: 2, Units: 0}, "units (liquid_units) must be ≥ 1"},
		{CfCConfig{InputSize: 2, Units: 2, Mode: "ltc"}, `mode (cfc_mode) must be default, no_gate or pure, got "ltc"`},
		{CfCConfig{InputSize: 2, Units: 2, BackboneLayers: -1}, "backbone_layers must be ≥ 1"},
		{CfCConfig{InputSize: 2, Units: 2, BackboneDropout: 1.5}, "backbone_dropout must be in [0, 1)"},
		{CfCConfig{InputSize: 2, Units: 2, ElapsedTime: -1}, "elapsed_time must be a positive number"},
	}
	for _, tc := range cases {
		if _, err := NewCfC(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewCfC(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	cell, err := NewCfC(CfCConfig{InputSize: 2, Units: 3})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCtx(t, false).Sub("text").Sub("cfc")
	if _, err := cell.Forward(c, []*G.Node{c.Input("x", 2, 5)}); err == nil || !strings.Contains(err.Error(), "text.cfc: cfc expects input [batch, 2], got (2, 5) (at step 1)") {
		t.Errorf("wrong width: %v", err)
	}
	if _, err := cell.Forward(c, nil); err == nil || !strings.Contains(err.Error(), "text.cfc: cfc: empty input sequence") {
		t.Errorf("no steps: %v", err)
	}
}
