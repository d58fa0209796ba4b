package export

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/safetensors"
)

// Opset bounds of the ONNX writer (the default ai.onnx domain).
const (
	DefaultOpset = 17
	MinOpset     = 13
	MaxOpset     = 21
)

// Output names of the exported graph, by head kind.
const (
	// OutputLogits is the classification head's output [B, output_dim].
	OutputLogits = "logits"
	// OutputValues is the regression head's output [B, output_dim].
	OutputValues = "values"
	// OutputTokenLogits is the tokens head's output [B, token_len, vocab].
	OutputTokenLogits = "token_logits"
)

// ONNXOptions tune the ONNX export.
type ONNXOptions struct {
	// Opset is the ai.onnx opset version, in [13, 21]; 0 means 17. From
	// opset 17 layer norms are LayerNormalization nodes (decomposed before);
	// from opset 20 GELU is a Gelu node (Erf-based before).
	Opset int
	// Batch fixes the batch axis of every input and output; 0 makes it a
	// dynamic axis named "batch".
	Batch int
	// Metadata is stored in the model's metadata_props (e.g. the resolved
	// experiment config); keys starting with "lsfuse." are the exporter's.
	Metadata map[string]string
}

// OutputName returns the name of the exported graph's output for a head
// kind (model.HeadClassification, HeadRegression, HeadTokens; "" means
// classification).
func OutputName(head string) string {
	switch head {
	case model.HeadRegression:
		return OutputValues
	case model.HeadTokens:
		return OutputTokenLogits
	}
	return OutputLogits
}

// ONNX writes net's inference graph, with the weights of store as
// initializers, to w as an ONNX ModelProto.
//
// The graph is the evaluation graph of model.Network.Build: dropout off,
// batch norms on their running statistics, modality dropout off and every
// modality present (no presence inputs; the missing embeddings are not
// used). The spiking encoder's LIF recurrence and the CfC or LTC cell are
// unrolled over the T = num_spike_steps steps into plain ONNX nodes: the
// Heaviside spike is Greater + Cast, linear layers are Gemm (MatMul + Add
// on sequences), attention is MatMul + Softmax, the log-mel front end is a
// Gather of sample indices and MatMul with the constant DFT and mel
// matrices, embeddings are Gather.
//
// Inputs are named after the modalities (sorted), shaped as the
// preprocessors' InputShape: float32 [B, C, H, W] (vision), [B, samples]
// (audio), int64 token ids [B, seq_len] (text), float32 [B, sensors, time]
// (sensor), [B, frames, C, H, W] (video), [B, input_dim] (mlp). The output
// is OutputName(head): float32 [B, output_dim], or [B, token_len,
// output_dim] for the tokens head. Initializers carry the store's dotted
// parameter names (float32); fixed matrices (DFT, mel filterbank, frame
// indices, sinusoidal positions) are initializers under the layer's scope.
//
// A variant the exporter does not support (a registered custom
// preprocessor, a custom video TemporalCell) is an error naming the
// modality and layer, as is a store that does not match the network; so
// is a parameter of the network's modalities, fusion or head that the
// exported graph would not use. ONNX never writes a partial or silently
// different graph.
func ONNX(net *model.Network, store *nn.Store, w io.Writer, opts ONNXOptions) error {
	if net == nil || store == nil {
		return fmt.Errorf("export onnx: nil network or store")
	}
	if cfg := net.Config(); cfg.Head == model.HeadCaption || len(cfg.Align) > 0 {
		// The autoregressive decoder and the step-driven aligned encoders
		// have no ONNX builder yet; exporting the rest would be a
		// different model with the same weights.
		return fmt.Errorf("export onnx: caption heads and temporally aligned modalities (temporal_align) are not supported; export safetensors weights instead")
	}
	opset := opts.Opset
	if opset == 0 {
		opset = DefaultOpset
	}
	if opset < MinOpset || opset > MaxOpset {
		return fmt.Errorf("export onnx: opset %d is not supported (want %d to %d)", opset, MinOpset, MaxOpset)
	}
	if opts.Batch < 0 {
		return fmt.Errorf("export onnx: batch must be positive, or 0 for a dynamic batch axis; got %d", opts.Batch)
	}
	batch := opts.Batch
	if batch == 0 {
		batch = -1
	}
	b := newBuilder(store, opset, batch)
	if err := buildNetwork(b, net); err != nil {
		return err
	}
	if err := checkUnused(b, net); err != nil {
		return err
	}
	if _, err := w.Write(b.encodeModel(onnxMetadata(net, opts.Metadata), onnxDoc(b))); err != nil {
		return fmt.Errorf("export onnx: write: %w", err)
	}
	return nil
}

// ONNXFile writes the model of ONNX to path atomically (temporary file,
// fsync, rename): a failed export leaves no file, or the previous one.
func ONNXFile(net *model.Network, store *nn.Store, path string, opts ONNXOptions) error {
	var buf bytes.Buffer
	if err := ONNX(net, store, &buf, opts); err != nil {
		return err
	}
	if err := safetensors.WriteAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("export onnx: %w", err)
	}
	return nil
}

// buildNetwork adds the inputs, modalities, fusion, head and output.
func buildNetwork(b *builder, net *model.Network) error {
	root := scope{b: b}
	cfg := net.Config()
	names := net.Names()
	out := OutputName(cfg.Head)
	feats := make([]value, 0, len(names))
	for _, name := range names {
		if name == out {
			return fmt.Errorf("export onnx: modality %q has the name of the graph's output: rename the modality", name)
		}
		p := net.Preprocessor(name)
		mc := cfg.Modalities[name]
		dt := tFloat
		if p.IntInput() {
			dt = tInt64
		}
		x := b.input(name, dt, p.InputShape(b.batch))
		ms := root.sub(name)
		h := preprocessor(ms.sub("pre"), name, mc.Preprocessor, x)
		if b.err != nil {
			return b.err
		}
		if !equalInts(h.shape, []int{b.batch, p.OutputDim()}) {
			return fmt.Errorf("export onnx: modality %q: preprocessor gives %v, want [batch, %d]", name, h.shape, p.OutputDim())
		}
		feat, _ := encoder(ms.sub("encoder"), net.Encoder(name).Config(), h)
		feats = append(feats, feat)
	}
	fs := root.sub(model.FusionScope)
	y := fuse(fs, net.Fusion().Config(), net.Fusion().Names(), feats, networkHead(root, cfg))
	if b.err != nil {
		return b.err
	}
	want := []int{b.batch, cfg.OutputDim}
	if cfg.Head == model.HeadTokens {
		want = []int{b.batch, cfg.TokenLen, cfg.OutputDim}
	}
	if !equalInts(y.shape, want) {
		return fmt.Errorf("export onnx: the exported output has shape %v, the network's is %v", y.shape, want)
	}
	root.output(out, y)
	return b.err
}

// checkUnused fails when a store parameter of the network's modalities,
// fusion or head is not in the graph: the exporter would have left out
// the layer that owns it. The missing-modality embeddings are the only
// parameters the evaluation graph legitimately ignores.
func checkUnused(b *builder, net *model.Network) error {
	prefixes := append(net.Names(), model.FusionScope, "head")
	var unused []string
	for _, p := range b.store.Params() {
		if b.used[p.Name] || nn.HasPathPrefix(p.Name, model.FusionScope+"."+fusion.MissingParam) {
			continue
		}
		for _, pre := range prefixes {
			if nn.HasPathPrefix(p.Name, pre) {
				unused = append(unused, p.Name)
				break
			}
		}
	}
	if len(unused) > 0 {
		if len(unused) > 8 {
			unused = append(unused[:8], fmt.Sprintf("and %d more", len(unused)-8))
		}
		return fmt.Errorf("export onnx: the store holds parameters the exported graph does not use: %s (the exporter does not cover the layer that owns them, or the store belongs to another model)",
			strings.Join(unused, ", "))
	}
	return nil
}

func onnxMetadata(net *model.Network, extra map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range extra {
		m[k] = v
	}
	cfg := net.Config()
	m["lsfuse.modalities"] = strings.Join(net.Names(), ",")
	m["lsfuse.fusion"] = net.Fusion().Config().Strategy
	m["lsfuse.head"] = cfg.Head
	m["lsfuse.output"] = OutputName(cfg.Head)
	return m
}

func onnxDoc(b *builder) string {
	parts := make([]string, 0, len(b.inputs))
	for _, in := range b.inputs {
		t := "float32"
		if in.dt == tInt64 {
			t = "int64"
		}
		parts = append(parts, fmt.Sprintf("%s %s%v", in.name, t, in.shape))
	}
	sort.Strings(parts)
	return "lsfuse liquid-spiking fusion network (inference graph, all modalities present). Inputs: " +
		strings.Join(parts, ", ") + "; a dimension -1 is the dynamic batch axis."
}
