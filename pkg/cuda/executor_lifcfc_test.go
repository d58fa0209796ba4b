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

// seqCase is a fused LIF or CfC variant: build makes its graph (called
// twice: the reference and the device copy), fams are the op families
// that must run on the device and kernels the kernels they must launch
// (checked on the fake device), check an optional extra test of the
// reference run.
type seqCase struct {
	name    string
	build   func(t *testing.T) seqGraph
	fams    []string
	kernels []string
	check   func(t *testing.T, ref seqGraph)
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
// range so that every neuron differs, and β[0] = −0.1, β[1] = 1.1, where
// the clamp stops the gradient.
func lifGraph(t *testing.T, cfg model.LIFConfig, steps, batch int, perStep bool) seqGraph {
	t.Helper()
	lif, err := model.NewLIF(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, c := trainCtx(t)
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
					v[0], v[1] = -0.1, 1.1
				}
			}
		}
	}
	if _, err := G.Grad(loss, learn...); err != nil {
		t.Fatal(err)
	}
	return seqGraph{g: g, loss: loss, out: out.Spikes, learn: learn}
}

// lifSeqCases are the fused LIF variants: fixed, learnable β and/or θ and
// graded spikes under every reset mode, both current layouts and several
// surrogates (7 neurons, 6 steps, batch 3).
func lifSeqCases() []seqCase {
	cases := []struct {
		name                  string
		reset                 string
		learnBeta, learnTheta bool
		graded, perStep       bool
		sur                   string
	}{
		{"fixed", model.ResetSubtract, false, false, false, false, ""},
		{"beta subtract", model.ResetSubtract, true, false, false, false, ""},
		{"beta zero", model.ResetZero, true, false, false, false, ""},
		{"beta none per step", model.ResetNone, true, false, false, true, ""},
		{"theta subtract atan", model.ResetSubtract, false, true, false, false, nn.SurrogateAtan},
		{"theta zero per step", model.ResetZero, false, true, false, true, ""},
		{"theta none", model.ResetNone, false, true, false, false, ""},
		{"beta theta subtract per step", model.ResetSubtract, true, true, false, true, ""},
		{"beta theta zero sigmoid", model.ResetZero, true, true, false, false, nn.SurrogateSigmoid},
		{"graded subtract", model.ResetSubtract, false, false, true, false, ""},
		{"graded zero", model.ResetZero, false, false, true, false, ""},
		{"graded none triangular per step", model.ResetNone, false, false, true, true, nn.SurrogateTriangular},
		{"all subtract", model.ResetSubtract, true, true, true, false, ""},
		{"all zero per step", model.ResetZero, true, true, true, true, ""},
		{"all none atan", model.ResetNone, true, true, true, false, nn.SurrogateAtan},
	}
	out := make([]seqCase, len(cases))
	for i, tc := range cases {
		kernels := []string{"lsf_lif_seq_forward", "lsf_lif_seq_backward"}
		if tc.learnBeta || tc.learnTheta || tc.graded {
			kernels = append(kernels, "lsf_sum_rows")
		}
		out[i] = seqCase{name: tc.name, fams: []string{"LIFSeq", "LIFSeq/grad"}, kernels: kernels, check: checkLIFExercised,
			build: func(t *testing.T) seqGraph {
				sur, err := nn.Surrogate{Kind: tc.sur}.Resolved()
				if err != nil {
					t.Fatal(err)
				}
				cfg := model.LIFConfig{Units: 7, Beta: 0.85, Threshold: 0.9, Reset: tc.reset, LearnBeta: tc.learnBeta,
					LearnThreshold: tc.learnTheta, GradedSpikes: tc.graded, Surrogate: sur}
				return lifGraph(t, cfg, 6, 3, tc.perStep)
			}}
	}
	return out
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
	grads := gradsOf(t, ref.learn)
	for i, n := range ref.learn {
		if d := grads[i]; strings.HasSuffix(n.Name(), "beta") && (d[0] != 0 || d[1] != 0 || !slices.ContainsFunc(d[2:], func(v float32) bool { return v != 0 })) {
			t.Errorf("dβ %v: want 0 for the clamped β[0], β[1] and some gradient elsewhere", d)
		}
	}
}

// cfcGraph is loss = Σ probe ⊙ [h_1…h_T] over one fused CfC sequence op
// (model.CfC.ForwardFused) on a random input, float32, store seeded 2;
// the output compared is the states.
func cfcGraph(t *testing.T, cfg model.CfCConfig, steps, batch int) seqGraph {
	t.Helper()
	cell, err := model.NewCfC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, c := trainCtx(t)
	rng := rand.New(rand.NewSource(8))
	random := func(shape ...int) *tensor.Dense {
		v := make([]float32, prod(shape))
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
	}
	x := G.NewTensor(g, tensor.Float32, 3, G.WithShape(steps, batch, cfg.InputSize), G.WithName("x"))
	out, err := cell.ForwardFused(c, x, true)
	if err != nil {
		t.Fatal(err)
	}
	probe := G.NewConstant(random(steps, batch, cfg.Units), G.WithName("probe"))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(out.States, probe))))
	learn := c.Learnables()
	if _, err := G.Grad(loss, learn...); err != nil {
		t.Fatal(err)
	}
	if err := G.Let(x, random(steps, batch, cfg.InputSize)); err != nil {
		t.Fatal(err)
	}
	return seqGraph{g: g, loss: loss, out: out.States, learn: learn}
}

// cfcSeqCases are the fused CfC variants: every mode (default, no_gate,
// pure) and backbone activation, one to three backbone layers, several
// elapsed times and a single step (input 5, 6 units, backbone 7, batch
// 3).
func cfcSeqCases() []seqCase {
	base := model.CfCConfig{InputSize: 5, Units: 6, BackboneUnits: 7, BackboneLayers: 1, BackboneActivation: "lecun_tanh", Mode: model.CfCDefault, ElapsedTime: 1}
	cases := []struct {
		name  string
		edit  func(*model.CfCConfig)
		steps int
	}{
		{"default", func(*model.CfCConfig) {}, 5},
		{"two layers tanh", func(c *model.CfCConfig) { c.BackboneLayers, c.BackboneActivation = 2, "tanh" }, 4},
		{"three layers relu ts=0.5", func(c *model.CfCConfig) { c.BackboneLayers, c.BackboneActivation, c.ElapsedTime = 3, "relu", 0.5 }, 3},
		{"no_gate sigmoid", func(c *model.CfCConfig) { c.Mode, c.BackboneActivation = model.CfCNoGate, "sigmoid" }, 4},
		{"one step identity", func(c *model.CfCConfig) { c.BackboneActivation = "identity" }, 1},
		{"silu", func(c *model.CfCConfig) { c.BackboneActivation = "silu" }, 3},
		{"two layers silu no_gate", func(c *model.CfCConfig) { c.BackboneLayers, c.BackboneActivation, c.Mode = 2, "silu", model.CfCNoGate }, 4},
		{"gelu", func(c *model.CfCConfig) { c.BackboneActivation = "gelu" }, 4},
		{"three layers gelu no_gate ts=0.7", func(c *model.CfCConfig) {
			c.BackboneLayers, c.BackboneActivation, c.Mode, c.ElapsedTime = 3, "gelu", model.CfCNoGate, 0.7
		}, 3},
		{"pure", func(c *model.CfCConfig) { c.Mode = model.CfCPure }, 3},
		{"pure two layers tanh ts=0.5", func(c *model.CfCConfig) {
			c.Mode, c.BackboneLayers, c.BackboneActivation, c.ElapsedTime = model.CfCPure, 2, "tanh", 0.5
		}, 4},
		{"pure silu", func(c *model.CfCConfig) { c.Mode, c.BackboneActivation = model.CfCPure, "silu" }, 3},
		{"pure two layers gelu", func(c *model.CfCConfig) { c.Mode, c.BackboneLayers, c.BackboneActivation = model.CfCPure, 2, "gelu" }, 5},
		{"pure one step", func(c *model.CfCConfig) { c.Mode = model.CfCPure }, 1},
	}
	out := make([]seqCase, len(cases))
	for i, tc := range cases {
		cfg := base
		tc.edit(&cfg)
		out[i] = seqCase{name: tc.name, fams: []string{"CfCSeq", "CfCSeq/grad"},
			kernels: []string{"lsf_cfc_bias_act", "lsf_cfc_heads", "lsf_cfc_heads_grad", "lsf_cfc_act_grad", "lsf_sum_rows"},
			build:   func(t *testing.T) seqGraph { return cfcGraph(t, cfg, tc.steps, 3) }}
	}
	return out
}

// checkSeqOnDevice runs the case's graph on vm.Machine and on a Machine
// over sess (nil: a fake device, whose launches are then checked too):
// the output, the loss and every gradient agree within tol of each
// tensor's largest entry, and no step of the case's families runs on the
// host. It returns the worst error as a fraction of its allowance.
func checkSeqOnDevice(t *testing.T, sess *Session, sc seqCase, tol float64) float64 {
	t.Helper()
	ref, got := sc.build(t), sc.build(t)
	cpu, err := vm.New(ref.g, ref.learn)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	var dev *fakeDevice
	if sess == nil {
		dev = newFakeDevice()
		sess = newSession(dev, nil)
	}
	m, err := NewMachine(got.g, got.learn, WithSession(sess), Fetch(got.loss, got.out))
	if err != nil {
		t.Fatal(err)
	}
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
		if slices.Contains(sc.fams, s.Family) && s.Rule.Kind == Host {
			t.Errorf("%s planned on the host: %s", s.Family, s.Rule.Note)
		}
	}
	for _, f := range sc.fams {
		if slices.Contains(m.HostSteps(), f) {
			t.Errorf("%s ran on the host (host steps %v)", f, m.HostSteps())
		}
	}
	for _, k := range sc.kernels {
		if dev != nil && dev.launches[k] == 0 {
			t.Errorf("kernel %s never launched (launches %v)", k, dev.launches)
		}
	}
	if sc.check != nil {
		sc.check(t, ref)
	}
	return worst
}

// runSeqCases runs every case through checkSeqOnDevice as a subtest and
// logs the worst error.
func runSeqCases(t *testing.T, sess *Session, cases []seqCase, tol float64) {
	worst := 0.0
	for _, sc := range cases {
		t.Run(sc.name, func(t *testing.T) {
			w := checkSeqOnDevice(t, sess, sc, tol)
			worst = max(worst, w)
			t.Logf("worst error %.3g of the allowance", w)
		})
	}
	t.Logf("worst error over the variants %.3g of the allowance (%g of each tensor's largest entry)", worst, tol)
}

// TestMachineLIFVariants runs the fused LIF op with learnable β and/or θ
// and graded spikes (lifSeqCases), forward and backward on the fake
// device against vm.Machine: spikes, loss and the gradients of the
// current, β, θ and the graded factor agree to 1e-5 of each tensor's
// largest entry, and neither LIFSeq nor its backward runs on the host.
func TestMachineLIFVariants(t *testing.T) {
	runSeqCases(t, nil, lifSeqCases(), 1e-5)
}

// TestMachineCfCVariants runs the fused CfC op's GPU lowering (per-step
// GEMMs and the kernels/cfc.cu kernels, on the fake device) against
// vm.Machine for cfcSeqCases: states, loss and every gradient (pure
// mode's w_τ and A included) agree to 1e-5 of each tensor's largest
// entry, and neither the op nor its backward runs on the host.
func TestMachineCfCVariants(t *testing.T) {
	runSeqCases(t, nil, cfcSeqCases(), 1e-5)
}

// trainCtx is a new graph with a training context on a float32 store
// seeded 2.
func trainCtx(t *testing.T) (*G.ExprGraph, *nn.Ctx) {
	t.Helper()
	store, err := nn.NewStore(tensor.Float32, 2)
	if err != nil {
		t.Fatal(err)
	}
	g := G.NewGraph()
	return g, nn.NewCtx(g, store, nn.CtxOptions{Train: true})
}
