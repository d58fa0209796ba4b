package export

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// structureCase is a network whose node counts are easy to derive: two
// modalities (mlp "a", text "b" with plain mean pooling), each with T = 3
// steps of one LIF layer (subtract reset, fixed θ) and a default CfC with
// one lecun_tanh backbone layer; hybrid fusion with missing embeddings.
func structureCase() exportCase {
	e := enc()
	e.NumSpikeSteps = 3
	mlp := pre(modality.Config{Kind: modality.KindMLP, MLP: modality.MLPConfig{InputDim: 5}})
	return exportCase{name: "structure", cfg: model.NetworkConfig{
		Modalities: mods("a", mlp, e, "b", textPlainMean, e),
		Fusion:     fusion.Config{Strategy: fusion.Hybrid, Dim: 6, Heads: 2, MissingEmbedding: true},
		OutputDim:  3}}
}

func exportDecoded(t *testing.T, net *model.Network, store *nn.Store, opts ONNXOptions) *pbModel {
	t.Helper()
	var buf bytes.Buffer
	if err := ONNX(net, store, &buf, opts); err != nil {
		t.Fatalf("ONNX: %v", err)
	}
	m, err := decodeModel(buf.Bytes())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

func opCounts(g pbGraph) map[string]int {
	n := map[string]int{}
	for _, node := range g.nodes {
		n[node.op]++
	}
	return n
}

// TestONNXStructure decodes the written protobuf independently of the
// writer and checks the model header, inputs, output, that every store
// parameter (but the unused missing embeddings) is an initializer with the
// store's bytes, that the graph is topologically sorted with no dangling
// value, and the node counts of the unrolled recurrences. It needs no
// onnxruntime.
func TestONNXStructure(t *testing.T) {
	net, store := buildCase(t, structureCase())
	m := exportDecoded(t, net, store, ONNXOptions{Metadata: map[string]string{"config": "x: 1"}})
	if m.irVersion != 8 || m.opset != 17 || m.domain != "" || m.producer != "lsfuse" {
		t.Errorf("header: ir %d opset %d domain %q producer %q, want 8, 17, \"\", lsfuse", m.irVersion, m.opset, m.domain, m.producer)
	}
	if m.meta["config"] != "x: 1" || m.meta["lsfuse.output"] != OutputLogits || m.meta["lsfuse.modalities"] != "a,b" {
		t.Errorf("metadata %v", m.meta)
	}
	g := m.graph
	ins := fmt.Sprint(g.inputs)
	if want := "[{a 1 [batch 5]} {b 7 [batch 5]}]"; ins != want {
		t.Errorf("inputs %s, want %s", ins, want)
	}
	if outs := fmt.Sprint(g.output); outs != "[{logits 1 [batch 3]}]" {
		t.Errorf("outputs %s, want logits float [batch 3]", outs)
	}

	// Initializers: every store parameter but the missing embeddings, with
	// its bytes; anything else is a shared constant.
	inits := map[string]pbTensor{}
	for _, in := range g.inits {
		if _, dup := inits[in.name]; dup {
			t.Errorf("initializer %q twice", in.name)
		}
		inits[in.name] = in
	}
	for _, p := range store.Params() {
		in, ok := inits[p.Name]
		missing := strings.HasPrefix(p.Name, "fusion.missing.")
		if ok == missing {
			t.Errorf("parameter %s: initializer present %v", p.Name, ok)
			continue
		}
		if missing {
			continue
		}
		delete(inits, p.Name)
		vals, _ := nn.ToFloat64(p.Value)
		if in.dt != 1 || fmt.Sprint(in.dims) != fmt.Sprint([]int(p.Value.Shape())) || len(in.raw) != 4*len(vals) {
			t.Errorf("%s: initializer type %d dims %v with %d bytes, want float %v", p.Name, in.dt, in.dims, len(in.raw), p.Value.Shape())
			continue
		}
		for i, v := range vals {
			if got := math.Float32frombits(binary.LittleEndian.Uint32(in.raw[4*i:])); got != float32(v) {
				t.Errorf("%s[%d] = %v, store has %v", p.Name, i, got, v)
				break
			}
		}
	}
	for name := range inits {
		if !strings.HasPrefix(name, "const.") {
			t.Errorf("initializer %q is neither a store parameter nor a shared constant", name)
		}
	}

	// Topological order, no dangling names.
	defined := map[string]bool{}
	for _, in := range g.inputs {
		defined[in.name] = true
	}
	for _, in := range g.inits {
		defined[in.name] = true
	}
	for _, n := range g.nodes {
		for _, in := range n.inputs {
			if !defined[in] {
				t.Fatalf("node %s (%s) reads %q before it is defined", n.name, n.op, in)
			}
		}
		for _, o := range n.outputs {
			if defined[o] {
				t.Fatalf("node %s redefines %q", n.name, o)
			}
			defined[o] = true
		}
	}
	if !defined[OutputLogits] {
		t.Fatal("no node produces the output")
	}

	// Per modality and step t of T = 3: a spike (Greater) and, from step 2,
	// the reset (Greater); the CfC gate (Sigmoid) and three Tanh (lecun_tanh
	// backbone, f1, f2); five Gemm (backbone, ff1, ff2, time_a, time_b).
	// Gemm also: the mlp's out, text's fc, proj, lif1.fc and out per
	// modality, the fusion projection and the head.
	const steps, mods = 3, 2
	want := map[string]int{
		"Greater":            mods * (2*steps - 1),
		"Sigmoid":            mods * steps,
		"Tanh":               mods * steps * 3,
		"Gemm":               2 + mods*(3+5*steps) + 2,
		"ConstantOfShape":    mods, // h_0 of each CfC
		"Softmax":            1,
		"LayerNormalization": 1,
		"Gather":             1,
		"Identity":           1,
	}
	got := opCounts(g)
	for op, n := range want {
		if got[op] != n {
			t.Errorf("%d %s nodes, want %d", got[op], op, n)
		}
	}
	for _, n := range g.nodes {
		if n.op == "Gemm" && n.attrs["transB"].i != 1 {
			t.Errorf("Gemm %s without transB=1: the store's [out, in] weights would be misread", n.name)
		}
	}
}

// TestONNXOpsetVariants checks the opset-dependent spellings: decomposed
// layer norm and reduce axes as an attribute before opset 17/18, a fixed
// batch axis.
func TestONNXOpsetVariants(t *testing.T) {
	net, store := buildCase(t, structureCase())
	for _, tc := range []struct {
		opset, ir int64
		batch     int
	}{{13, 7, 2}, {18, 8, 0}, {21, 10, 0}} {
		m := exportDecoded(t, net, store, ONNXOptions{Opset: int(tc.opset), Batch: tc.batch})
		if m.opset != tc.opset || m.irVersion != tc.ir {
			t.Errorf("opset %d: header opset %d ir %d, want ir %d", tc.opset, m.opset, m.irVersion, tc.ir)
		}
		counts := opCounts(m.graph)
		if ln := counts["LayerNormalization"]; (ln == 1) != (tc.opset >= 17) {
			t.Errorf("opset %d: %d LayerNormalization nodes", tc.opset, ln)
		}
		for _, n := range m.graph.nodes {
			if n.op != "ReduceMean" {
				continue
			}
			_, attr := n.attrs["axes"]
			if attr != (tc.opset < 18) || (len(n.inputs) == 2) != (tc.opset >= 18) {
				t.Errorf("opset %d: ReduceMean %s has axes attribute %v and %d inputs", tc.opset, n.name, attr, len(n.inputs))
			}
		}
		wantDim := "batch"
		if tc.batch > 0 {
			wantDim = fmt.Sprint(tc.batch)
		}
		if d := m.graph.inputs[0].dims[0]; d != wantDim {
			t.Errorf("opset %d: batch axis %q, want %q", tc.opset, d, wantDim)
		}
	}
}

// dummyCell is a TemporalCell for a video modality the exporter rejects.
type dummyCell struct{}

func (dummyCell) Run(c *nn.Ctx, steps []*G.Node) (*G.Node, error) { return steps[len(steps)-1], nil }

// dummyPre is a registered custom preprocessor kind.
type dummyPre struct{}

func (dummyPre) Kind() string                                  { return "export_test_kind" }
func (dummyPre) InputShape(b int) []int                        { return []int{b, featDim} }
func (dummyPre) IntInput() bool                                { return false }
func (dummyPre) OutputDim() int                                { return featDim }
func (dummyPre) Forward(c *nn.Ctx, x *G.Node) (*G.Node, error) { return x, nil }

// TestONNXErrors checks that what the exporter cannot write is an error
// naming the modality, layer or parameter, never a partial graph.
func TestONNXErrors(t *testing.T) {
	net, store := buildCase(t, structureCase())
	var buf bytes.Buffer
	expect := func(what string, err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("%s: error %q does not mention %q", what, err, p)
			}
		}
	}
	expect("opset 12", ONNX(net, store, &buf, ONNXOptions{Opset: 12}), "opset 12")
	expect("negative batch", ONNX(net, store, &buf, ONNXOptions{Batch: -2}), "batch")
	empty, _ := nn.NewStore(tensor.Float32, 1)
	expect("empty store", ONNX(net, empty, &buf, ONNXOptions{}), `"a.pre.out.weight" is not in the store`)

	extra := structureCase()
	net2, store2 := buildCase(t, extra)
	if _, err := store2.Get("head.extra.weight", []int{2}, nn.Zeros(), true); err != nil {
		t.Fatal(err)
	}
	expect("unused parameter", ONNX(net2, store2, &buf, ONNXOptions{}), "head.extra.weight", "does not use")

	video := videoFrames
	video.Video.Temporal, video.Video.Cell = "liquid", dummyCell{}
	vnet, err := model.NewNetwork(model.NetworkConfig{Modalities: mods("clip", video, enc()),
		Fusion: fusion.Config{Strategy: fusion.Early, Dim: 4}, OutputDim: 2})
	if err != nil {
		t.Fatal(err)
	}
	expect("video liquid", ONNX(vnet, empty, &buf, ONNXOptions{}), `modality "clip"`, "clip.pre.temporal", `"liquid"`)

	if err := modality.Register("export_test_kind", func(modality.Config) (modality.Preprocessor, error) { return dummyPre{}, nil }); err != nil &&
		!strings.Contains(err.Error(), "already registered") {
		t.Fatal(err)
	}
	cnet, err := model.NewNetwork(model.NetworkConfig{Modalities: mods("custom", modality.Config{Kind: "export_test_kind"}, enc()),
		Fusion: fusion.Config{Strategy: fusion.Early, Dim: 4}, OutputDim: 2})
	if err != nil {
		t.Fatal(err)
	}
	expect("custom kind", ONNX(cnet, empty, &buf, ONNXOptions{}), `modality "custom"`, "export_test_kind", "not supported")
	if buf.Len() != 0 {
		t.Errorf("failed exports wrote %d bytes", buf.Len())
	}
}

// TestONNXFile checks the atomic file writer: the file decodes to the same
// model ONNX writes, and a failed export leaves no file behind.
func TestONNXFile(t *testing.T) {
	net, store := buildCase(t, structureCase())
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := ONNXFile(net, store, path, ONNXOptions{Batch: 1}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ONNX(net, store, &buf, ONNXOptions{Batch: 1}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, buf.Bytes()) {
		t.Errorf("file has %d bytes, ONNX writes %d different ones", len(data), buf.Len())
	}
	bad := filepath.Join(dir, "bad.onnx")
	if err := ONNXFile(net, store, bad, ONNXOptions{Opset: 99}); err == nil {
		t.Error("opset 99: no error")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("after a failed export the directory holds %d entries, want only model.onnx", len(entries))
	}
}
