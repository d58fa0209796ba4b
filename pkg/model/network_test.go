package model

import (
	"fmt"
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// tinyEncoder is the smallest encoder with every part present: one LIF
// layer of 3 units over T = 2 steps and a CfC of 3 units. Smooth makes the
// spikes differentiable functions for finite differences.
func tinyEncoder(dim int) EncoderConfig {
	return EncoderConfig{EncoderDim: dim, SpikingUnits: 3, SpikingLayers: 1, NumSpikeSteps: 2,
		LiquidUnits: 3, BackboneUnits: 3, Threshold: 0.5, Surrogate: nn.Surrogate{Smooth: true}}
}

// tinyModalities returns up to three modalities of different kinds: "a" a
// plain vector (mlp), "b" token ids (text), "c" an image (vision).
func tinyModalities(n int, dims []int) map[string]ModalityConfig {
	all := []ModalityConfig{
		{Preprocessor: modality.Config{Kind: modality.KindMLP, OutputDim: 4, MLP: modality.MLPConfig{InputDim: 5}}},
		{Preprocessor: modality.Config{Kind: modality.KindText, OutputDim: 4,
			Text: modality.TextConfig{VocabSize: 7, SeqLen: 3, EmbedDim: 4, PadID: -1}}},
		{Preprocessor: modality.Config{Kind: modality.KindVision, OutputDim: 4,
			Vision: modality.VisionConfig{InChannels: 1, Height: 4, Width: 4, Channels: []int{2}}}},
	}
	out := map[string]ModalityConfig{}
	for i := 0; i < n; i++ {
		m := all[i]
		m.Encoder = tinyEncoder(dims[i])
		out[string(rune('a'+i))] = m
	}
	return out
}

// tinyFeed returns deterministic inputs for the tiny modalities and labels
// for a classification head with 3 classes.
func tinyFeed(net *Network, batch int, seed int64) Feed {
	f := Feed{Inputs: map[string]*tensor.Dense{}}
	for i, name := range net.Names() {
		p := net.Preprocessor(name)
		shape := p.InputShape(batch)
		if p.IntInput() {
			n := 1
			for _, d := range shape {
				n *= d
			}
			ids := make([]int, n)
			for j := range ids {
				ids[j] = (j*5 + int(seed) + i) % 7
			}
			f.Inputs[name] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(ids))
		} else {
			f.Inputs[name] = nntest.RandInput(seed+int64(i), 1, shape...)
		}
	}
	labels := make([]int, batch)
	for j := range labels {
		labels[j] = (j + int(seed)) % 3
	}
	f.Labels = tensor.New(tensor.WithShape(batch), tensor.WithBacking(labels))
	return f
}

// TestNetworkGradients checks the full graph of every fusion strategy —
// preprocessors, spiking encoders (smooth surrogate), fusion, head and
// cross-entropy loss — with 2 modalities (evaluation mode) and 3
// modalities (learnable weights, modality dropout with an absent sample,
// training mode with fixed masks) against central differences.
func TestNetworkGradients(t *testing.T) {
	for _, strat := range fusion.Strategies {
		for _, m := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s/%d", strat, m), func(t *testing.T) {
				dims := []int{4, 3, 5}
				if strat == fusion.Hybrid || strat == fusion.Hierarchical {
					dims = []int{4, 4, 4}
				}
				cfg := NetworkConfig{Modalities: tinyModalities(m, dims), OutputDim: 3, HeadHidden: 3,
					Fusion: fusion.Config{Strategy: strat, Dim: 3, Heads: 2}}
				opt := nntest.Options{Seed: 2, Entries: 2, MinChecked: 10}
				const batch = 3
				var present map[string]*tensor.Dense
				if m == 3 {
					cfg.Fusion.ModalityWeights = true
					cfg.Fusion.ModalityDropout = map[string]float64{"a": 0.4, "b": 0.4, "c": 0.4}
					cfg.Fusion.Dropout = 0.2
					present = map[string]*tensor.Dense{"b": nn.NewDense(tensor.Float64, []int{batch}, []float64{1, 1, 0})}
					opt.Train = true
				}
				net, err := NewNetwork(cfg)
				if err != nil {
					t.Fatal(err)
				}
				nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
					g, err := net.Build(c, batch)
					if err != nil {
						return nil, nil, err
					}
					feed := tinyFeed(net, batch, 4)
					feed.Present = present
					if err := g.Bind(feed); err != nil {
						return nil, nil, err
					}
					return g.Loss, nil, nil
				}, opt)
			})
		}
	}
}

// TestHeadGradients checks the regression and token heads (the latter
// with late fusion, whose per-modality token logits [B,L,V] are combined
// by the modality weights).
func TestHeadGradients(t *testing.T) {
	for _, tc := range []struct {
		head  string
		strat string
	}{{HeadRegression, fusion.Early}, {HeadTokens, fusion.Late}, {HeadTokens, fusion.Hybrid}} {
		t.Run(tc.head+"/"+tc.strat, func(t *testing.T) {
			cfg := NetworkConfig{Modalities: tinyModalities(2, []int{4, 4}), Head: tc.head, OutputDim: 5, TokenLen: 3, IgnoreIndex: 2,
				Fusion: fusion.Config{Strategy: tc.strat, Dim: 3, Heads: 1, ModalityWeights: true}}
			net, err := NewNetwork(cfg)
			if err != nil {
				t.Fatal(err)
			}
			nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
				g, err := net.Build(c, 2)
				if err != nil {
					return nil, nil, err
				}
				feed := tinyFeed(net, 2, 1)
				if tc.head == HeadRegression {
					feed.Labels = nntest.RandInput(9, 1, 2, 5)
				} else {
					feed.Labels = tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]int{0, 2, 4, 1, 3, 2}))
				}
				if err := g.Bind(feed); err != nil {
					return nil, nil, err
				}
				if want := []int{2, 3, 5}; tc.head == HeadTokens && !g.Output.Shape().Eq(tensor.Shape(want)) {
					return nil, nil, fmt.Errorf("token logits %v, want %v", g.Output.Shape(), want)
				}
				return g.Loss, nil, nil
			}, nntest.Options{Seed: 5, Entries: 2, MinChecked: 10})
		})
	}
}

// TestBenchSmallParams: the bench-small config builds the reference model
// with exactly its parameter count, and one evaluation forward gives
// finite logits and the attention map of the hybrid fusion.
func TestBenchSmallParams(t *testing.T) {
	net, err := NewNetwork(BenchSmallConfig())
	if err != nil {
		t.Fatal(err)
	}
	n, err := net.NumParams()
	if err != nil {
		t.Fatal(err)
	}
	if n != BenchSmallParams {
		t.Fatalf("bench-small has %d parameters, want %d", n, BenchSmallParams)
	}
	store, err := nn.NewStore(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	gr := G.NewGraph()
	g, err := net.Build(nn.NewCtx(gr, store, nn.CtxOptions{}), 2)
	if err != nil {
		t.Fatal(err)
	}
	img := make([]float32, 2*28*28)
	for i := range img {
		img[i] = float32(math.Sin(float64(i)))
	}
	ids := make([]int, 2*16)
	for i := range ids {
		ids[i] = i * 37 % 1000
	}
	if err := g.Bind(Feed{Inputs: map[string]*tensor.Dense{
		"vision": tensor.New(tensor.WithShape(2, 1, 28, 28), tensor.WithBacking(img)),
		"text":   tensor.New(tensor.WithShape(2, 16), tensor.WithBacking(ids)),
	}}); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(gr)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	if s := g.Output.Shape(); !s.Eq(tensor.Shape{2, 10}) {
		t.Errorf("logits shape %v, want (2, 10)", s)
	}
	out, _ := nn.ToFloat64(g.Output.Value().(tensor.Tensor))
	for _, v := range out {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("non-finite logits %v", out)
		}
	}
	att := g.Attention["self"]
	if att == nil || !att.Shape().Eq(tensor.Shape{2, 4, 2, 2}) {
		t.Fatalf("attention map %v, want [2 4 2 2]", att)
	}
	w, _ := nn.ToFloat64(att.Value().(tensor.Tensor))
	for r := 0; r < len(w); r += 2 {
		if math.Abs(w[r]+w[r+1]-1) > 1e-5 {
			t.Errorf("attention row %d sums to %g", r/2, w[r]+w[r+1])
		}
	}
	for _, name := range []string{"vision", "text"} {
		if f := g.Features[name]; f == nil || !f.Shape().Eq(tensor.Shape{2, 128}) {
			t.Errorf("feature of %s: %v", name, f)
		}
	}
}

// evalRun builds net in float64 evaluation mode on store, binds feed and
// returns the output values.
func evalRun(t *testing.T, net *Network, store *nn.Store, batch int, feed Feed) []float64 {
	t.Helper()
	gr := G.NewGraph()
	g, err := net.Build(nn.NewCtx(gr, store, nn.CtxOptions{}), batch)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Bind(feed); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(gr)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	v, err := nn.ToFloat64(g.Output.Value().(tensor.Tensor))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMissingModalityNetwork: with missing embeddings a network runs with a
// modality absent for one sample (other samples' outputs unchanged, the
// absent sample's output independent of that input) or absent from the
// feed altogether; without them, an absent input is an error naming it.
func TestMissingModalityNetwork(t *testing.T) {
	cfg := NetworkConfig{Modalities: tinyModalities(3, []int{4, 4, 4}), OutputDim: 3,
		Fusion: fusion.Config{Strategy: fusion.Hierarchical, Dim: 3, Heads: 2, MissingEmbedding: true}}
	net, err := NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := nn.NewStore(tensor.Float64, 3)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 3
	base := tinyFeed(net, batch, 2)
	all := evalRun(t, net, store, batch, base)
	// Non-zero missing embeddings, so that substitution shows.
	for _, name := range net.Names() {
		p := store.Lookup("fusion.missing." + name)
		if p == nil {
			t.Fatalf("no missing embedding for %s", name)
		}
		if err := nn.SetFromFloat64(p.Value, []float64{0.7, -1.1, 0.3, 2}); err != nil {
			t.Fatal(err)
		}
	}
	all = evalRun(t, net, store, batch, base)
	absent := tinyFeed(net, batch, 2)
	absent.Present = map[string]*tensor.Dense{"c": nn.NewDense(tensor.Float64, []int{batch}, []float64{1, 0, 1})}
	miss := evalRun(t, net, store, batch, absent)
	other := tinyFeed(net, batch, 2)
	other.Inputs["c"] = nntest.RandInput(77, 3, net.Preprocessor("c").InputShape(batch)...)
	other.Present = absent.Present
	miss2 := evalRun(t, net, store, batch, other)
	for i := range all {
		b := i / 3
		if b != 1 && miss[i] != all[i] {
			t.Errorf("sample %d output changed (%g → %g) when sample 1 lost modality c", b, all[i], miss[i])
		}
		if b == 1 && miss[i] != miss2[i] {
			t.Errorf("sample 1's output depends on its absent modality's input: %g vs %g", miss[i], miss2[i])
		}
	}
	if miss[3] == all[3] && miss[4] == all[4] && miss[5] == all[5] {
		t.Error("sample 1's output did not change when modality c went missing")
	}
	// Omitting c from the feed equals marking it absent for every sample.
	noC := tinyFeed(net, batch, 2)
	delete(noC.Inputs, "c")
	omitted := evalRun(t, net, store, batch, noC)
	allAbsent := tinyFeed(net, batch, 2)
	allAbsent.Present = map[string]*tensor.Dense{"c": nn.NewDense(tensor.Float64, []int{batch}, nil)}
	marked := evalRun(t, net, store, batch, allAbsent)
	for i := range omitted {
		if omitted[i] != marked[i] {
			t.Fatalf("omitted modality gives %v, marked absent gives %v", omitted, marked)
		}
	}
	// Without missing embeddings an absent input is an error naming it.
	cfg.Fusion.MissingEmbedding = false
	strict, err := NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := strict.Build(nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}), batch)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Bind(noC); err == nil || !strings.Contains(err.Error(), `modality "c": no input`) {
		t.Errorf("missing input without missing embeddings: error %v, want one naming modality \"c\"", err)
	}
}

// panicky is a registered preprocessor whose Forward panics like a
// Gorgonia Must helper on a shape error.
type panicky struct{}

func (panicky) Kind() string               { return "fusiontest_panicky" }
func (panicky) InputShape(batch int) []int { return []int{batch, 2} }
func (panicky) IntInput() bool             { return false }
func (panicky) OutputDim() int             { return 4 }
func (panicky) Forward(_ *nn.Ctx, x *G.Node) (*G.Node, error) {
	y := G.NewMatrix(x.Graph(), x.Dtype(), G.WithShape(3, 3), G.WithName("panicky"))
	return G.Must(G.Add(x, y)), nil // [B,2] + [3,3]: shape error, Must panics
}

// TestWiringErrors: configuration and wiring mistakes are errors that name
// the modality and the field, never panics.
func TestWiringErrors(t *testing.T) {
	if err := modality.Register("fusiontest_panicky", func(modality.Config) (modality.Preprocessor, error) { return panicky{}, nil }); err != nil {
		t.Fatal(err)
	}
	base := func() NetworkConfig {
		return NetworkConfig{Modalities: tinyModalities(2, []int{4, 4}), OutputDim: 3, Fusion: fusion.Config{Strategy: fusion.Hybrid, Dim: 3}}
	}
	cases := []struct {
		name string
		edit func(*NetworkConfig)
		want []string
	}{
		{"unequal encoder dims", func(c *NetworkConfig) {
			m := c.Modalities["b"]
			m.Encoder.EncoderDim = 6
			c.Modalities["b"] = m
		}, []string{`modality "b" has encoder_dim 6`, `"a" has 4`, "set the same encoder_dim", "early or late"}},
		{"unknown preprocessor", func(c *NetworkConfig) {
			m := c.Modalities["a"]
			m.Preprocessor.Kind = "smell"
			c.Modalities["a"] = m
		}, []string{`modality "a"`, "preprocessor", `unknown "smell"`}},
		{"T=0", func(c *NetworkConfig) {
			m := c.Modalities["b"]
			m.Encoder.NumSpikeSteps = 0
			c.Modalities["b"] = m
		}, []string{`modality "b"`, "num_spike_steps", "got 0"}},
		{"input dim", func(c *NetworkConfig) {
			m := c.Modalities["a"]
			m.Encoder.InputDim = 9
			c.Modalities["a"] = m
		}, []string{`modality "a"`, "input_dim 9", "output_dim 4"}},
		{"head", func(c *NetworkConfig) { c.Head = "ranking" }, []string{`unknown head "ranking"`}},
		{"token len", func(c *NetworkConfig) { c.Head = HeadTokens }, []string{"token_len"}},
		{"output dim", func(c *NetworkConfig) { c.OutputDim = 0 }, []string{"output_dim"}},
		{"no modalities", func(c *NetworkConfig) { c.Modalities = nil }, []string{"no modalities"}},
		{"modality name", func(c *NetworkConfig) { c.Modalities["x.y"] = c.Modalities["a"] }, []string{`modality name "x.y"`}},
	}
	for _, tc := range cases {
		cfg := base()
		tc.edit(&cfg)
		_, err := NewNetwork(cfg)
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
	// Bind errors name the modality.
	net, err := NewNetwork(base())
	if err != nil {
		t.Fatal(err)
	}
	store, _ := nn.NewStore(tensor.Float64, 1)
	g, err := net.Build(nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}), 2)
	if err != nil {
		t.Fatal(err)
	}
	feed := tinyFeed(net, 2, 1)
	feed.Inputs["a"] = nntest.RandInput(1, 1, 2, 6)
	if err := g.Bind(feed); err == nil || !strings.Contains(err.Error(), `modality "a" input has shape (2, 6), want (2, 5)`) {
		t.Errorf("wrong input shape: %v", err)
	}
	feed = tinyFeed(net, 2, 1)
	feed.Inputs["z"] = feed.Inputs["a"]
	if err := g.Bind(feed); err == nil || !strings.Contains(err.Error(), `unknown modality "z"`) {
		t.Errorf("unknown modality: %v", err)
	}
	// A panic inside a preprocessor's build becomes an error naming the scope.
	cfg := base()
	cfg.Modalities["a"] = ModalityConfig{Preprocessor: modality.Config{Kind: "fusiontest_panicky", OutputDim: 4}, Encoder: tinyEncoder(4)}
	net, err = NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = net.Build(nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}), 2)
	if err == nil || !strings.Contains(err.Error(), `modality "a"`) || !strings.Contains(err.Error(), "graph construction failed") {
		t.Errorf("panicking preprocessor: error %v, want a recovered build error", err)
	}
}

// The bench-small reference model, built from its config struct.
func ExampleNetwork_NumParams() {
	net, err := NewNetwork(BenchSmallConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := net.NumParams()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(net.Names(), n)
	// Output: [text vision] 315210
}

// A strategy that treats modality features as tokens needs one encoder
// width; the error says which modalities differ and how to fix it.
func ExampleNewNetwork_dimensionMismatch() {
	cfg := BenchSmallConfig()
	text := cfg.Modalities["text"]
	text.Encoder.EncoderDim = 64
	cfg.Modalities["text"] = text
	_, err := NewNetwork(cfg)
	fmt.Println(err)
	// Output: fusion: modality "vision" has encoder_dim 128 but "text" has 64: the hybrid strategy treats modality features as tokens of one width, so set the same encoder_dim for every modality (or use the early or late strategy, which accept different widths)
}
