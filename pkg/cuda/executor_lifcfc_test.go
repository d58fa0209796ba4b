package cuda

import (
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/vm"
)

// seqGraph is one fused-sequence test graph: loss = Σ probe ⊙ out, the
// output compared between machines and the learnables.
type seqGraph struct {
	g     *G.ExprGraph
	loss  *G.Node
	out   *G.Node
	learn G.Nodes
}

// randomDense is a [shape] tensor of values lo + (hi−lo)·U[0, 1) from rng.
func randomDense(rng *rand.Rand, lo, hi float64, shape ...int) *tensor.Dense {
	v := make([]float32, prod(shape))
	for i := range v {
		v[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}

// lifGraph is loss = Σ probe ⊙ S over one fused LIF sequence op
// (model.LIF.ForwardFused, float32) whose current [B, N] (or [T, B, N]
// with perStep) is itself a learnable, so its gradient is checked too.
// Learnable β, θ and graded factors get values drawn around their typical
// range (β partly outside [0, 1], where the clamp stops its gradient) so
// that every neuron differs.
func lifGraph(t *testing.T, cfg model.LIFConfig, steps, batch int, perStep bool) seqGraph {
	t.Helper()
	lif, err := model.NewLIF(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := nn.NewStore(tensor.Float32, 2)
	if err != nil {
		t.Fatal(err)
	}
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{Train: true})
	shape := []int{batch, cfg.Units}
	if perStep {
		shape = []int{steps, batch, cfg.Units}
	}
	cur, err := c.Param("current", shape, nn.Uniform(-0.4, 1.3))
	if err != nil {
		t.Fatal(err)
	}
	out, err := lif.ForwardFused(c, cur, steps)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(9))
	probe := G.NewConstant(randomDense(rng, -1, 1, steps, batch, cfg.Units), G.WithName("probe"))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(out.Spikes, probe))))
	learn := c.Learnables()
	ranges := map[string][2]float64{"beta": {-0.15, 1.15}, "threshold": {0.5, 1.3}, "graded_spikes": {0.4, 1.6}}
	for _, n := range learn {
		for name, r := range ranges {
			if strings.HasSuffix(n.Name(), name) {
				v := nn.Slice[float32](n.Value().(*tensor.Dense))
				copy(v, nn.Slice[float32](randomDense(rng, r[0], r[1], cfg.Units)))
				if name == "beta" {
					v[0], v[1] = -0.1, 1.1 // clamped: no gradient
				}
			}
		}
	}
	if _, err := G.Grad(loss, learn...); err != nil {
		t.Fatal(err)
	}
	return seqGraph{g: g, loss: loss, out: out.Spikes, learn: learn}
}

// checkSeqOnDevice runs ref on vm.Machine and got on a Machine over the
// fake device: the output, the loss and every gradient agree within tol
// of each tensor's largest entry, no step of the families fams runs on
// the host, and every kernel of kernels was launched. It returns the worst
// error as a fraction of its allowance.
func checkSeqOnDevice(t *testing.T, ref, got seqGraph, tol float64, fams, kernels []string) float64 {
	t.Helper()
	cpu, err := vm.New(ref.g, ref.learn)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	m, dev := fakeMachine(t, got.g, got.learn, Fetch(got.loss, got.out))
	defer m.Close()
	runBoth(t, cpu, m)
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	if a, b := ref.loss.Value().Data().(float32), got.loss.Value().Data().(float32); math.Abs(float64(a-b)) > tol*math.Abs(float64(a))+1e-6 {
		t.Errorf("loss %g, vm.Machine %g", b, a)
	}
	worst := closeTo(t, "output", G.Nodes{ref.out}, valuesOf(G.Nodes{got.out}), valuesOf(G.Nodes{ref.out}), tol)
	worst = max(worst, closeTo(t, "gradient", ref.learn, gradsOf(t, got.learn), gradsOf(t, ref.learn), tol))
	for _, s := range m.Plan().Steps {
		if slices.Contains(fams, s.Family) && s.Rule.Kind == Host {
			t.Errorf("%s planned on the host: %s", s.Family, s.Rule.Note)
		}
	}
	for _, f := range fams {
		if slices.Contains(m.HostSteps(), f) {
			t.Errorf("%s ran on the host (host steps %v)", f, m.HostSteps())
		}
	}
	for _, k := range kernels {
		if dev.launches[k] == 0 {
			t.Errorf("kernel %s never launched (launches %v)", k, dev.launches)
		}
	}
	return worst
}

// TestMachineLIFVariants runs the fused LIF op with learnable β and/or θ
// and graded spikes, under every reset mode, both current layouts and
// several surrogates, forward and backward on the fake device against
// vm.Machine: spikes, loss and the gradients of the current, β, θ and the
// graded factor agree to 1e-5 of each tensor's largest entry, and neither
// LIFSeq nor its backward runs on the host.
func TestMachineLIFVariants(t *testing.T) {
	cases := []struct {
		name                  string
		reset                 string
		learnBeta, learnTheta bool
		graded, perStep       bool
		sur                   nn.Surrogate
	}{
		{"fixed", model.ResetSubtract, false, false, false, false, nn.Surrogate{}},
		{"beta subtract", model.ResetSubtract, true, false, false, false, nn.Surrogate{}},
		{"beta zero", model.ResetZero, true, false, false, false, nn.Surrogate{}},
		{"beta none", model.ResetNone, true, false, false, true, nn.Surrogate{}},
		{"theta subtract", model.ResetSubtract, false, true, false, false, nn.Surrogate{Kind: nn.SurrogateAtan}},
		{"theta zero", model.ResetZero, false, true, false, true, nn.Surrogate{}},
		{"theta none", model.ResetNone, false, true, false, false, nn.Surrogate{}},
		{"beta theta subtract", model.ResetSubtract, true, true, false, true, nn.Surrogate{}},
		{"beta theta zero", model.ResetZero, true, true, false, false, nn.Surrogate{Kind: nn.SurrogateSigmoid}},
		{"graded subtract", model.ResetSubtract, false, false, true, false, nn.Surrogate{}},
		{"graded none", model.ResetNone, false, false, true, true, nn.Surrogate{Kind: nn.SurrogateTriangular}},
		{"all subtract", model.ResetSubtract, true, true, true, false, nn.Surrogate{}},
		{"all zero per step", model.ResetZero, true, true, true, true, nn.Surrogate{}},
		{"all none", model.ResetNone, true, true, true, false, nn.Surrogate{Kind: nn.SurrogateAtan}},
	}
	worst := 0.0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sur, err := tc.sur.Resolved()
			if err != nil {
				t.Fatal(err)
			}
			cfg := model.LIFConfig{Units: 7, Beta: 0.85, Threshold: 0.9, Reset: tc.reset, LearnBeta: tc.learnBeta,
				LearnThreshold: tc.learnTheta, GradedSpikes: tc.graded, Surrogate: sur}
			kernels := []string{"lsf_lif_seq_forward", "lsf_lif_seq_backward"}
			if tc.learnBeta || tc.learnTheta || tc.graded {
				kernels = append(kernels, "lsf_sum_rows")
			}
			ref, got := lifGraph(t, cfg, 6, 3, tc.perStep), lifGraph(t, cfg, 6, 3, tc.perStep)
			w := checkSeqOnDevice(t, ref, got, 1e-5, []string{"LIFSeq", "LIFSeq/grad"}, kernels)
			checkLIFExercised(t, ref)
			worst = max(worst, w)
			t.Logf("worst error %.3g of the allowance", w)
		})
	}
	t.Logf("worst error over the variants %.3g of the allowance (1e-5 of the largest entry)", worst)
}

// checkLIFExercised fails unless the reference run of a lifGraph fired
// some neurons and not others, and (with a learnable β) gave the two
// clamped β no gradient and the others some.
func checkLIFExercised(t *testing.T, ref seqGraph) {
	t.Helper()
	spikes := valuesOf(G.Nodes{ref.out})[0]
	fired := 0
	for _, v := range spikes {
		if v != 0 {
			fired++
		}
	}
	if fired < len(spikes)/10 || fired > len(spikes)*9/10 {
		t.Errorf("%d of %d spikes fired: want a mix", fired, len(spikes))
	}
	for i, n := range ref.learn {
		if !strings.HasSuffix(n.Name(), "beta") {
			continue
		}
		d := gradsOf(t, ref.learn)[i]
		if d[0] != 0 || d[1] != 0 || !slices.ContainsFunc(d[2:], func(v float32) bool { return v != 0 }) {
			t.Errorf("dβ %v: want 0 for the clamped β[0], β[1] and some gradient elsewhere", d)
		}
	}
}
