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

// parityBuild builds a graph on c and returns its scalar loss, extra
// output nodes whose values are compared, and input nodes whose gradients
// are compared (besides every learnable parameter).
type parityBuild func(c *nn.Ctx) (loss *G.Node, outs []*G.Node, inputs G.Nodes, err error)

// parityRun is what one run of a parityBuild produced.
type parityRun struct {
	loss  float64
	outs  [][]float64
	grads map[string][]float64
}

// runParity builds the graph over store, runs forward and backward once and
// returns the loss, outputs and gradients by node name.
func runParity(t *testing.T, store *nn.Store, train bool, build parityBuild) parityRun {
	t.Helper()
	c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{Train: train, FixedNoise: true, NoiseSeed: 1})
	var loss *G.Node
	var outs []*G.Node
	var inputs G.Nodes
	if err := nn.Catch("parity", func() error {
		var err error
		loss, outs, inputs, err = build(c)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	wrt := append(c.Learnables(), inputs...)
	if _, err := G.Grad(loss, wrt...); err != nil {
		t.Fatal(err)
	}
	runGraph(t, c.Graph(), wrt...)
	r := parityRun{loss: values(t, loss)[0], grads: map[string][]float64{}}
	for _, o := range outs {
		r.outs = append(r.outs, values(t, o))
	}
	for _, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatalf("%s: %v", n.Name(), err)
		}
		g, err := nn.ToFloat64(gv.(tensor.Tensor))
		if err != nil {
			t.Fatal(err)
		}
		r.grads[n.Name()] = g
	}
	return r
}

// assertParity compares a fused run with the unrolled reference: loss,
// every output and every gradient within rtol of the reference tensor's
// largest magnitude (float64 graphs differ only by summation order).
func assertParity(t *testing.T, label string, fused, ref parityRun, rtol float64) {
	t.Helper()
	close := func(what string, got, want []float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %s has %d values, reference %d", label, what, len(got), len(want))
			return
		}
		scale := 1.0
		for _, w := range want {
			scale = math.Max(scale, math.Abs(w))
		}
		for i := range want {
			if math.IsNaN(got[i]) || math.Abs(got[i]-want[i]) > rtol*scale {
				t.Errorf("%s: %s[%d] = %.15g, reference %.15g", label, what, i, got[i], want[i])
				return
			}
		}
	}
	close("loss", []float64{fused.loss}, []float64{ref.loss})
	if len(fused.outs) != len(ref.outs) {
		t.Fatalf("%s: %d outputs, reference %d", label, len(fused.outs), len(ref.outs))
	}
	for i := range ref.outs {
		close(fmt.Sprintf("output %d", i), fused.outs[i], ref.outs[i])
	}
	if len(fused.grads) != len(ref.grads) {
		t.Errorf("%s: gradients of %d nodes, reference %d", label, len(fused.grads), len(ref.grads))
	}
	nonzero := false
	for name, want := range ref.grads {
		got, ok := fused.grads[name]
		if !ok {
			t.Errorf("%s: no gradient for %s", label, name)
			continue
		}
		close("d/d"+name, got, want)
		for _, v := range want {
			nonzero = nonzero || v != 0
		}
	}
	if !nonzero {
		t.Errorf("%s: every reference gradient is zero: the comparison proves nothing", label)
	}
}

// lifCase is one LIF layer setting of the parity and gradient tests.
type lifCase struct {
	cfg            LIFConfig
	batch, in      int
	steps          int
	perStep, fused bool
	scale          float64
}

// lifParityGraph: x_t [B, In] → fc (shared Linear) → LIF over T steps with
// one current (x_0 only) or one per step; loss Σ_t probe_t·S_t +
// probe·rate. Outputs: every S_t and the rate.
func lifParityGraph(tc lifCase) parityBuild {
	return func(c *nn.Ctx) (*G.Node, []*G.Node, G.Nodes, error) {
		var xs G.Nodes
		nx := 1
		if tc.perStep {
			nx = tc.steps
		}
		for i := 0; i < nx; i++ {
			xs = append(xs, G.NewTensor(c.Graph(), c.Dtype(), 2, G.WithShape(tc.batch, tc.in), G.WithName(fmt.Sprintf("x%d", i)),
				G.WithValue(nntest.RandInput(int64(11+i), tc.scale, tc.batch, tc.in))))
		}
		fc := nn.Linear{In: tc.in, Out: tc.cfg.Units}
		var currents []*G.Node
		for _, x := range xs {
			cur, err := fc.Forward(c.Sub("fc"), x)
			if err != nil {
				return nil, nil, nil, err
			}
			currents = append(currents, cur)
		}
		lif, err := NewLIF(tc.cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		var spikes []*G.Node
		var rate *G.Node
		if tc.fused {
			cur := currents[0]
			if tc.perStep {
				var rows []*G.Node
				for _, cu := range currents {
					r, err := G.Reshape(cu, []int{1, tc.batch, tc.cfg.Units})
					if err != nil {
						return nil, nil, nil, err
					}
					rows = append(rows, r)
				}
				if cur, err = nn.Concat(0, rows...); err != nil {
					return nil, nil, nil, err
				}
			}
			out, err := lif.ForwardFused(c.Sub("lif"), cur, tc.steps)
			if err != nil {
				return nil, nil, nil, err
			}
			if spikes, err = seqSteps(out.Spikes); err != nil {
				return nil, nil, nil, err
			}
			rate = out.Rate
		} else {
			out, err := lif.Forward(c.Sub("lif"), currents, tc.steps)
			if err != nil {
				return nil, nil, nil, err
			}
			spikes, rate = out.Spikes, out.Rate
		}
		outs := append(append([]*G.Node{}, spikes...), rate)
		loss, err := sumProbes(outs, 20)
		return loss, outs, xs, err
	}
}

// sumProbes is Σ_i WeightedSum(nodes[i], seed+i).
func sumProbes(nodes []*G.Node, seed int64) (*G.Node, error) {
	var loss *G.Node
	for i, n := range nodes {
		l, err := nntest.WeightedSum(n, seed+int64(i))
		if err != nil {
			return nil, err
		}
		if loss == nil {
			loss = l
		} else if loss, err = G.Add(loss, l); err != nil {
			return nil, err
		}
	}
	return loss, nil
}

func TestLIFFusedMatchesUnrolled(t *testing.T) {
	// Every reset mode × every surrogate (Heaviside and Smooth forward, and
	// Off) × fixed or learnable β/θ/graded × direct or per-step currents:
	// spikes, rate and every gradient equal the unrolled reference graph.
	// Inputs of scale 2 make neurons fire and reset at several steps.
	sur := []nn.Surrogate{{Off: true}}
	for _, kind := range []string{"fast_sigmoid", "atan", "sigmoid", "triangular", "straight_through"} {
		sur = append(sur, nn.Surrogate{Kind: kind, Slope: 2}, nn.Surrogate{Kind: kind, Slope: 3, Scale: 0.7, Smooth: true})
	}
	for _, reset := range []string{ResetSubtract, ResetZero, ResetNone} {
		for si, s := range sur {
			for _, learn := range []bool{false, true} {
				for _, perStep := range []bool{false, true} {
					cfg := LIFConfig{Units: 5, Beta: 0.8, Threshold: 0.7, Reset: reset, Surrogate: s,
						LearnBeta: learn, LearnThreshold: learn, GradedSpikes: learn}
					tc := lifCase{cfg: cfg, batch: 3, in: 4, steps: 4, perStep: perStep, scale: 2}
					label := fmt.Sprintf("%s/sur%d/learn=%t/perStep=%t", reset, si, learn, perStep)
					if s.Off && !learn {
						continue // nothing upstream learns and nothing else is learnable
					}
					lifParity(t, label, tc)
				}
			}
		}
	}
}

func TestLIFFusedParallelMatchesUnrolled(t *testing.T) {
	// Large enough (B·N·T ≥ 2^14) for the op to split the batch over the
	// cores and reduce per-worker parameter gradients.
	cfg := LIFConfig{Units: 64, Beta: 0.9, Threshold: 0.5, LearnBeta: true, LearnThreshold: true, GradedSpikes: true,
		Surrogate: nn.Surrogate{Kind: "atan"}}
	lifParity(t, "parallel", lifCase{cfg: cfg, batch: 64, in: 6, steps: 4, scale: 1})
}

func lifParity(t *testing.T, label string, tc lifCase) {
	t.Helper()
	store, err := nn.NewStore(tensor.Float64, 3)
	if err != nil {
		t.Fatal(err)
	}
	if tc.cfg.LearnBeta {
		// One β outside [0, 1] checks the clamp's zero gradient.
		tc2 := tc
		tc2.fused = false
		runParity(t, store, false, lifParityGraph(tc2))
		if b := store.Lookup("lif.beta"); b != nil {
			b.Value.Data().([]float64)[1] = 1.2
		}
	}
	ref := runParity(t, store, false, lifParityGraph(tc))
	tc.fused = true
	fused := runParity(t, store, false, lifParityGraph(tc))
	assertParity(t, label, fused, ref, 1e-9)
}

func TestLIFFusedGradcheck(t *testing.T) {
	// The fused op alone against finite differences (Smooth surrogate, so
	// the forward is differentiable; scale-2 inputs keep membranes ≫ 1e-6
	// away from the detached reset's step).
	for _, reset := range []string{ResetSubtract, ResetZero, ResetNone} {
		for _, perStep := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/perStep=%t", reset, perStep), func(t *testing.T) {
				cfg := LIFConfig{Units: 5, Beta: 0.8, Threshold: 0.7, Reset: reset, LearnBeta: true, LearnThreshold: true,
					GradedSpikes: true, Surrogate: nn.Surrogate{Kind: "fast_sigmoid", Slope: 2, Smooth: true}}
				build := lifParityGraph(lifCase{cfg: cfg, batch: 3, in: 4, steps: 4, perStep: perStep, fused: true, scale: 2})
				nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
					loss, _, in, err := build(c)
					return loss, in, err
				}, nntest.Options{Entries: 4, MinChecked: 5})
			})
		}
	}
}

func TestLIFFusedErrors(t *testing.T) {
	lif, err := NewLIF(LIFConfig{Units: 3})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCtx(t, false).Sub("audio").Sub("lif1")
	for _, tc := range []struct {
		shape []int
		steps int
		want  string
	}{
		{[]int{2, 4}, 3, "audio.lif1: lif: input current has shape (2, 4), want [batch, 3] or [3, batch, 3]"},
		{[]int{4, 2, 3}, 3, "input current has shape (4, 2, 3)"},
		{[]int{2, 3}, 0, "steps (num_spike_steps) must be ≥ 1, got 0"},
	} {
		x := c.Input(fmt.Sprintf("x%d", len(tc.shape)*10+tc.steps), tc.shape...)
		if _, err := lif.ForwardFused(c, x, tc.steps); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("shape %v, T=%d: %v, want %q", tc.shape, tc.steps, err, tc.want)
		}
	}
}
