package nn_test

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

func TestDropoutEvalIsIdentity(t *testing.T) {
	for _, tc := range []struct {
		train bool
		p     float64
	}{{false, 0.5}, {true, 0}} {
		store, _ := nn.NewStore(tensor.Float64, 1)
		c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{Train: tc.train})
		x := coreInput(c, "x", nil, 3, 4)
		y, err := nn.Dropout{P: tc.p}.Forward(c, x)
		if err != nil {
			t.Fatal(err)
		}
		if y != x {
			t.Errorf("train=%v p=%g: dropout added a node, want x itself", tc.train, tc.p)
		}
	}
}

// dropoutRuns builds x (all ones, n×m) → dropout(P) in a training graph
// and returns the outputs of `runs` runs of one machine, together with the
// gradient of Σ y·r with respect to x of each run.
func dropoutRuns(t *testing.T, dt tensor.Dtype, p float64, fixed bool, n, m, runs int) (outs, grads [][]float64) {
	t.Helper()
	store, _ := nn.NewStore(dt, 1)
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{Train: true, FixedNoise: fixed, NoiseSeed: 5})
	x := coreInput(c, "x", coreSeq(n*m, func(int) float64 { return 1 }), n, m)
	y, err := nn.Dropout{P: p}.Forward(c, x)
	if err != nil {
		t.Fatal(err)
	}
	// Σ y: the gradient of x is then the mask scaled by 1/(1−p).
	l, err := G.Sum(y)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := G.Grad(l, x); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(x))
	defer vm.Close()
	for r := 0; r < runs; r++ {
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, coreValues(t, y.Value()))
		gv, err := x.Grad()
		if err != nil {
			t.Fatal(err)
		}
		grads = append(grads, coreValues(t, gv))
		vm.Reset()
	}
	return outs, grads
}

func TestDropoutTrainMask(t *testing.T) {
	// 20000 Bernoulli(0.3) drops: the dropped fraction has standard
	// deviation √(0.3·0.7/20000) ≈ 0.0032, so ±0.02 is over 6σ.
	const p = 0.3
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		outs, grads := dropoutRuns(t, dt, p, false, 200, 100, 2)
		for r, y := range outs {
			zeros := 0
			for i, v := range y {
				switch {
				case v == 0:
					zeros++
				case math.Abs(v-1/(1-p)) > 1e-6:
					t.Fatalf("run %d: kept value %g, want 1/(1−p) = %g", r, v, 1/(1-p))
				}
				// The backward uses the same mask as this run's forward
				// (the gradients accumulate across runs with dual values:
				// compare increments).
				gi := grads[r][i]
				if r > 0 {
					gi -= grads[r-1][i]
				}
				if math.Abs(gi-v) > 1e-6 {
					t.Fatalf("run %d element %d: gradient %g but output %g", r, i, gi, v)
				}
			}
			if frac := float64(zeros) / float64(len(y)); math.Abs(frac-p) > 0.02 {
				t.Errorf("run %d (%v): dropped fraction %.4f, want %.2f ± 0.02", r, dt, frac, p)
			}
		}
	}
}

func TestDropoutMasksPerRun(t *testing.T) {
	outs, _ := dropoutRuns(t, tensor.Float64, 0.5, false, 10, 10, 2)
	if coreSame(outs[0], outs[1]) {
		t.Error("two runs without FixedNoise drew the same mask")
	}
	outs, _ = dropoutRuns(t, tensor.Float64, 0.5, true, 10, 10, 3)
	if !coreSame(outs[0], outs[1]) || !coreSame(outs[1], outs[2]) {
		t.Error("runs with FixedNoise drew different masks")
	}
	// Two dropout ops of one graph draw different masks (distinct seeds).
	res := coreMustRun(t, tensor.Float64, nn.CtxOptions{Train: true, FixedNoise: true}, func(c *nn.Ctx) (coreGraph, error) {
		x := coreInput(c, "x", coreSeq(100, func(int) float64 { return 1 }), 100)
		a, err := nn.Dropout{P: 0.5}.Forward(c, x)
		if err != nil {
			return coreGraph{}, err
		}
		b, err := nn.Dropout{P: 0.5}.Forward(c, x)
		return coreGraph{outs: G.Nodes{a, b}}, err
	})
	if coreSame(res.vals[0], res.vals[1]) {
		t.Error("two dropout ops on the same input drew the same mask")
	}
}

func coreSame(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestDropoutGradients(t *testing.T) {
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		x := coreInput(c, "x", nntest.RandInput(21, 1, 4, 6).Data().([]float64), 4, 6)
		h, err := nn.Linear{In: 6, Out: 5}.Forward(c.Sub("fc"), x)
		if err != nil {
			return nil, nil, err
		}
		y, err := nn.Dropout{P: 0.4}.Forward(c, h)
		if err != nil {
			return nil, nil, err
		}
		l, err := nntest.WeightedSum(y, 22)
		return l, G.Nodes{x}, err
	}, nntest.Options{Train: true, Entries: 24, MinChecked: 3})
}

func TestDropoutErrors(t *testing.T) {
	store, _ := nn.NewStore(tensor.Float64, 1)
	c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{Train: true}).Sub("enc")
	x := coreInput(c, "x", nil, 2, 2)
	for _, p := range []float64{1, -0.1, math.NaN()} {
		_, err := nn.Dropout{P: p}.Forward(c, x)
		coreErrContains(t, err, "enc", "[0, 1)")
	}
}
