package fusion

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

// testHead is a Linear(Dim, 3) head under "head" ("head.<m>" for late).
func testHead(c *nn.Ctx, dim int) Head {
	return func(mod string, x *G.Node) (*G.Node, error) {
		hc := c.Sub("head")
		if mod != "" {
			hc = hc.Sub(mod)
		}
		return nn.Linear{In: dim, Out: 3}.Forward(hc, x)
	}
}

// fixture builds the fusion over float inputs with fixed random values.
type fixture struct {
	cfg      Config
	names    []string
	dims     []int
	batch    int
	presence map[string][]float64 // nil: no presence inputs
	seed     int64
}

func (fx fixture) build(c *nn.Ctx) (*Output, map[string]*G.Node, map[string]*G.Node, error) {
	mods := make([]Modality, len(fx.names))
	for i := range fx.names {
		mods[i] = Modality{Name: fx.names[i], Dim: fx.dims[i]}
	}
	f, err := New(fx.cfg, mods)
	if err != nil {
		return nil, nil, nil, err
	}
	feats := map[string]*G.Node{}
	pres := map[string]*G.Node{}
	for i, name := range fx.names {
		feats[name] = G.NewTensor(c.Graph(), c.Dtype(), 2, G.WithShape(fx.batch, fx.dims[i]), G.WithName("f."+name),
			G.WithValue(nntest.RandInput(fx.seed+int64(i), 1, fx.batch, fx.dims[i])))
		if fx.presence != nil {
			pres[name] = G.NewTensor(c.Graph(), c.Dtype(), 1, G.WithShape(fx.batch), G.WithName("p."+name),
				G.WithValue(nn.NewDense(c.Dtype(), []int{fx.batch}, fx.presence[name])))
		}
	}
	out, err := f.Forward(c.Sub("fusion"), Inputs{Features: feats, Present: pres}, testHead(c, fx.cfg.Dim))
	return out, feats, pres, err
}

func ones(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// TestStrategyGradients checks every strategy's whole fusion graph with 2
// modalities (plain, evaluation mode) and 3 modalities (learnable weights,
// modality dropout with a missing sample, attention and projection dropout,
// training mode with fixed masks) against central differences, including
// the gradients of the input features.
func TestStrategyGradients(t *testing.T) {
	for _, strat := range Strategies {
		for _, m := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s/%d", strat, m), func(t *testing.T) {
				names := []string{"audio", "text", "vision"}[:m]
				dims := []int{6, 5, 7}[:m]
				if strat == Hybrid || strat == Hierarchical {
					dims = []int{4, 4, 4}[:m]
				}
				fx := fixture{cfg: Config{Strategy: strat, Dim: 5, Heads: 2}, names: names, dims: dims, batch: 3, seed: 11}
				opt := nntest.Options{Seed: 3, Entries: 4}
				if m == 3 {
					fx.cfg.ModalityWeights = true
					fx.cfg.Dropout = 0.2
					fx.cfg.ModalityDropout = map[string]float64{"audio": 0.5, "text": 0.5, "vision": 0.5}
					fx.presence = map[string][]float64{"audio": {1, 0, 1}, "text": ones(3), "vision": ones(3)}
					opt.Train = true
				}
				var keep *G.Node
				res := nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
					out, feats, _, err := fx.build(c)
					if err != nil {
						return nil, nil, err
					}
					keep = out.Keep
					loss, err := nntest.WeightedSum(out.Output, 7)
					var in G.Nodes
					for _, n := range names {
						in = append(in, feats[n])
					}
					return loss, in, err
				}, opt)
				if res.Checked < m+3 {
					t.Errorf("checked %d tensors, want at least %d", res.Checked, m+3)
				}
				if m == 3 {
					// The fixed masks must drop something, or the missing
					// embeddings' gradients were checked at zero only.
					k, _ := nn.ToFloat64(keep.Value().(tensor.Tensor))
					if k[1*3+0] != 0 {
						t.Errorf("absent audio of sample 1 was kept: keep=%v", k)
					}
					zeros := 0
					for _, v := range k {
						if v == 0 {
							zeros++
						}
					}
					if zeros < 2 {
						t.Errorf("keep mask %v drops %d entries; the check needs a training drop besides the absent one", k, zeros)
					}
				}
			})
		}
	}
}

// run builds fx in float64 evaluation (or training) mode, runs it once and
// returns the output values and the store.
func run(t *testing.T, fx fixture, train bool, store *nn.Store, edit func(feats, pres map[string]*G.Node)) ([]float64, *Output) {
	t.Helper()
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{Train: train, NoiseSeed: 5})
	out, feats, pres, err := fx.build(c)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(feats, pres)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	v, err := nn.ToFloat64(out.Output.Value().(tensor.Tensor))
	if err != nil {
		t.Fatal(err)
	}
	return v, out
}

func newStore(t *testing.T) *nn.Store {
	t.Helper()
	s, err := nn.NewStore(tensor.Float64, 9)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMissingModalityInference marks one modality absent for one sample at
// inference: the other samples' outputs do not change at all, and the
// absent sample's output no longer depends on that modality's input.
func TestMissingModalityInference(t *testing.T) {
	for _, strat := range Strategies {
		t.Run(strat, func(t *testing.T) {
			fx := fixture{cfg: Config{Strategy: strat, Dim: 6, Heads: 2, MissingEmbedding: true, ModalityWeights: true},
				names: []string{"a", "b", "c"}, dims: []int{4, 4, 4}, batch: 4, seed: 21,
				presence: map[string][]float64{"a": ones(4), "b": ones(4), "c": ones(4)}}
			store := newStore(t)
			// Non-zero missing embeddings, so substitution is visible.
			for _, n := range fx.names {
				p, err := store.Get("fusion.missing."+n, []int{4}, nn.Normal(0, 1), true)
				if err != nil {
					t.Fatal(err)
				}
				_ = p
			}
			all, _ := run(t, fx, false, store, nil)
			absent := func(perturb float64) []float64 {
				v, _ := run(t, fx, false, store, func(feats, pres map[string]*G.Node) {
					p := []float64{1, 0, 1, 1}
					if err := G.Let(pres["b"], nn.NewDense(tensor.Float64, []int{4}, p)); err != nil {
						t.Fatal(err)
					}
					x := nntest.RandInput(fx.seed+1, 1, 4, 4)
					d := x.Data().([]float64)
					for j := 4; j < 8; j++ { // sample 1's row of modality b
						d[j] += perturb
					}
					if err := G.Let(feats["b"], x); err != nil {
						t.Fatal(err)
					}
				})
				return v
			}
			miss1, miss2 := absent(0), absent(3.5)
			const k = 3 // head outputs per sample
			for b := 0; b < 4; b++ {
				for j := 0; j < k; j++ {
					i := b*k + j
					if b != 1 && miss1[i] != all[i] {
						t.Errorf("sample %d output %d changed from %g to %g when another sample lost a modality", b, j, all[i], miss1[i])
					}
					if miss1[i] != miss2[i] {
						t.Errorf("sample %d output %d depends on the absent modality's input: %g vs %g", b, j, miss1[i], miss2[i])
					}
				}
			}
			if same(all[k:2*k], miss1[k:2*k]) {
				t.Errorf("sample 1's output %v did not change when its modality b went missing", all[k:2*k])
			}
		})
	}
}

func same(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestModalityWeightsNormalised sets weight logits, reads them back through
// ModalityWeights (the softmax, summing to 1; 1/M each before any logits
// exist) and checks that early fusion scaled each feature by M·w_m.
func TestModalityWeightsNormalised(t *testing.T) {
	fx := fixture{cfg: Config{Strategy: Early, Dim: 4, ModalityWeights: true},
		names: []string{"x", "y", "z"}, dims: []int{2, 3, 2}, batch: 2, seed: 4}
	store := newStore(t)
	w0, err := ModalityWeights(store, "fusion", fx.names)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range fx.names {
		if math.Abs(w0[n]-1.0/3) > 1e-15 {
			t.Errorf("weights without logits: %v, want 1/3 each", w0)
		}
	}
	run(t, fx, false, store, nil) // creates the logits, at 0
	logits := []float64{0.5, -1, 2}
	p := store.Lookup("fusion." + WeightsParam)
	if p == nil {
		t.Fatal("no weight logits in the store")
	}
	if err := nn.SetFromFloat64(p.Value, logits); err != nil {
		t.Fatal(err)
	}
	w, err := ModalityWeights(store, "fusion", fx.names)
	if err != nil {
		t.Fatal(err)
	}
	z := math.Exp(0.5) + math.Exp(-1) + math.Exp(2)
	sum := 0.0
	for i, n := range fx.names {
		want := math.Exp(logits[i]) / z
		if math.Abs(w[n]-want) > 1e-12 {
			t.Errorf("weight of %s = %g, want %g", n, w[n], want)
		}
		sum += w[n]
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Errorf("weights sum to %g", sum)
	}
	// Features after weighting are 3·w_m·f_m.
	_, out := run(t, fx, false, store, nil)
	for i, n := range fx.names {
		got, _ := nn.ToFloat64(out.Features[n].Value().(tensor.Tensor))
		raw := nntest.RandInput(fx.seed+int64(i), 1, 2, fx.dims[i]).Data().([]float64)
		for j := range got {
			if want := 3 * w[n] * raw[j]; math.Abs(got[j]-want) > 1e-12 {
				t.Fatalf("weighted feature %s[%d] = %g, want %g", n, j, got[j], want)
			}
		}
	}
}

// TestUniformWeightsChangeNothing: with logits at their initial zeros the
// early, hybrid and hierarchical outputs equal those without weights (the
// M·w_m factor is 1), and late's equal the plain mean of the heads.
func TestUniformWeightsChangeNothing(t *testing.T) {
	for _, strat := range Strategies {
		fx := fixture{cfg: Config{Strategy: strat, Dim: 4, Heads: 1}, names: []string{"p", "q"}, dims: []int{3, 3}, batch: 2, seed: 8}
		store := newStore(t)
		plain, _ := run(t, fx, false, store, nil)
		fx.cfg.ModalityWeights = true
		weighted, _ := run(t, fx, false, store, nil)
		for i := range plain {
			if math.Abs(plain[i]-weighted[i]) > 1e-12 {
				t.Errorf("%s: output %d is %g with uniform weights, %g without", strat, i, weighted[i], plain[i])
			}
		}
	}
}

// TestKeepMask checks modality dropout's mask: evaluation keeps exactly the
// present modalities; training drops each at its rate, never drops every
// present modality of a sample, redraws every run, and rejects presence
// values other than 0/1 naming the modality.
func TestKeepMask(t *testing.T) {
	const batch = 2000
	names := []string{"a", "b", "c"}
	rates := []float64{0.5, 0.2, 0}
	pres := [][]float64{ones(batch), ones(batch), make([]float64, batch)} // c always absent
	for i := 0; i < batch; i += 4 {
		pres[1][i] = 0 // b absent in a quarter of the samples
	}
	build := func(train bool) (*G.ExprGraph, *G.Node, []*G.Node) {
		store := newStore(t)
		g := G.NewGraph()
		c := nn.NewCtx(g, store, nn.CtxOptions{Train: train, NoiseSeed: 3})
		nodes := make([]*G.Node, 3)
		for j := range nodes {
			nodes[j] = G.NewTensor(g, tensor.Float64, 1, G.WithShape(batch), G.WithName("p"+names[j]),
				G.WithValue(nn.NewDense(tensor.Float64, []int{batch}, pres[j])))
		}
		k, err := keepMask(c, names, rates, nodes)
		if err != nil {
			t.Fatal(err)
		}
		return g, k, nodes
	}
	runMask := func(vm G.VM, k *G.Node) []float64 {
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		defer vm.Reset()
		v, _ := nn.ToFloat64(k.Value().(tensor.Tensor))
		return v
	}
	g, k, _ := build(false)
	vm := G.NewTapeMachine(g)
	ev := runMask(vm, k)
	vm.Close()
	for b := 0; b < batch; b++ {
		for j := range names {
			if ev[b*3+j] != pres[j][b] {
				t.Fatalf("eval keep[%d,%s] = %g, want presence %g", b, names[j], ev[b*3+j], pres[j][b])
			}
		}
	}
	g, k, nodes := build(true)
	vm = G.NewTapeMachine(g)
	defer vm.Close()
	tr := runMask(vm, k)
	tr2 := runMask(vm, k)
	if same(tr, tr2) {
		t.Error("training mask did not change between runs")
	}
	dropped := [3]int{}
	presentN := [3]int{}
	for b := 0; b < batch; b++ {
		kept := 0
		for j := range names {
			kv := tr[b*3+j]
			if kv == 1 && pres[j][b] == 0 {
				t.Fatalf("sample %d keeps absent modality %s", b, names[j])
			}
			if pres[j][b] == 1 {
				presentN[j]++
				if kv == 0 {
					dropped[j]++
				}
			}
			kept += int(kv)
		}
		if kept == 0 {
			t.Fatalf("sample %d lost every modality (presence a=%g b=%g)", b, pres[0][b], pres[1][b])
		}
	}
	// Expected drop fractions: a is dropped at 0.5, except when b is also
	// dropped or absent (then one of the present is restored). With b
	// present (3/4 of samples): P(a dropped) = 0.5·(1 − 0.2·½) = 0.45 (when
	// both drop, a or b is restored uniformly); with b absent: 0 (a is the
	// only present modality and is always restored). Overall 0.75·0.45 =
	// 0.3375. b: 0.2·(1 − 0.5·½) = 0.15.
	fa := float64(dropped[0]) / float64(presentN[0])
	fb := float64(dropped[1]) / float64(presentN[1])
	if math.Abs(fa-0.3375) > 0.04 || math.Abs(fb-0.15) > 0.04 {
		t.Errorf("drop fractions a=%.3f b=%.3f, want ≈0.3375 and ≈0.15", fa, fb)
	}
	// A presence value of 0.5 is an error naming the modality.
	bad := append([]float64(nil), pres[1]...)
	bad[7] = 0.5
	if err := G.Let(nodes[1], nn.NewDense(tensor.Float64, []int{batch}, bad)); err != nil {
		t.Fatal(err)
	}
	err := vm.RunAll()
	if err == nil || !strings.Contains(err.Error(), `"b"`) || !strings.Contains(err.Error(), "0 or 1") {
		t.Errorf("presence 0.5: error %v, want one naming modality \"b\" and saying 0 or 1", err)
	}
}

// TestConfigErrors checks that wiring mistakes are errors naming the field
// and the modality.
func TestConfigErrors(t *testing.T) {
	two := []Modality{{"vision", 8}, {"text", 6}}
	cases := []struct {
		name string
		cfg  Config
		mods []Modality
		want []string
	}{
		{"unequal dims hybrid", Config{Strategy: Hybrid, Dim: 4}, two, []string{`"vision" has encoder_dim 8`, `"text" has 6`, "same encoder_dim", "early or late"}},
		{"unequal dims hierarchical", Config{Strategy: Hierarchical, Dim: 4}, two, []string{"same encoder_dim"}},
		{"unknown strategy", Config{Strategy: "middle", Dim: 4}, two, []string{`unknown strategy "middle"`, "early, late, hybrid, hierarchical"}},
		{"zero dim", Config{Strategy: Early}, two, []string{"fusion_dim", "positive"}},
		{"heads", Config{Strategy: Hybrid, Dim: 4, Heads: 3}, []Modality{{"a", 8}, {"b", 8}}, []string{"heads=3", "encoder_dim 8"}},
		{"dropout rate", Config{Strategy: Early, Dim: 4, ModalityDropout: map[string]float64{"text": 1}}, two, []string{"modality_dropout", `"text"`, "[0, 1)"}},
		{"dropout name", Config{Strategy: Early, Dim: 4, ModalityDropout: map[string]float64{"audio": 0.1}}, two, []string{`"audio"`, "not one of"}},
		{"hierarchical one modality", Config{Strategy: Hierarchical, Dim: 4}, []Modality{{"a", 8}}, []string{"at least two"}},
		{"duplicate", Config{Strategy: Early, Dim: 4}, []Modality{{"a", 8}, {"a", 8}}, []string{`"a" listed twice`}},
		{"feature dim", Config{Strategy: Early, Dim: 4}, []Modality{{"a", 0}}, []string{`"a"`, "encoder_dim"}},
	}
	for _, tc := range cases {
		_, err := New(tc.cfg, tc.mods)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tc.name, err, w)
			}
		}
	}
	// Forward-time errors: a missing feature names the modality.
	f, err := New(Config{Strategy: Early, Dim: 4}, two)
	if err != nil {
		t.Fatal(err)
	}
	g := G.NewGraph()
	c := nn.NewCtx(g, newStore(t), nn.CtxOptions{})
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 8), G.WithName("v"))
	_, err = f.Forward(c.Sub("fusion"), Inputs{Features: map[string]*G.Node{"vision": x}}, testHead(c, 4))
	if err == nil || !strings.Contains(err.Error(), `modality "text": no feature`) {
		t.Errorf("missing feature: %v", err)
	}
	y := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 5), G.WithName("t"))
	_, err = f.Forward(c.Sub("fusion"), Inputs{Features: map[string]*G.Node{"vision": x, "text": y}}, testHead(c, 4))
	if err == nil || !strings.Contains(err.Error(), `modality "text": feature has shape (2, 5), want [batch, 6]`) {
		t.Errorf("wrong feature width: %v", err)
	}
}
