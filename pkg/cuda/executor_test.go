package cuda

import (
	"maps"
	"math"
	"math/rand"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/train"
	"github.com/lsfuse/lsfuse/pkg/vm"
)

// fakeMachine builds a Machine on a fresh fake device.
func fakeMachine(t *testing.T, g *G.ExprGraph, learn G.Nodes, opts ...Option) (*Machine, *fakeDevice) {
	t.Helper()
	dev := newFakeDevice()
	m, err := NewMachine(g, learn, append([]Option{WithSession(newSession(dev, nil))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m, dev
}

// pairRun runs bench-small (B=4, T=4) on vm.Machine and on a Machine over
// the fake device for two batches without zeroing (gradients accumulate),
// and returns both graphs and the Machine.
func pairRun(t *testing.T, opts ...Option) (ref, got *trainGraph, m *Machine, dev *fakeDevice) {
	t.Helper()
	ref, got = newBenchSmall(t, 4, 4), newBenchSmall(t, 4, 4)
	cpu, err := vm.New(ref.g, ref.learn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cpu.Close() })
	m, dev = fakeMachine(t, got.g, got.learn, append([]Option{Fetch(got.mg.Loss, got.mg.Output)}, opts...)...)
	t.Cleanup(func() { m.Close() })
	rr, rg := rand.New(rand.NewSource(11)), rand.New(rand.NewSource(11))
	for run := 0; run < 2; run++ {
		ref.bindBenchSmall(t, rr, 2)
		got.bindBenchSmall(t, rg, 2)
		runBoth(t, cpu, m)
		lr, lg := ref.loss(t), got.loss(t)
		if math.Abs(lr-lg) > 2e-5*math.Abs(lr) || lr == 0 {
			t.Fatalf("run %d: Machine loss %.9g, vm.Machine %.9g", run, lg, lr)
		}
	}
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	return ref, got, m, dev
}

// TestMachineHostFallbackMatchesVM runs every op of bench-small through
// the host fallback: the executor's own bookkeeping (buffers, step order,
// inputs, parameters, gradient accumulation over two runs, Sync) must
// reproduce vm.Machine bit for bit.
func TestMachineHostFallbackMatchesVM(t *testing.T) {
	ref, got, m, dev := pairRun(t, hostFallbackOnly())
	want, have := gradsOf(t, ref.learn), gradsOf(t, got.learn)
	for i := range want {
		if !slices.Equal(want[i], have[i]) {
			t.Fatalf("gradient of %s differs from vm.Machine's", ref.learn[i].Name())
		}
	}
	if ref.loss(t) != got.loss(t) {
		t.Errorf("loss %.9g, vm.Machine %.9g", got.loss(t), ref.loss(t))
	}
	if dev.gemms != 0 || len(dev.launches) != 1 || dev.launches["lsf_accum"] == 0 {
		t.Errorf("host-only machine launched %v and %d GEMMs; want lsf_accum only", dev.launches, dev.gemms)
	}
	if n := len(m.HostSteps()); n < 30 {
		t.Errorf("host steps %v: want every family", m.HostSteps())
	}
}

// TestMachineLoweredMatchesVM runs bench-small with every lowering on the
// fake device (Go transcriptions of the kernels): losses and accumulated
// gradients match vm.Machine to float32 rounding, and only the documented
// host families stay on the host.
func TestMachineLoweredMatchesVM(t *testing.T) {
	ref, got, m, dev := pairRun(t)
	worst := closeTo(t, "gradient", ref.learn, gradsOf(t, got.learn), gradsOf(t, ref.learn), 1e-4)
	t.Logf("worst gradient error %.3g of the allowance; launches %v, %d GEMMs", worst, dev.launches, dev.gemms)
	host := m.HostSteps()
	slices.Sort(host)
	want := []string{"modality.TokenWeights"}
	if !slices.Equal(host, want) {
		t.Errorf("host steps %v, want %v", host, want)
	}
	for _, k := range []string{"lsf_cfc_heads", "lsf_cfc_heads_grad", "lsf_cfc_act_grad", "lsf_lif_seq_forward", "lsf_lif_seq_backward", "lsf_im2col2d", "lsf_col2im2d", "lsf_softmax", "lsf_xent_grad", "lsf_layernorm_grad_x"} {
		if dev.launches[k] == 0 {
			t.Errorf("kernel %s never launched", k)
		}
	}
	checkTelemetry(t, m, ref, got)
	out, ok := got.mg.Output.Value().(*tensor.Dense)
	if !ok || out.Shape().TotalSize() != 4*10 {
		t.Fatalf("fetched output %v", got.mg.Output.Value())
	}
	refOut := ref.mg.Output.Value().(*tensor.Dense)
	closeTo(t, "output", G.Nodes{ref.mg.Output}, [][]float32{nn.Slice[float32](out)}, [][]float32{nn.Slice[float32](refOut)}, 1e-5)
}

// TestMachineLoweredMatchesVMOnConfigs runs one training step of every
// shipped configuration (batch 2) on vm.Machine and on the lowered
// Machine over the fake device: the loss and every gradient agree to
// float32 rounding. Families without a lowering run on the host, so this
// checks the lowerings the configurations reach and their mix with host
// steps.
func TestMachineLoweredMatchesVMOnConfigs(t *testing.T) {
	files := configFiles(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			checkTrainingMatchesVM(t, trainingGraph(t, f), trainingGraph(t, f))
		})
	}
}

// checkTelemetry reads the spike statistics of got's encoders from m and
// compares them with those vm.Machine computed for ref: equal.
func checkTelemetry(t *testing.T, m *Machine, ref, got *trainGraph) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(got.mg.Encoders)) {
		stats, want := got.mg.Encoders[name].Stats, ref.mg.Encoders[name].Stats
		if err := m.Read(stats...); err != nil {
			t.Fatal(err)
		}
		for i := range stats {
			g, w := nn.Slice[float32](stats[i].Value().(*tensor.Dense)), nn.Slice[float32](want[i].Value().(*tensor.Dense))
			if !slices.Equal(g, w) {
				t.Errorf("%s spike telemetry %d: %v, vm.Machine %v", name, i, g, w)
			}
		}
	}
}

// checkTrainingMatchesVM runs one training step of two builds of the same
// network on vm.Machine (ref) and on the lowered Machine over the fake
// device (got): the loss, every gradient and the updated running
// statistics agree to float32 rounding, the spike telemetry exactly.
// It returns the machine's host steps.
func checkTrainingMatchesVM(t *testing.T, ref, got *trainGraph) []string {
	t.Helper()
	cpu, err := vm.New(ref.g, ref.learn)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	m, _ := fakeMachine(t, got.g, got.learn, Fetch(got.mg.Loss))
	defer m.Close()
	ref.bindRandom(t, rand.New(rand.NewSource(5)), 1)
	got.bindRandom(t, rand.New(rand.NewSource(5)), 1)
	runBoth(t, cpu, m)
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	if lr, lg := ref.loss(t), got.loss(t); math.Abs(lr-lg) > 1e-5*math.Abs(lr) {
		t.Errorf("loss %.9g, vm.Machine %.9g", lg, lr)
	}
	worst := closeTo(t, "gradient", ref.learn, gradsOf(t, got.learn), gradsOf(t, ref.learn), 1e-4)
	t.Logf("worst gradient error %.3g of the allowance; host steps %v", worst, m.HostSteps())
	checkTelemetry(t, m, ref, got)
	// Buffers the run updates (batch-norm running statistics) reach
	// the host with Sync.
	refBufs, gotBufs := runningStats(ref.g), runningStats(got.g)
	if len(refBufs) != len(gotBufs) {
		t.Fatalf("%d running statistics, vm.Machine's graph %d", len(gotBufs), len(refBufs))
	}
	if len(refBufs) > 0 {
		closeTo(t, "running statistic", refBufs, valuesOf(gotBufs), valuesOf(refBufs), 1e-5)
	}
	return m.HostSteps()
}

// TestMachineEvalMatchesVMOnConfigs runs every configuration's evaluation
// graph (no backward, batch-norm running statistics, no dropout) on
// vm.Machine and on the lowered Machine: losses and outputs agree.
func TestMachineEvalMatchesVMOnConfigs(t *testing.T) {
	files := configFiles(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { checkEvalMatchesVM(t, configNetwork(t, f)) })
	}
}

// checkEvalMatchesVM runs net's evaluation graph on vm.Machine and on the
// lowered Machine over the fake device: losses and outputs agree. It
// returns the machine's host steps.
func checkEvalMatchesVM(t *testing.T, net *model.Network) []string {
	t.Helper()
	ref, got := buildGraph(t, net, 2, 1, false), buildGraph(t, net, 2, 1, false)
	cpu, err := vm.New(ref.g, nil, vm.EvalMode())
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	m, _ := fakeMachine(t, got.g, nil, EvalMode(), Fetch(got.mg.Loss, got.mg.Output))
	defer m.Close()
	ref.bindRandom(t, rand.New(rand.NewSource(6)), 1)
	got.bindRandom(t, rand.New(rand.NewSource(6)), 1)
	runBoth(t, cpu, m)
	if lr, lg := ref.loss(t), got.loss(t); math.Abs(lr-lg) > 1e-5*math.Abs(lr) {
		t.Errorf("loss %.9g, vm.Machine %.9g", lg, lr)
	}
	out := G.Nodes{ref.mg.Output}
	closeTo(t, "output", out, valuesOf(G.Nodes{got.mg.Output}), valuesOf(out), 1e-5)
	t.Logf("host steps %v", m.HostSteps())
	return m.HostSteps()
}

// runningStats lists the batch-norm running statistics of g by name.
func runningStats(g *G.ExprGraph) G.Nodes {
	var out G.Nodes
	for _, n := range g.AllNodes() {
		if n.Op() == nil && strings.Contains(n.Name(), "running_") {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b *G.Node) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// adamGraph is loss = Σ w⊙x (+ Σ v⊙v) for learnables w, v: the gradient of
// w is the bound x.
func adamGraph() (g *G.ExprGraph, x *G.Node, learn G.Nodes) {
	g = G.NewGraph()
	rng := rand.New(rand.NewSource(4))
	val := func(n int) *tensor.Dense {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return tensor.New(tensor.WithShape(n), tensor.WithBacking(v))
	}
	w := G.NewVector(g, tensor.Float32, G.WithShape(6), G.WithName("w"), G.WithValue(val(6)))
	v := G.NewVector(g, tensor.Float32, G.WithShape(3), G.WithName("v"), G.WithValue(val(3)))
	x = G.NewVector(g, tensor.Float32, G.WithShape(6), G.WithName("x"))
	loss := G.Must(G.Add(G.Must(G.Sum(G.Must(G.HadamardProd(w, x)))), G.Must(G.Sum(G.Must(G.Square(v))))))
	learn = G.Nodes{w, v}
	if _, err := G.Grad(loss, learn...); err != nil {
		panic(err)
	}
	return g, x, learn
}

// TestAdamStepMatchesTrainAdam trains the same small graph with
// train.Adam on vm.Machine and with Machine.AdamStep (the lsf_adam kernel,
// fp32 moments) for five steps, with L2 and with decoupled weight decay:
// weights agree to float32 rounding, and gradients are zeroed after each
// step on both.
func TestAdamStepMatchesTrainAdam(t *testing.T) {
	for _, cfg := range []train.AdamConfig{
		{LR: 0.05, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		{LR: 0.05, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.1},
		{LR: 0.05, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Decoupled: true},
	} {
		gr, xr, lr := adamGraph()
		gg, xg, lg := adamGraph()
		cpu, err := vm.New(gr, lr)
		if err != nil {
			t.Fatal(err)
		}
		opt, err := train.NewAdam(cfg)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := fakeMachine(t, gg, lg)
		rng := rand.New(rand.NewSource(9))
		for step := 0; step < 5; step++ {
			v := make([]float32, 6)
			for i := range v {
				v[i] = float32(rng.NormFloat64())
			}
			for _, x := range []*G.Node{xr, xg} {
				if err := G.Let(x, tensor.New(tensor.WithShape(6), tensor.WithBacking(slices.Clone(v)))); err != nil {
					t.Fatal(err)
				}
			}
			runBoth(t, cpu, m)
			if err := opt.Step(lr); err != nil {
				t.Fatal(err)
			}
			if err := m.AdamStep(AdamConfig(cfg)); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Sync(); err != nil {
			t.Fatal(err)
		}
		closeTo(t, "weight", lr, valuesOf(lg), valuesOf(lr), 1e-5)
		for _, g := range gradsOf(t, lg) {
			if slices.ContainsFunc(g, func(v float32) bool { return v != 0 }) {
				t.Errorf("gradients not zeroed after AdamStep: %v", g)
			}
		}
		m.Close()
		cpu.Close()
	}
}

// TestAdamStateRoundTrip saves the device Adam state after two steps and
// restores it, with the weights, into a fresh session: the third step
// then gives the same weights as an uninterrupted run (a resumed
// checkpoint).
func TestAdamStateRoundTrip(t *testing.T) {
	cfg := AdamConfig{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8}
	ga, xa, la := adamGraph()
	gb, xb, lb := adamGraph()
	a, _ := fakeMachine(t, ga, la)
	defer a.Close()
	bind := func(x *G.Node, v float32) {
		if err := G.Let(x, tensor.New(tensor.WithShape(6), tensor.WithBacking([]float32{v, -v, 2 * v, 0, 1, v}))); err != nil {
			t.Fatal(err)
		}
	}
	step := func(m *Machine, x *G.Node, v float32) {
		bind(x, v)
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		if err := m.AdamStep(cfg); err != nil {
			t.Fatal(err)
		}
	}
	step(a, xa, 1)
	step(a, xa, 0.5)
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := range la { // the checkpoint's weights
		copy(nn.Slice[float32](lb[i].Value().(*tensor.Dense)), nn.Slice[float32](la[i].Value().(*tensor.Dense)))
	}
	b, _ := fakeMachine(t, gb, lb)
	defer b.Close()
	for i, w := range la {
		mom, vel, n, err := a.AdamState(w)
		if err != nil || n != 2 {
			t.Fatalf("AdamState(%s): step %d, %v", w.Name(), n, err)
		}
		if err := b.SetAdamState(lb[i], mom, vel, n); err != nil {
			t.Fatal(err)
		}
	}
	step(a, xa, 2)
	step(b, xb, 2)
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := range la {
		if got, want := valuesOf(lb)[i], valuesOf(la)[i]; !slices.Equal(got, want) {
			t.Errorf("%s after a resumed step: %v, uninterrupted %v", la[i].Name(), got, want)
		}
	}
	if err := b.SetAdamState(lb[0], []float32{1}, nil, 1); err == nil {
		t.Error("SetAdamState accepted moments of the wrong length")
	}
}

// TestMachineGradientControls checks ZeroGrads, ScaleGrads and
// UploadGrads against the accumulation contract: two runs give twice one
// run's gradient, ScaleGrads(0.5) halves it, ZeroGrads restarts the sum,
// and host edits reach the device through UploadGrads.
func TestMachineGradientControls(t *testing.T) {
	g, x, learn := adamGraph()
	m, _ := fakeMachine(t, g, learn)
	defer m.Close()
	if err := G.Let(x, tensor.New(tensor.WithShape(6), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6}))); err != nil {
		t.Fatal(err)
	}
	w := learn[0]
	grad := func() []float32 {
		if err := m.Sync(); err != nil {
			t.Fatal(err)
		}
		return gradsOf(t, G.Nodes{w})[0]
	}
	for range 2 {
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
	if got := grad(); got[5] != 12 {
		t.Fatalf("two runs: dw = %v, want 2·x", got)
	}
	if err := m.ScaleGrads(0.5, w); err != nil {
		t.Fatal(err)
	}
	if got := grad(); got[5] != 6 {
		t.Fatalf("after ScaleGrads(0.5): %v, want x", got)
	}
	if err := m.ZeroGrads(); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	if got := grad(); got[0] != 1 {
		t.Fatalf("after ZeroGrads and one run: %v, want x", got)
	}
	gv, _ := w.Grad()
	nn.Slice[float32](gv.(*tensor.Dense))[0] = 100
	if err := m.UploadGrads(); err != nil {
		t.Fatal(err)
	}
	if got := grad(); got[0] != 100 {
		t.Fatalf("after UploadGrads: %v, want the host edit", got)
	}
}

// TestMachineSharesParameters builds evaluation machines over a graph
// bound to the training graph's weight tensor, one before and one after
// the training machine: an update made by AdamStep is seen by both without
// a host round trip (the first copies on the device, the second aliases
// the buffer), and Session.Download brings it to the host.
func TestMachineSharesParameters(t *testing.T) {
	g, x, learn := adamGraph()
	dev := newFakeDevice()
	sess := newSession(dev, nil)
	// y = Σ w over the same host tensor as the training graph's w.
	evalGraph := func() (*Machine, *G.Node) {
		g2 := G.NewGraph()
		w2 := G.NewVector(g2, tensor.Float32, G.WithShape(6), G.WithName("w"), G.WithValue(learn[0].Value()))
		y := G.Must(G.Sum(w2))
		eval, err := NewMachine(g2, nil, WithSession(sess), EvalMode(), Fetch(y))
		if err != nil {
			t.Fatal(err)
		}
		return eval, y
	}
	early, yEarly := evalGraph()
	m, err := NewMachine(g, learn, WithSession(sess))
	if err != nil {
		t.Fatal(err)
	}
	late, yLate := evalGraph()
	before := nn.Slice[float32](learn[0].Value().(*tensor.Dense))[0]
	if err := G.Let(x, tensor.New(tensor.WithShape(6), tensor.WithBacking([]float32{1, 1, 1, 1, 1, 1}))); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	if err := m.AdamStep(AdamConfig{LR: 0.5, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, learn[0]); err != nil {
		t.Fatal(err)
	}
	if after := nn.Slice[float32](learn[0].Value().(*tensor.Dense))[0]; after != before {
		t.Fatalf("host weight changed before Download: %g → %g", before, after)
	}
	for _, e := range []*Machine{early, late} {
		if err := e.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
	if err := sess.Download(); err != nil {
		t.Fatal(err)
	}
	after := nn.Slice[float32](learn[0].Value().(*tensor.Dense))
	want := 0.0
	for _, v := range after {
		want += float64(v)
	}
	if math.Abs(float64(after[0]-(before-0.5))) > 1e-5 {
		t.Errorf("w[0] %g → %g, want a step of −0.5", before, after[0])
	}
	for i, y := range []*G.Node{yEarly, yLate} {
		if sum, _ := nn.ScalarValue(y); math.Abs(sum-want) > 1e-4 {
			t.Errorf("evaluation machine %d: Σw = %g, want the trained %g", i, sum, want)
		}
	}
	for _, c := range []*Machine{early, late, m} {
		c.Close()
	}
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	if len(dev.mem) != 0 {
		t.Errorf("%d device allocations left after closing everything", len(dev.mem))
	}
}

// TestMachineErrors: float64 graphs, unbound inputs and parameters
// rebound after building are errors that say what to do.
func TestMachineErrors(t *testing.T) {
	g := G.NewGraph()
	a := G.NewVector(g, tensor.Float64, G.WithShape(2), G.WithName("a"))
	G.Must(G.Square(a))
	if _, err := NewMachine(g, nil, WithSession(newSession(newFakeDevice(), nil))); err == nil || !strings.Contains(err.Error(), "float32") {
		t.Errorf("float64 graph: %v, want an error naming float32", err)
	}

	g2, x, learn := adamGraph()
	m, _ := fakeMachine(t, g2, learn)
	defer m.Close()
	if err := m.RunAll(); err == nil || !strings.Contains(err.Error(), "x") || !strings.Contains(err.Error(), "G.Let") {
		t.Errorf("unbound input: %v, want an error naming x and G.Let", err)
	}
	if err := G.Let(x, tensor.New(tensor.WithShape(6), tensor.WithBacking(make([]float32, 6)))); err != nil {
		t.Fatal(err)
	}
	if err := G.Let(learn[1], tensor.New(tensor.WithShape(3), tensor.WithBacking(make([]float32, 3)))); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err == nil || !strings.Contains(err.Error(), "Session.Upload") {
		t.Errorf("rebound parameter: %v, want an error pointing to Session.Upload", err)
	}
}

// TestPlanArguments checks the launches every bench-small lowering plans
// against KernelParams (the fake device calls checkArgs like Device.Launch):
// building and running the lowered plan would fail on a wrong kind or
// count. It also pins a few planned sizes.
func TestPlanArguments(t *testing.T) {
	b := newBenchSmall(t, 3, 2)
	dev := newFakeDevice()
	m, err := NewMachine(b.g, b.learn, WithSession(newSession(dev, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b.bindBenchSmall(t, rand.New(rand.NewSource(1)), 1)
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	kinds := map[Kind]int{}
	for _, st := range m.steps {
		kinds[st.kind]++
	}
	if kinds[Host] > 4 || kinds[Kernel]+kinds[BLAS] < 100 {
		t.Errorf("step kinds %v: want almost every step on the device", kinds)
	}
}

// runBoth runs the reference vm.Machine and the lowered Machine once each.
func runBoth(t *testing.T, cpu *vm.Machine, m *Machine) {
	t.Helper()
	if err := cpu.RunAll(); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
}
