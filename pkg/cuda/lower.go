package cuda

import (
	"fmt"
	"sort"
	"strings"

	G "gorgonia.org/gorgonia"
)

// Kind says how the executor runs an op on the GPU.
type Kind int

const (
	// Kernel ops run embedded CUDA kernels (kernels/*.cu).
	Kernel Kind = iota
	// BLAS ops run cuBLAS GEMMs, plus the listed kernels around them.
	BLAS
	// View ops move no data: the output aliases the input's device
	// memory with another shape.
	View
	// Const ops are uploaded once when the executor is built.
	Const
	// Host ops are documented fallbacks: the input is copied to the host,
	// the op's own Gorgonia Do runs there, and the output is copied back.
	// Each one's Note says why that is acceptable.
	Host
)

// String is the kind's short name ("kernel", "cublas", ...).
func (k Kind) String() string {
	return [...]string{"kernel", "cublas", "view", "const", "host"}[k]
}

// Rule maps an op family to its GPU implementation.
type Rule struct {
	// Family is the op family (see Family).
	Family string
	// Kind is how it runs.
	Kind Kind
	// Kernels are the CUDA kernels it launches, in order (names in
	// KernelParams); cuBLAS calls are named "cublas:sgemm" or
	// "cublas:sgemm_batched".
	Kernels []string
	// Note documents the mapping (and, for Host, why the fallback is
	// acceptable and what would replace it).
	Note string
}

// hostWhen holds, per family, a test of the op instances (by op name)
// that the family's kernels do not cover: it returns the reason, and
// those instances run as Host steps.
var hostWhen = map[string]func(opName string) string{"LIFSeq": lifHost, "LIFSeq/grad": lifHost, "CfCSeq": cfcHost, "CfCSeq/grad": cfcHost}

// indexFamilies are the op families that compute integer index values
// (token ids) from integer inputs. They run on the host, where the ids
// are bound with the batch, and their int32 result is uploaded; the ops
// that read it (cross-entropy labels, embedding ids) see it as an input.
var indexFamilies = map[string]bool{"TokenSlice": true}

// cfcHost sends the CfCSeq instances the kernels do not know to the
// host: a mode or backbone activation parseCfC does not list (every one
// model builds today runs on the device).
func cfcHost(name string) string {
	if _, ok := parseCfC(name); !ok {
		return "CfCSeq with a mode or backbone activation the kernels do not know"
	}
	return ""
}

// lifHost sends the LIFSeq variants the kernels lack to the host: the
// smooth forward (nn.Surrogate.Smooth, m·F(x) instead of H(x)), which only
// float64 finite-difference gradient checks use, never training — and
// the CUDA executor is float32 only.
func lifHost(name string) string {
	if strings.Contains(name, "smooth=true") {
		return "LIFSeq with the smooth forward: float64 gradient checks only (the CUDA executor is float32), never trained: host"
	}
	return ""
}

const (
	gemm        = "cublas:sgemm"
	gemmBatched = "cublas:sgemm_batched"
)

// rules is the lowering table. Every op of every shipped configuration's
// training graph must match one (TestLoweringCoversConfigs).
var rules = []Rule{
	// Gorgonia's own ops.
	{"gorgonia.elemBinOp:+", Kernel, []string{"lsf_add", "lsf_add_row"}, "same shape, broadcast row, or a one-value operand (lsf_add_row with a row of one)"},
	{"gorgonia.elemBinOp:-", Kernel, []string{"lsf_sub", "lsf_neg", "lsf_add_row"}, "a one-value operand (a device scalar) via an addition of its negation, or of the negated tensor"},
	{"gorgonia.elemBinOp:⊙", Kernel, []string{"lsf_mul", "lsf_mul_row", "lsf_scale"}, "Hadamard product; scalar operand (loss scale) via lsf_scale"},
	{"gorgonia.elemBinOp:÷", Kernel, []string{"lsf_div", "lsf_div_row"}, "same shape, or a one-value divisor (lsf_div_row divides, as the CPU does, rather than multiplying by 1/s)"},
	{"gorgonia.elemUnaryOp:neg", Kernel, []string{"lsf_neg"}, ""},
	{"gorgonia.elemUnaryOp:ln", Kernel, []string{"lsf_log"}, ""},
	{"gorgonia.elemUnaryOp:exp", Kernel, []string{"lsf_exp"}, ""},
	{"gorgonia.elemUnaryOp:square", Kernel, []string{"lsf_square"}, ""},
	{"gorgonia.elemUnaryOp:tanh", Kernel, []string{"lsf_tanh"}, ""},
	{"gorgonia.elemUnaryOp:sigmoid", Kernel, []string{"lsf_sigmoid"}, ""},
	{"gorgonia.linAlgBinOp", BLAS, []string{gemm, gemmBatched}, "matmul, transposed matmul and batched matmul"},
	{"gorgonia.sumOp", Kernel, []string{"lsf_sum_mid", "lsf_sum_all"}, "one axis: [outer,len,inner] view; all axes: block reduction"},
	{"gorgonia.repeatOp", Kernel, []string{"lsf_broadcast_mid"}, "the backward of sumOp"},
	{"gorgonia.reshapeOp", View, nil, "contiguous row-major: same device buffer"},
	{"gorgonia.sizeOp", Const, nil, "a shape-derived scalar, known when the graph is built"},
	{"gorgonia.constantScalar", Const, nil, ""},
	{"gorgonia.constantTensor", Const, nil, ""},

	// pkg/nn kernels.
	{"Add", Kernel, []string{"lsf_add"}, ""},
	{"Linear", BLAS, []string{gemm, "lsf_add_row"}, "y = x·Wᵀ (+ bias row)"},
	{"LinearDX", BLAS, []string{gemm}, "dx = g·W"},
	{"LinearDW", BLAS, []string{gemm}, "dW = gᵀ·x"},
	{"LinearDB", Kernel, []string{"lsf_sum_rows"}, ""},
	{"SumLeading", Kernel, []string{"lsf_sum_rows"}, ""},
	{"Reshape", View, nil, ""},
	{"SliceAxis", Kernel, []string{"lsf_slice_get"}, ""},
	{"PadAxis", Kernel, []string{"lsf_fill", "lsf_slice_put"}, "the backward of SliceAxis"},
	{"Concat", Kernel, []string{"lsf_slice_put"}, "one launch per input"},
	{"ReLU", Kernel, []string{"lsf_relu"}, ""},
	{"ReLU/grad", Kernel, []string{"lsf_relu_grad"}, ""},
	{"Tanh", Kernel, []string{"lsf_tanh"}, ""},
	{"Tanh/grad", Kernel, []string{"lsf_tanh", "lsf_tanh_grad"}, "the op gets x (nn.Pointwise), the kernel wants y: y recomputed first"},
	{"Sigmoid", Kernel, []string{"lsf_sigmoid"}, ""},
	{"Sigmoid/grad", Kernel, []string{"lsf_sigmoid", "lsf_sigmoid_grad"}, "as Tanh/grad"},
	{"SiLU", Kernel, []string{"lsf_silu"}, ""},
	{"SiLU/grad", Kernel, []string{"lsf_silu_grad"}, ""},
	{"GELU", Kernel, []string{"lsf_gelu"}, ""},
	{"GELU/grad", Kernel, []string{"lsf_gelu_grad"}, ""},
	{"LeCunTanh", Kernel, []string{"lsf_lecun_tanh"}, ""},
	{"LeCunTanh/grad", Kernel, []string{"lsf_lecun_tanh_grad"}, ""},
	{"Heaviside", Kernel, []string{"lsf_heaviside"}, ""},
	{"Spike", Kernel, []string{"lsf_heaviside"}, "S = H(x), strict >"},
	{"Spike/grad", Kernel, []string{"lsf_spike_grad"}, "fast_sigmoid, atan or sigmoid surrogate (kind argument)"},
	{"SpikeStats", Kernel, []string{"lsf_scale", "lsf_spike_stats"}, "spike-rate telemetry of one [T·B, N] tensor (the fused LIF's), or of T per-step [B, N] inputs (unfused encoders) first copied into one"},
	{"LayerNorm", Kernel, []string{"lsf_layernorm"}, ""},
	{"LayerNorm/dx", Kernel, []string{"lsf_layernorm_grad_x"}, "recomputes mean/rstd saved by the forward"},
	{"LayerNorm/dweight", Kernel, []string{"lsf_layernorm_grad_wb"}, ""},
	{"MeanAxes", Kernel, []string{"lsf_sum_mid"}, "scale 1/len"},
	{"BroadcastMean", Kernel, []string{"lsf_broadcast_mid"}, ""},
	{"ChannelSum", Kernel, []string{"lsf_channel_sum"}, "convolution bias gradient"},
	{"Conv1d", BLAS, []string{"lsf_im2col2d", "lsf_im2col3d", gemm, "lsf_add_channel"}, "as a 2-D convolution of height 1 (im2col, W[OutC,C·k]·cols); dilated: the 3-D column kernel (as Conv3d)"},
	{"Conv1dInputGrad", BLAS, []string{gemm, "lsf_col2im2d", "lsf_col2im3d"}, ""},
	{"Conv1dWeightGrad", BLAS, []string{"lsf_im2col2d", "lsf_im2col3d", gemm}, ""},
	{"Conv2d", BLAS, []string{"lsf_im2col2d", gemm, "lsf_add_channel"}, ""},
	{"Conv2dInputGrad", BLAS, []string{gemm, "lsf_col2im2d"}, ""},
	{"Conv2dWeightGrad", BLAS, []string{"lsf_im2col2d", gemm}, ""},
	{"Conv3d", BLAS, []string{"lsf_im2col3d", gemm, "lsf_add_channel"}, "vol2col of all B·C planes in one launch, then W_g·cols per (sample, group) as one batched GEMM; per-axis stride, padding and dilation, groups"},
	{"Conv3dInputGrad", BLAS, []string{gemm, "lsf_col2im3d"}, "dcols = W_gᵀ·dy per (sample, group), then the adjoint of vol2col as a gather per input element (no atomics: deterministic)"},
	{"Conv3dWeightGrad", BLAS, []string{"lsf_im2col3d", "lsf_swap12", gemm}, "dW_g = Σ_b dy_bg·cols_bgᵀ as one GEMM per group over the B·P positions (batch moved inside by lsf_swap12)"},
	{"MaxPool1d", Kernel, []string{"lsf_maxpool1d"}, "argmax saved for the backward"},
	{"MaxPool1dGrad", Kernel, []string{"lsf_maxpool1d_grad"}, ""},
	{"MaxPool2d", Kernel, []string{"lsf_maxpool2d"}, "argmax (flat index in the plane) saved for the backward"},
	{"MaxPool2dGrad", Kernel, []string{"lsf_maxpool2d", "lsf_fill", "lsf_maxpool1d_grad"}, "argmax recomputed, then the 1-D scatter over the flattened planes"},
	{"BatchNorm", Kernel, []string{"lsf_channel_stats", "lsf_bn_running", "lsf_channel_affine"}, "running statistics device-resident and updated there (Session.Download brings them to the host)"},
	{"BatchNormInputGrad", Kernel, []string{"lsf_channel_stats", "lsf_bn_grad_sums", "lsf_bn_grad_x"}, "batch statistics recomputed in training, running ones in evaluation"},
	{"BatchNormWeightGrad", Kernel, []string{"lsf_channel_stats", "lsf_bn_grad_sums"}, "dγ = Σ g·x̂ (the sgx output)"},
	{"Dropout", Kernel, []string{"lsf_mul"}, "mask (keep/(1−p)) drawn on the host by the op's own RNG, as the op's CPU code applied to ones (GPU and CPU runs identical), uploaded, then applied on the device: no download, no wait"},
	{"Dropout/grad", Kernel, []string{"lsf_mul"}, "the same mask, read from the op the same way (the gradient op reuses its forward's draw)"},
	{"Embedding", Kernel, []string{"lsf_gather_rows"}, ""},
	{"Embedding/grad", Kernel, []string{"lsf_fill", "lsf_scatter_add_rows"}, ""},
	{"AttentionWeights", BLAS, []string{gemmBatched, "lsf_softmax"}, "softmax(Q·Kᵀ/√d) per head, key mask"},
	{"AttentionWeights/dq", BLAS, []string{"lsf_softmax_grad", gemmBatched}, ""},
	{"AttentionWeights/dk", BLAS, []string{"lsf_softmax_grad", gemmBatched}, ""},
	{"AttentionApply", BLAS, []string{gemmBatched}, "A·V per head"},
	{"AttentionApply/da", BLAS, []string{gemmBatched}, ""},
	{"AttentionApply/dv", BLAS, []string{gemmBatched}, ""},
	{"CrossEntropy", Kernel, []string{"lsf_xent", "lsf_sum_all"}, "mean over non-ignored rows"},
	{"CrossEntropy/grad", Kernel, []string{"lsf_xent_grad"}, ""},
	{"MSE", Kernel, []string{"lsf_sub", "lsf_square", "lsf_sum_all"}, ""},
	{"MSE/grad", Kernel, []string{"lsf_sub", "lsf_scale"}, ""},

	// pkg/fusion.
	{"fusion.Scale", Kernel, []string{"lsf_scale"}, ""},
	{"fusion.Weighted", Kernel, []string{"lsf_weighted"}, "w = softmax(logits) recomputed per thread (M ≤ a few)"},
	{"fusion.WeightedLogitGrad", Kernel, []string{"lsf_weighted_logit_grad"}, ""},
	{"fusion.Substitute", Kernel, []string{"lsf_substitute"}, ""},
	{"fusion.MaskRows", Kernel, []string{"lsf_mask_rows"}, ""},
	{"fusion.MissingGrad", Kernel, []string{"lsf_missing_grad"}, ""},
	{"fusion.ModalityKeepMask", Host, nil, "[B,M] keep mask from the op's RNG: bytes, drawn on the host so GPU and CPU runs keep the same samples"},

	// pkg/modality.
	{"modality.Swap12", Kernel, []string{"lsf_swap12"}, ""},
	{"modality.Gather", Kernel, []string{"lsf_gather_cols"}, "STFT framing; the op's index table, read by running its CPU code once on a probe, uploaded once"},
	{"modality.Scatter", Host, nil, "the adjoint of the STFT framing: only a gradient into the raw waveform (never: audio samples are data) needs it"},
	{"modality.TokenWeights", Host, nil, "[B,L] pooling weights from integer token ids, no gradient: the ids are on the host with the batch"},
	{"modality.WeightedSumL", Kernel, []string{"lsf_weighted_sum_l"}, ""},
	{"modality.SpreadL", Kernel, []string{"lsf_spread_l"}, ""},
	{"modality.MaskedMaxL", Kernel, []string{"lsf_masked_max_l"}, "max pooling of text features (pooling: max), one thread per (sample, feature)"},
	{"modality.MaskedMaxLGrad", Kernel, []string{"lsf_masked_max_l_grad"}, "g to each arg-max (the first on ties, as the CPU), every element written"},

	// pkg/model fused sequence ops (the performance issue's ops).
	{"LIFSeq", Kernel, []string{"lsf_lif_seq_forward"}, "fixed or learnable (per-neuron, β clamped to [0, 1]) β and θ, binary or graded spikes, every reset mode; the smooth gradient-check forward: host (see hostWhen)"},
	{"LIFSeq/grad", Kernel, []string{"lsf_lif_seq_forward", "lsf_lif_seq_backward", "lsf_sum_rows"}, "membranes recomputed, then backpropagation through time, one thread per neuron and sample; dβ, dθ, dg as per-sample sums over time reduced over the batch by lsf_sum_rows (deterministic, no atomics); smooth: host"},
	{"CfCSeq", BLAS, []string{gemm, "lsf_cfc_bias_act", "lsf_cfc_heads"}, "per step: h·W_hᵀ and the heads as cuBLAS GEMMs (the input projection of all steps as one), bias+activation and the heads (default and no_gate gates, or pure mode's A − A·e·f) as kernels; every backbone activation, silu and gelu keeping their pre-activation in the cache for the backward"},
	{"CfCSeq/grad", BLAS, []string{"lsf_cfc_heads_grad", gemm, "lsf_cfc_act_grad", "lsf_sum_rows"}, "backpropagation through time from the forward's cache, per step; weight gradients as single GEMMs over all T·B rows; pure mode's dw_τ and dA as per-row contributions reduced over the T·B rows by lsf_sum_rows (deterministic, no atomics)"},
	{"TemporalResample", Kernel, []string{"lsf_mix_rows"}, "linear interpolation along the time axis (aligned modalities) and its adjoint: a row mix whose tap table is uploaded once"},
	{"SwapAxes01", Kernel, []string{"lsf_swap12"}, "[A, B, D] → [B, A, D] (fused aligned encoders): lsf_swap12 with one outer block"},
	{"TokenSlice", Host, nil, "integer token ids sliced (caption labels and decoder inputs): the ids are bound on the host with the batch and the loss and embedding check them there, so slicing them there costs one small int32 upload and no download"},
	{"Softplus", Kernel, []string{"lsf_softplus"}, "LTC parameters (threshold 20; another threshold runs on the host)"},
	{"Softplus/grad", Kernel, []string{"lsf_softplus_grad"}, "as Softplus"},
	{"LTCSynapses", Kernel, []string{"lsf_ltc_synapses"}, "LTC backbone (backbone: ltc): one thread per output value summing over the presynaptic neurons"},
	{"LTCSynapsesGrad", Kernel, []string{"lsf_ltc_synapses_grad_v", "lsf_ltc_synapses_grad_p"}, "dv one thread per (sample, neuron), the four parameter gradients one thread per synapse summing over the batch: no atomics"},
}

// SupportKernels are kernels the executor itself launches outside any
// op's rule, with what for.
var SupportKernels = map[string]string{
	"lsf_accum":     "adds a step's gradients into the bound ones (DESIGN.md fact 4: RunAll adds)",
	"lsf_adam":      "in-place Adam update, zeroing the gradient",
	"lsf_fill":      "zeroes gradients and outputs",
	"lsf_sum_sq":    "per-tensor sums of squares of the gradients for the trainer's finite check and clipping (Machine.GradSumSquares): the gradients stay on the device",
	"lsf_pack_f16":  "mixed precision fp16: packs both inputs of every cuBLAS call into 16-bit scratch buffers for cublasGemmEx (MixedPrecision)",
	"lsf_pack_bf16": "mixed precision bf16: as lsf_pack_f16",
}

// Rules returns the lowering table, sorted by family.
func Rules() []Rule {
	out := append([]Rule(nil), rules...)
	sort.Slice(out, func(i, j int) bool { return out[i].Family < out[j].Family })
	return out
}

// ruleOf finds the rule of a family.
func ruleOf(family string) (Rule, bool) {
	for _, r := range rules {
		if r.Family == family {
			return r, true
		}
	}
	return Rule{}, false
}

// Family names the op's family: "gorgonia.<type>:<symbol>" for Gorgonia's
// elementwise ops, "gorgonia.<type>" for its other ops, and for nn.Kernel
// ops the kernel name up to its first '{' or '(' (parameters), with
// "/grad", "/dx", ... kept; spike ops (named Spike<kind>(...)) are
// "Spike". The empty string means an input (no op).
func Family(op G.Op) string {
	if op == nil {
		return ""
	}
	return familyOf(strings.TrimPrefix(fmt.Sprintf("%T", op), "*"), op.String())
}

// familyOf is Family from the op's Go type name and String.
func familyOf(typ, name string) string {
	if strings.HasPrefix(typ, "gorgonia.") {
		switch typ {
		case "gorgonia.elemBinOp", "gorgonia.elemUnaryOp":
			return typ + ":" + strings.Fields(name + " ?")[0]
		}
		return typ
	}
	// The suffix ("/grad", "/dx") follows the parameters, which may hold
	// '/' themselves ("learn=false/false").
	base, suffix := name, ""
	if i := strings.IndexAny(name, "{("); i >= 0 {
		base = name[:i]
		if j := strings.LastIndexAny(name, "})"); j > i && strings.HasPrefix(name[j+1:], "/") {
			suffix = name[j+1:]
		}
	} else if j := strings.LastIndex(name, "/"); j > 0 {
		base, suffix = name[:j], name[j:]
	}
	if strings.HasPrefix(base, "Spike") && base != "SpikeStats" {
		base = "Spike"
	}
	return base + suffix
}

// Step is one op of a lowered graph.
type Step struct {
	// Node is the graph node (its op, shape and children).
	Node *G.Node
	// Family is Family(Node.Op()).
	Family string
	// Rule is how it runs on the GPU.
	Rule Rule
}

// Plan is a lowered graph: its ops in the order they were found, and the
// families no rule covers.
type Plan struct {
	// Steps are the covered ops.
	Steps []Step
	// Inputs counts the nodes without an op (inputs and parameters: device
	// buffers the executor binds).
	Inputs int
	// Uncovered lists each uncovered family once, with an example op name.
	Uncovered map[string]string
}

// Lower maps every op of g (a built graph, usually with its symbolic
// backward) to its rule. Ops no rule covers are collected in
// Plan.Uncovered and returned as an error naming them all.
func Lower(g *G.ExprGraph) (*Plan, error) {
	p := &Plan{Uncovered: map[string]string{}}
	for _, n := range g.AllNodes() {
		fam := Family(n.Op())
		if fam == "" {
			p.Inputs++
			continue
		}
		r, ok := ruleOf(fam)
		if !ok {
			if _, seen := p.Uncovered[fam]; !seen {
				p.Uncovered[fam] = n.Op().String()
			}
			continue
		}
		if host := hostWhen[fam]; host != nil {
			if why := host(n.Op().String()); why != "" {
				r = Rule{Family: r.Family, Kind: Host, Note: why}
			}
		}
		p.Steps = append(p.Steps, Step{Node: n, Family: fam, Rule: r})
	}
	if len(p.Uncovered) > 0 {
		var fams []string
		for f, ex := range p.Uncovered {
			fams = append(fams, fmt.Sprintf("%s (e.g. %s)", f, ex))
		}
		sort.Strings(fams)
		return p, fmt.Errorf("cuda: no GPU lowering for %d op families: %s", len(fams), strings.Join(fams, "; "))
	}
	return p, nil
}

// Counts returns the number of steps of each kind.
func (p *Plan) Counts() map[Kind]int {
	out := map[Kind]int{}
	for _, s := range p.Steps {
		out[s.Rule.Kind]++
	}
	return out
}

// HostFamilies lists the families of the plan that run as host
// fallbacks, sorted.
func (p *Plan) HostFamilies() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range p.Steps {
		if s.Rule.Kind == Host && !seen[s.Family] {
			seen[s.Family] = true
			out = append(out, s.Family)
		}
	}
	sort.Strings(out)
	return out
}
