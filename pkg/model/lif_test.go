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

// runGraph runs every node of the graph once and fails the test on error.
// TraceExec keeps every node's value (the TapeMachine otherwise reuses the
// memory of intermediate nodes), so tests can read membranes and spikes.
func runGraph(t *testing.T, g *G.ExprGraph, bind ...*G.Node) {
	t.Helper()
	vm := G.NewTapeMachine(g, G.BindDualValues(bind...), G.TraceExec())
	t.Cleanup(func() { vm.Close() })
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
}

// values returns a node's value (tensor or scalar) as []float64.
func values(t *testing.T, n *G.Node) []float64 {
	t.Helper()
	switch v := n.Value().(type) {
	case *G.F64:
		return []float64{float64(*v)}
	case tensor.Tensor:
		f, err := nn.ToFloat64(v)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	t.Fatalf("%s: value %T", n.Name(), n.Value())
	return nil
}

func newTestCtx(t *testing.T, train bool) *nn.Ctx {
	t.Helper()
	store, err := nn.NewStore(tensor.Float64, 1)
	if err != nil {
		t.Fatal(err)
	}
	return nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{Train: train, FixedNoise: true})
}

func TestLIFForwardByHand(t *testing.T) {
	// β = 0.5, θ = 1, constant current 0.6 (one neuron, one sample).
	// U: 0.6, 0.9, 1.05 (fires), then the reset of step 4 uses U_3 > θ:
	//   subtract: U_4 = 0.525 + 0.6 − 1 = 0.125, U_5 = 0.0625 + 0.6 = 0.6625
	//   zero:     U_4 = 0 + 0.6 = 0.6,           U_5 = 0.3 + 0.6 = 0.9
	//   none:     U_4 = 0.525 + 0.6 = 1.125 (fires), U_5 = 0.5625 + 0.6 = 1.1625 (fires)
	cases := []struct {
		reset      string
		mem, spike []float64
	}{
		{ResetSubtract, []float64{0.6, 0.9, 1.05, 0.125, 0.6625}, []float64{0, 0, 1, 0, 0}},
		{ResetZero, []float64{0.6, 0.9, 1.05, 0.6, 0.9}, []float64{0, 0, 1, 0, 0}},
		{ResetNone, []float64{0.6, 0.9, 1.05, 1.125, 1.1625}, []float64{0, 0, 1, 1, 1}},
	}
	for _, tc := range cases {
		for _, learn := range []bool{false, true} {
			c := newTestCtx(t, false)
			cur := G.NewTensor(c.Graph(), tensor.Float64, 2, G.WithShape(1, 1), G.WithName("cur"), G.WithValue(nn.NewDense(tensor.Float64, []int{1, 1}, []float64{0.6})))
			lif, err := NewLIF(LIFConfig{Units: 1, Beta: 0.5, Reset: tc.reset, LearnBeta: learn, LearnThreshold: learn, GradedSpikes: learn})
			if err != nil {
				t.Fatal(err)
			}
			out, err := lif.Forward(c.Sub("lif"), []*G.Node{cur}, 5)
			if err != nil {
				t.Fatal(err)
			}
			runGraph(t, c.Graph())
			rate := 0.0
			for i := range tc.mem {
				if u := values(t, out.Membranes[i])[0]; math.Abs(u-tc.mem[i]) > 1e-15 {
					t.Errorf("%s learn=%v: U_%d = %.17g, want %g", tc.reset, learn, i+1, u, tc.mem[i])
				}
				if s := values(t, out.Spikes[i])[0]; s != tc.spike[i] {
					t.Errorf("%s learn=%v: S_%d = %g, want %g", tc.reset, learn, i+1, s, tc.spike[i])
				}
				rate += tc.spike[i] / 5
			}
			if r := values(t, out.Rate)[0]; math.Abs(r-rate) > 1e-15 {
				t.Errorf("%s: rate %g, want %g", tc.reset, r, rate)
			}
		}
	}
}

// lifGradGraph builds x [3,4] → Linear(4→5) → LIF (T=4) → Σ probe·spikes +
// probe·rate (+ probe·U_T with membrane), for gradient checks.
func lifGradGraph(cfg LIFConfig, scale float64, membrane bool) nntest.Build {
	return func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		x := G.NewTensor(c.Graph(), c.Dtype(), 2, G.WithShape(3, 4), G.WithName("x"), G.WithValue(nntest.RandInput(11, scale, 3, 4)))
		cur, err := nn.Linear{In: 4, Out: 5}.Forward(c.Sub("fc"), x)
		if err != nil {
			return nil, nil, err
		}
		lif, err := NewLIF(cfg)
		if err != nil {
			return nil, nil, err
		}
		out, err := lif.Forward(c.Sub("lif"), []*G.Node{cur}, 4)
		if err != nil {
			return nil, nil, err
		}
		terms := append(append([]*G.Node{}, out.Spikes...), out.Rate)
		if membrane {
			terms = append(terms, out.Membranes[len(out.Membranes)-1])
		}
		var loss *G.Node
		for i, s := range terms {
			l, err := nntest.WeightedSum(s, int64(20+i))
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
	}
}

func TestLIFGradcheckSmooth(t *testing.T) {
	// With a Smooth surrogate the spike forward is differentiable, so the
	// whole layer can be checked by finite differences. The detached reset is
	// a step function of U_{t−1}: inputs of scale 2 keep every membrane far
	// (≫ 1e-6) from θ, so the central differences never flip a reset.
	for _, reset := range []string{ResetSubtract, ResetZero, ResetNone} {
		for _, kind := range []string{"fast_sigmoid", "atan", "sigmoid"} {
			t.Run(reset+"/"+kind, func(t *testing.T) {
				cfg := LIFConfig{Units: 5, Beta: 0.8, Threshold: 0.7, Reset: reset, LearnBeta: true, LearnThreshold: true, GradedSpikes: true,
					Surrogate: nn.Surrogate{Kind: kind, Slope: 2, Smooth: true}}
				r := nntest.Check(t, lifGradGraph(cfg, 2, true), nntest.Options{MinChecked: 6})
				if r.Entries < 20 {
					t.Errorf("checked %d entries", r.Entries)
				}
			})
		}
	}
}

func TestLIFSurrogateOffBlocksUpstreamGradient(t *testing.T) {
	// Surrogate off: every gradient upstream of the spikes (input, Linear
	// weights, β, θ) is exactly zero; the graded factor, downstream of the
	// spikes, still learns.
	c := newTestCtx(t, true)
	cfg := LIFConfig{Units: 5, Reset: ResetSubtract, LearnBeta: true, LearnThreshold: true, GradedSpikes: true, Surrogate: nn.Surrogate{Off: true}}
	loss, inputs, err := lifGradGraph(cfg, 2, false)(c)
	if err != nil {
		t.Fatal(err)
	}
	wrt := append(c.Learnables(), inputs...)
	if _, err := G.Grad(loss, wrt...); err != nil {
		t.Fatal(err)
	}
	runGraph(t, c.Graph(), wrt...)
	for _, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		g, _ := nn.ToFloat64(gv.(tensor.Tensor))
		nonzero := 0
		for _, v := range g {
			if v != 0 {
				nonzero++
			}
		}
		if strings.HasSuffix(n.Name(), "graded_spikes") {
			if nonzero == 0 {
				t.Errorf("%s: gradient is all zero, want the downstream graded factor to learn", n.Name())
			}
		} else if nonzero != 0 {
			t.Errorf("%s: %d non-zero gradient entries with the surrogate off", n.Name(), nonzero)
		}
	}
}

func TestLIFErrors(t *testing.T) {
	cases := []struct {
		cfg  LIFConfig
		want string
	}{
		{LIFConfig{Units: 0}, "units must be ≥ 1"},
		{LIFConfig{Units: 2, Beta: 1.5}, "beta must be in [0, 1]"},
		{LIFConfig{Units: 2, Threshold: -1}, "threshold must be a positive number"},
		{LIFConfig{Units: 2, Reset: "soft"}, `reset must be subtract, zero or none, got "soft"`},
		{LIFConfig{Units: 2, Surrogate: nn.Surrogate{Kind: "erf"}}, `unknown kind "erf"`},
	}
	for _, tc := range cases {
		if _, err := NewLIF(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewLIF(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	lif, err := NewLIF(LIFConfig{Units: 3})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCtx(t, false).Sub("audio").Sub("lif1")
	x := c.Input("x", 2, 4)
	if _, err := lif.Forward(c, []*G.Node{x}, 3); err == nil || !strings.Contains(err.Error(), "audio.lif1: lif: input current 0 has shape (2, 4), want [batch, 3]") {
		t.Errorf("wrong width: %v", err)
	}
	y := c.Input("y", 2, 3)
	if _, err := lif.Forward(c, []*G.Node{y}, 0); err == nil || !strings.Contains(err.Error(), "audio.lif1: lif: steps (num_spike_steps) must be ≥ 1, got 0") {
		t.Errorf("T=0: %v", err)
	}
	if _, err := lif.Forward(c, []*G.Node{y, y}, 3); err == nil || !strings.Contains(err.Error(), "2 input currents for 3 steps") {
		t.Errorf("current count: %v", err)
	}
}
