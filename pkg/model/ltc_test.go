package model

import (
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

func TestLTCGradcheck(t *testing.T) {
	cell, err := NewLTC(LTCConfig{InputSize: 3, Units: 4, ODEUnfolds: 3, ElapsedTime: 0.7})
	if err != nil {
		t.Fatal(err)
	}
	// 15 parameter tensors + 3 inputs.
	nntest.Check(t, cellGradGraph(3, cell.Forward), nntest.Options{Entries: 4, MinChecked: 18})
}

func TestLTCInit(t *testing.T) {
	// ncps' initial ranges, and reversal potentials ±1 with P(−1) ≈ 1/3.
	cell, err := NewLTC(LTCConfig{InputSize: 20, Units: 30})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCtx(t, false)
	if _, err := cell.Forward(c.Sub("ltc"), []*G.Node{c.Input("x", 1, 20)}); err != nil {
		t.Fatal(err)
	}
	ranges := map[string][2]float64{"gleak": {0.001, 1}, "vleak": {-0.2, 0.2}, "cm": {0.4, 0.6}, "sigma": {3, 8}, "mu": {0.3, 0.8},
		"w": {0.001, 1}, "sensory_sigma": {3, 8}, "sensory_mu": {0.3, 0.8}, "sensory_w": {0.001, 1},
		"input_w": {1, 1}, "input_b": {0, 0}, "output_w": {1, 1}, "output_b": {0, 0}}
	for _, p := range c.Store().Params() {
		name := strings.TrimPrefix(p.Name, "ltc.")
		vals := p.Value.Data().([]float64)
		if name == "erev" || name == "sensory_erev" {
			neg := 0
			for _, v := range vals {
				if v != 1 && v != -1 {
					t.Fatalf("%s has %g, want ±1", name, v)
				}
				if v < 0 {
					neg++
				}
			}
			// 900 or 600 Bernoulli(1/3) draws: ±5 standard deviations.
			if f, sd := float64(neg)/float64(len(vals)), math.Sqrt(2.0/9/float64(len(vals))); math.Abs(f-1.0/3) > 5*sd {
				t.Errorf("%s: fraction of −1 is %.3f, want ≈ 1/3", name, f)
			}
			continue
		}
		r, ok := ranges[name]
		if !ok {
			t.Errorf("unexpected parameter %s", p.Name)
			continue
		}
		for _, v := range vals {
			if v < r[0] || v > r[1] {
				t.Fatalf("%s = %g outside [%g, %g]", name, v, r[0], r[1])
			}
		}
	}
	if n := len(c.Store().Params()); n != 15 {
		t.Errorf("%d LTC parameters, want 15", n)
	}
}

func TestLTCErrors(t *testing.T) {
	cases := []struct {
		cfg  LTCConfig
		want string
	}{
		{LTCConfig{InputSize: 2, Units: 0}, "units (liquid_units) must be ≥ 1"},
		{LTCConfig{InputSize: 2, Units: 2, ODEUnfolds: -1}, "ode_unfolds must be ≥ 1"},
		{LTCConfig{InputSize: 2, Units: 2, ElapsedTime: math.NaN()}, "elapsed_time must be a positive number"},
	}
	for _, tc := range cases {
		if _, err := NewLTC(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewLTC(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	cell, err := NewLTC(LTCConfig{InputSize: 2, Units: 3})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCtx(t, false).Sub("sensor").Sub("ltc")
	if _, err := cell.Forward(c, []*G.Node{c.Input("x", 2, 4)}); err == nil || !strings.Contains(err.Error(), "sensor.ltc: ltc expects input [batch, 2], got (2, 4) (at step 1)") {
		t.Errorf("wrong width: %v", err)
	}
}
