package model_test

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/train"
)

// trainEncoders trains two bench-small-like modality encoders (one LIF
// layer, T = 8, CfC default mode with a lecun_tanh backbone) joined by a
// linear head, with cross-entropy and Adam, on a synthetic 4-class task
// (class prototypes plus noise in both modalities), and returns the loss
// of every step. Everything is seeded: two runs differ only by fused.
func trainEncoders(t *testing.T, dt tensor.Dtype, fused bool, steps int) []float64 {
	t.Helper()
	const batch, in, classes = 16, 12, 4
	store, err := nn.NewStore(dt, 1)
	if err != nil {
		t.Fatal(err)
	}
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{Train: true, NoiseSeed: 1})
	var logits *G.Node
	xs := map[string]*G.Node{}
	for _, name := range []string{"vision", "text"} {
		cfg := model.EncoderConfig{Name: name, InputDim: in, EncoderDim: 24, SpikingUnits: 16, SpikingLayers: 1, LiquidUnits: 16,
			NumSpikeSteps: 8, BackboneUnits: 16, BackboneLayers: 1, Fused: fused}
		enc, err := model.NewModalityEncoder(cfg)
		if err != nil {
			t.Fatal(err)
		}
		xs[name] = c.Input("input."+name, batch, in)
		out, err := enc.Forward(c.Sub(name), xs[name])
		if err != nil {
			t.Fatal(err)
		}
		l, err := nn.Linear{In: 24, Out: classes}.Forward(c.Sub("head."+name), out.Feature)
		if err != nil {
			t.Fatal(err)
		}
		if logits == nil {
			logits = l
		} else if logits, err = G.Add(logits, l); err != nil {
			t.Fatal(err)
		}
	}
	labels := c.IntInput("labels", batch)
	loss, err := nn.CrossEntropy(logits, labels)
	if err != nil {
		t.Fatal(err)
	}
	params := c.Learnables()
	if _, err := G.Grad(loss, params...); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(params...))
	defer vm.Close()
	opt, err := train.NewAdam(train.AdamConfig{LR: 3e-3})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(2))
	proto := make([]float64, classes*in)
	for i := range proto {
		proto[i] = 2 * rng.NormFloat64()
	}
	var losses []float64
	for step := 0; step < steps; step++ {
		ys := make([]int, batch)
		data := map[string][]float64{}
		for b := range ys {
			ys[b] = rng.Intn(classes)
			for _, name := range []string{"vision", "text"} {
				for j := 0; j < in; j++ {
					data[name] = append(data[name], proto[ys[b]*in+j]+rng.NormFloat64())
				}
			}
		}
		for name, x := range xs {
			if err := G.Let(x, nn.NewDense(dt, []int{batch, in}, data[name])); err != nil {
				t.Fatal(err)
			}
		}
		if err := G.Let(labels, tensor.New(tensor.WithShape(batch), tensor.WithBacking(ys))); err != nil {
			t.Fatal(err)
		}
		if err := vm.RunAll(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		v, err := nn.ScalarValue(loss)
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, v)
		if err := opt.Step(params); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
	}
	return losses
}

func TestFusedTrainingFollowsUnrolled(t *testing.T) {
	// Same seed, same data, same optimiser: the fused encoders' loss curve
	// is the unrolled one's. In float64 the two graphs differ only by
	// summation order (~1e-16), which surrogate-gradient training amplifies
	// until one membrane lands on the other side of θ in one build only
	// (the mechanism measured in TestBenchSmallFusedCurveFollowsUnrolled).
	// Measured: losses equal to 1e-12 through step 37, then a first flip
	// (|Δ| 8.5e-6 at loss 0.02) and at most 2.4e-4 up to step 59; with
	// the Adam update's arithmetic in another (equivalent) order no flip
	// came within the 40 steps. So float64 gets 1e-9 for 30 steps and 1e-3
	// after. In
	// float32 (the training dtype) the first steps agree to rounding; later
	// a membrane within float32 rounding of θ fires in one build and not
	// in the other, after which the runs drift apart by a few per cent
	// (measured: ≤ 0.05 in loss, from 1.4 down to 0.02), so later steps get
	// an absolute bound. Both must learn.
	const steps = 40
	for _, tc := range []struct {
		dt          tensor.Dtype
		strict      int     // steps held to the early bound
		early, late float64 // bounds on |Δloss| for the strict steps and after
	}{{tensor.Float64, 30, 1e-9, 1e-3}, {tensor.Float32, 5, 1e-5, 0.08}} {
		ref := trainEncoders(t, tc.dt, false, steps)
		fused := trainEncoders(t, tc.dt, true, steps)
		worst := 0.0
		for i := range ref {
			d := math.Abs(fused[i] - ref[i])
			worst = math.Max(worst, d)
			tol := tc.late
			if i < tc.strict {
				tol = tc.early
			}
			if math.IsNaN(fused[i]) || d > tol*math.Max(1, math.Abs(ref[i])) {
				t.Errorf("%v step %d: fused loss %.9g, unrolled %.9g", tc.dt, i, fused[i], ref[i])
			}
		}
		first, last := mean(ref[:5]), mean(ref[steps-5:])
		if !(last < 0.3*first) || !(mean(fused[steps-5:]) < 0.3*first) {
			t.Errorf("%v: loss went from %.3f to %.3f (fused %.3f): the task was not learnt, the comparison proves little",
				tc.dt, first, last, mean(fused[steps-5:]))
		}
		t.Logf("%v: loss %.3f → %.3f, largest difference fused/unrolled %.2g", tc.dt, first, last, worst)
	}
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
