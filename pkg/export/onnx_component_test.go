package export

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Component tests: each preprocessor and each encoder variant exported on
// its own and compared with its Gorgonia builder in onnxruntime. A
// preprocessor's output is a continuous function of its input, so the
// comparison sees every layer; an encoder is compared on its spike trains
// and its feature.

// exportSubgraph builds a graph with build (which declares its inputs and
// returns its outputs by name) and returns the encoded model.
func exportSubgraph(t *testing.T, store *nn.Store, opset int, build func(b *builder) map[string]value) []byte {
	t.Helper()
	b := newBuilder(store, opset, -1)
	outs := build(b)
	names := make([]string, 0, len(outs))
	for n := range outs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		scope{b: b}.output(n, outs[n])
	}
	if b.err != nil {
		t.Fatalf("export: %v", b.err)
	}
	return b.encodeModel(nil, "")
}

func newStore(t *testing.T) *nn.Store {
	t.Helper()
	store, err := nn.NewStore(tensor.Float32, 3)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// TestPreprocessorsMatchGorgonia covers every preprocessor kind and
// architecture, the text positions and poolings with and without padding,
// every activation, and opsets 13, 17, 18, 20 and 21 (decomposed and native
// LayerNormalization and GELU, reduce axes as attribute and as input).
func TestPreprocessorsMatchGorgonia(t *testing.T) {
	script := onnxCheckScript(t)
	dir := t.TempDir()
	const batch = 3
	rng := rand.New(rand.NewSource(1))
	var cases []checkCase
	for _, pc := range preprocessorCases() {
		p, err := modality.New(pc.cfg)
		if err != nil {
			t.Fatalf("%s: %v", pc.name, err)
		}
		store := newStore(t)
		g := G.NewGraph()
		c := nn.NewCtx(g, store, nn.CtxOptions{})
		shape := p.InputShape(batch)
		var x *G.Node
		if p.IntInput() {
			x = c.IntInput("x", shape...)
		} else {
			x = c.Input("x", shape...)
		}
		h, err := p.Forward(c.Sub("m").Sub("pre"), x)
		if err != nil {
			t.Fatalf("%s: %v", pc.name, err)
		}
		perturb(t, store, 5)
		in := randomInput(rng, shape, p.IntInput(), 1, pc.cfg.Text.VocabSize)
		if err := G.Let(x, in); err != nil {
			t.Fatal(err)
		}
		want := runGraph(t, g, h)[0]
		if !differs(want, batch) {
			t.Errorf("%s: output does not depend on the input", pc.name)
		}
		model := exportSubgraph(t, store, pc.opset, func(b *builder) map[string]value {
			dt := tFloat
			if p.IntInput() {
				dt = tInt64
			}
			xv := b.input("x", dt, p.InputShape(-1))
			return map[string]value{"y": preprocessor(scope{b: b}.sub("m").sub("pre"), "m", pc.cfg, xv)}
		})
		cc := newCase(t, dir, "preprocessor/"+pc.name, model)
		cc.Inputs["x"] = toIO(in)
		cc.Expected["y"] = ioTensor{Dims: []int(h.Shape()), Data: want}
		cases = append(cases, cc)
	}
	checkInRuntime(t, script, cases, 1e-4)
}

// TestEncodersMatchGorgonia covers the encoder options: the three LIF
// resets, learnable β and θ, graded spikes, two spiking layers, the CfC
// modes, deep backbones with dropout slots, LTC. The last spiking layer's
// spike trains must match exactly (within 1e-4 on 0/1 values) and vary with
// the input; the feature within 1e-4.
func TestEncodersMatchGorgonia(t *testing.T) {
	script := onnxCheckScript(t)
	dir := t.TempDir()
	const batch, inDim = 3, 5
	rng := rand.New(rand.NewSource(2))
	var cases []checkCase
	for _, ec := range encoderCases() {
		cfg := ec.cfg
		cfg.Name, cfg.InputDim = "m", inDim
		e, err := model.NewModalityEncoder(cfg)
		if err != nil {
			t.Fatalf("%s: %v", ec.name, err)
		}
		store := newStore(t)
		g := G.NewGraph()
		c := nn.NewCtx(g, store, nn.CtxOptions{})
		x := c.Input("x", batch, inDim)
		out, err := e.Forward(c.Sub("m").Sub("encoder"), x)
		if err != nil {
			t.Fatalf("%s: %v", ec.name, err)
		}
		perturb(t, store, 6)
		in := randomInput(rng, []int{batch, inDim}, false, 2, 0)
		if err := G.Let(x, in); err != nil {
			t.Fatal(err)
		}
		last := out.Spikes[len(out.Spikes)-1]
		vals := runGraph(t, g, append([]*G.Node{out.Feature}, last...)...)
		varies := false
		for _, s := range vals[1:] {
			varies = varies || differs(s, batch)
		}
		if !varies {
			t.Errorf("%s: the spike trains are the same for every sample", ec.name)
		}
		model := exportSubgraph(t, store, ec.opset, func(b *builder) map[string]value {
			feat, spikes := encoder(scope{b: b}.sub("m").sub("encoder"), e.Config(), b.input("x", tFloat, []int{-1, inDim}))
			outs := map[string]value{"feature": feat}
			for i, s := range spikes {
				outs[fmt.Sprintf("spikes.%d", i)] = s
			}
			return outs
		})
		cc := newCase(t, dir, "encoder/"+ec.name, model)
		cc.Inputs["x"] = toIO(in)
		cc.Expected["feature"] = ioTensor{Dims: []int(out.Feature.Shape()), Data: vals[0]}
		for i, s := range last {
			cc.Expected[fmt.Sprintf("spikes.%d", i)] = ioTensor{Dims: []int(s.Shape()), Data: vals[1+i]}
		}
		cases = append(cases, cc)
	}
	checkInRuntime(t, script, cases, 1e-4)
}
