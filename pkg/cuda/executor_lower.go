package cuda

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A lowering turns one step into its GPU work, planned once: buffers,
// sizes and kernel arguments are fixed when the machine is built (every
// node keeps its buffer), so a run only replays the launches. It returns
// nil (and no error) for an instance it does not cover; the step then
// runs as a host fallback, which is always correct.
type lowering func(m *Machine, st *xstep) (func() error, error)

// lowerings are the families with a GPU implementation in the executor.
// A family Lower maps to kernels but absent here runs on the host
// (Machine.HostSteps lists them).
var lowerings = map[string]lowering{
	"gorgonia.elemBinOp:+":         lowerBinary("lsf_add", "lsf_add_row", true),
	"gorgonia.elemBinOp:-":         lowerSub,
	"gorgonia.elemBinOp:⊙":         lowerBinary("lsf_mul", "lsf_mul_row", true),
	"gorgonia.elemBinOp:÷":         lowerBinary("lsf_div", "lsf_div_row", false),
	"gorgonia.elemUnaryOp:neg":     lowerUnary("lsf_neg"),
	"gorgonia.elemUnaryOp:ln":      lowerUnary("lsf_log"),
	"gorgonia.elemUnaryOp:exp":     lowerUnary("lsf_exp"),
	"gorgonia.elemUnaryOp:square":  lowerUnary("lsf_square"),
	"gorgonia.elemUnaryOp:tanh":    lowerUnary("lsf_tanh"),
	"gorgonia.elemUnaryOp:sigmoid": lowerUnary("lsf_sigmoid"),
	"gorgonia.linAlgBinOp":         lowerMatMul,
	"gorgonia.sumOp":               lowerSum,
	"gorgonia.repeatOp":            lowerRepeat,
	"Add":                          lowerBinary("lsf_add", "", false),
	"Linear":                       lowerLinear,
	"LinearDX":                     lowerLinearDX,
	"LinearDW":                     lowerLinearDW,
	"LinearDB":                     lowerSumRows,
	"SumLeading":                   lowerSumRows,
	"SliceAxis":                    lowerSlice,
	"PadAxis":                      lowerPad,
	"Concat":                       lowerConcat,
	"ReLU":                         lowerUnary("lsf_relu"),
	"ReLU/grad":                    lowerUnaryGrad("", "lsf_relu_grad"),
	"Tanh":                         lowerUnary("lsf_tanh"),
	"Tanh/grad":                    lowerUnaryGrad("lsf_tanh", "lsf_tanh_grad"),
	"Sigmoid":                      lowerUnary("lsf_sigmoid"),
	"Sigmoid/grad":                 lowerUnaryGrad("lsf_sigmoid", "lsf_sigmoid_grad"),
	"SiLU":                         lowerUnary("lsf_silu"),
	"SiLU/grad":                    lowerUnaryGrad("", "lsf_silu_grad"),
	"GELU":                         lowerUnary("lsf_gelu"),
	"GELU/grad":                    lowerUnaryGrad("", "lsf_gelu_grad"),
	"LeCunTanh":                    lowerUnary("lsf_lecun_tanh"),
	"LeCunTanh/grad":               lowerUnaryGrad("", "lsf_lecun_tanh_grad"),
	"Heaviside":                    lowerUnary("lsf_heaviside"),
	"Spike":                        lowerSpike,
	"Spike/grad":                   lowerSpikeGrad,
	"MeanAxes":                     lowerMeanAxes,
	"BroadcastMean":                lowerBroadcastMean,
	"ChannelSum":                   lowerChannelSum,
	"LIFSeq":                       lowerLIF,
	"LIFSeq/grad":                  lowerLIF,
	"Embedding":                    lowerEmbedding,
	"Embedding/grad":               lowerEmbeddingGrad,
	"modality.WeightedSumL":        lowerWeightedSumL,
	"modality.SpreadL":             lowerSpreadL,
	"modality.MaskedMaxL":          lowerMaskedMaxL,
	"modality.MaskedMaxLGrad":      lowerMaskedMaxL,
	"LayerNorm":                    lowerLayerNorm,
	"LayerNorm/dx":                 lowerLayerNorm,
	"LayerNorm/dweight":            lowerLayerNorm,
	"CrossEntropy":                 lowerCrossEntropy,
	"CrossEntropy/grad":            lowerCrossEntropy,
	"AttentionWeights":             lowerAttention,
	"AttentionWeights/dq":          lowerAttention,
	"AttentionWeights/dk":          lowerAttention,
	"AttentionApply":               lowerAttention,
	"AttentionApply/da":            lowerAttention,
	"AttentionApply/dv":            lowerAttention,
	"Conv1d":                       lowerConv,
	"Conv1dInputGrad":              lowerConv,
	"Conv1dWeightGrad":             lowerConv,
	"Conv2d":                       lowerConv,
	"Conv2dInputGrad":              lowerConv,
	"Conv2dWeightGrad":             lowerConv,
	"Conv3d":                       lowerConv,
	"Conv3dInputGrad":              lowerConv,
	"Conv3dWeightGrad":             lowerConv,
	"MaxPool1d":                    lowerMaxPool1d,
	"BatchNorm":                    lowerBatchNorm,
	"BatchNormInputGrad":           lowerBatchNorm,
	"BatchNormWeightGrad":          lowerBatchNorm,
	"MaxPool1dGrad":                lowerMaxPool1d,
	"MaxPool2d":                    lowerMaxPool2d,
	"MaxPool2dGrad":                lowerMaxPool2d,
	"Dropout":                      lowerDropout,
	"Dropout/grad":                 lowerDropout,
	"SpikeStats":                   lowerSpikeStats,
	"MSE":                          lowerMSE,
	"LTCSynapses":                  lowerLTCSynapses,
	"Softplus":                     lowerSoftplus(lowerUnary("lsf_softplus")),
	"Softplus/grad":                lowerSoftplus(lowerUnaryGrad("", "lsf_softplus_grad")),
	"LTCSynapsesGrad":              lowerLTCSynapses,
	"MSE/grad":                     lowerMSE,
	"modality.Swap12":              lowerSwap12,
	"SwapAxes01":                   lowerSwapAxes01,
	"modality.Gather":              lowerGather,
	"TemporalResample":             lowerResample,
	"fusion.Scale":                 lowerFusionScale,
	"fusion.Substitute":            lowerMaskOp("lsf_substitute"),
	"fusion.MaskRows":              lowerMaskOp("lsf_mask_rows"),
	"fusion.MissingGrad":           lowerMaskOp("lsf_missing_grad"),
	"fusion.Weighted":              lowerWeighted,
	"fusion.WeightedLogitGrad":     lowerWeighted,
	"CfCSeq":                       lowerCfC,
	"CfCSeq/grad":                  lowerCfC,
}

// lower returns the step's GPU run function, or nil for the host
// fallback.
func (m *Machine) lower(st *xstep) (func() error, error) {
	f := lowerings[st.fam]
	if f == nil {
		return nil, nil
	}
	run, err := f(m, st)
	if err == nil {
		err = m.planErr
	}
	m.planErr = nil
	return run, err
}

// k1 is a planned one-thread-per-element launch.
func (m *Machine) k1(name string, n int, args ...any) func() error {
	return func() error { return launch1D(m.dev, name, n, args...) }
}

// sumRows is a planned lsf_sum_rows (launchSumRows): y[c] = Σ_r x[r, c].
func (m *Machine) sumRows(x, y Buffer, rows, cols int) func() error {
	return func() error { return launchSumRows(m.dev, x, y, rows, cols) }
}

// kRows is a planned one-block-per-row launch.
func (m *Machine) kRows(name string, rows int, args ...any) func() error {
	return func() error { return launchRows(m.dev, name, rows, args...) }
}

// gemm is a planned row-major GEMM (Device.Gemm) that overwrites c.
func (m *Machine) gemm(ta, tb bool, M, N, K int, alpha float32, a Buffer, lda int, b Buffer, ldb int, c Buffer, ldc int) func() error {
	return m.gemmBeta(ta, tb, M, N, K, alpha, a, lda, b, ldb, 0, c, ldc)
}

// gemmBeta is gemm computing c = alpha·op(a)·op(b) + beta·c. With mixed
// precision a and b are packed into 16-bit scratch buffers first
// (packOperand) and multiplied by GemmEx; an allocation failure is kept
// in m.planErr for lower to return.
func (m *Machine) gemmBeta(ta, tb bool, M, N, K int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int) func() error {
	if m.prec == PrecisionOff {
		return func() error { return m.dev.Gemm(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc) }
	}
	pa, packA, err := m.packOperand(a, operandSpan(ta, M, K, lda))
	if err != nil {
		m.planErr = err
		return func() error { return err }
	}
	pb, packB, err := m.packOperand(b, operandSpan(tb, K, N, ldb))
	if err != nil {
		m.planErr = err
		return func() error { return err }
	}
	return seq(packA, packB, func() error { return m.dev.GemmEx(m.prec, ta, tb, M, N, K, alpha, pa, lda, pb, ldb, beta, c, ldc) })
}

// operandSpan is how many values from its first one a GEMM operand op(X)
// of rows×cols with row length ld reads: X is stored cols×rows when
// trans.
func operandSpan(trans bool, rows, cols, ld int) int {
	if trans {
		rows, cols = cols, rows
	}
	if rows <= 0 || cols <= 0 {
		return 0
	}
	return (rows-1)*ld + cols
}

// packOperand plans mixed precision's conversion of a GEMM input: a
// scratch buffer of n 16-bit values (half as many 32-bit words),
// allocated now, and the launch that packs the n float32 values from x
// into it (Precision.packKernel). The GEMM then reads the scratch buffer
// with x's leading dimension; the returned view counts 16-bit values.
func (m *Machine) packOperand(x Buffer, n int) (Buffer, func() error, error) {
	s, err := m.alloc((n + 1) / 2)
	if err != nil {
		return Buffer{}, nil, err
	}
	s = s.at16(0, n)
	return s, m.k1(m.prec.packKernel(), n, x, s, n), nil
}

// packBatch is packOperand for a batched GEMM's operand: the region from
// its first matrix to the end of its last is packed into one scratch
// buffer, and the returned batch addresses the matrices there (offsets
// in 16-bit values: Buffer.at16).
func (m *Machine) packBatch(x batch, span int) (batch, func() error, error) {
	if len(x.offs) == 0 {
		return x, func() error { return nil }, nil
	}
	lo, hi := slices.Min(x.offs), slices.Max(x.offs)+span
	s, run, err := m.packOperand(x.buf.at(lo, 0), hi-lo)
	if err != nil {
		return batch{}, nil, err
	}
	offs := make([]int, len(x.offs))
	for i, o := range x.offs {
		offs[i] = o - lo
	}
	return batch{s, offs}, run, nil
}

// copyBuf is a planned device copy of src's values into dst.
func (m *Machine) copyBuf(src, dst Buffer) func() error {
	return m.k1("lsf_scale", src.N, src, float32(1), dst, src.N)
}

// batch is the matrices of one operand of a batched GEMM: a buffer and
// the offset of each matrix in it.
type batch struct {
	buf  Buffer
	offs []int
}

// gemmBatched is a planned batched GEMM: C_i = alpha·op(A_i)·op(B_i). The
// pointer arrays are uploaded once here. With mixed precision the A and
// B matrices are packed first (packBatch) and multiplied by
// GemmBatchedEx.
func (m *Machine) gemmBatched(ta, tb bool, M, N, K int, alpha float32, a batch, lda int, b batch, ldb int, c batch, ldc int) (func() error, error) {
	var packs []func() error
	at := Buffer.at // A's and B's offsets: float32 values, or 16-bit ones once packed
	if m.prec != PrecisionOff {
		pa, packA, err := m.packBatch(a, operandSpan(ta, M, K, lda))
		if err != nil {
			return nil, err
		}
		pb, packB, err := m.packBatch(b, operandSpan(tb, K, N, ldb))
		if err != nil {
			return nil, err
		}
		a, b, packs, at = pa, pb, []func() error{packA, packB}, Buffer.at16
	}
	var arrays [3]Buffer
	views := [3]func(b Buffer, off, n int) Buffer{at, at, Buffer.at} // C stays float32
	for i, x := range []batch{a, b, c} {
		addrs := make([]uintptr, len(x.offs))
		for j, o := range x.offs {
			addrs[j] = views[i](x.buf, o, 0).Ptr
		}
		p, err := m.dev.Pointers(addrs)
		if err != nil {
			return nil, err
		}
		m.owned = append(m.owned, p)
		arrays[i] = p
	}
	count := len(c.offs)
	mm := func() error {
		return m.dev.GemmBatched(ta, tb, M, N, K, alpha, arrays[0], lda, arrays[1], ldb, 0, arrays[2], ldc, count)
	}
	if m.prec != PrecisionOff {
		mm = func() error {
			return m.dev.GemmBatchedEx(m.prec, ta, tb, M, N, K, alpha, arrays[0], lda, arrays[1], ldb, 0, arrays[2], ldc, count)
		}
	}
	return seq(append(packs, mm)...), nil
}

// seq runs planned functions in order.
func seq(fs ...func() error) func() error {
	return func() error {
		for _, f := range fs {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}
}

// strided lists count offsets start, start+stride, ...
func strided(count, start, stride int) []int {
	out := make([]int, count)
	for i := range out {
		out[i] = start + i*stride
	}
	return out
}

// ---- op parameters from names and shapes ----

// opName is the step's op name (nn.Kernel names carry the parameters).
func opName(st *xstep) string { return st.op.String() }

var rangeRE = regexp.MustCompile(`[{,](\d+):(\d+)[,}]`)

// field returns the value of key=value in an op name ("" when absent).
// Names are parsed when a machine is built, never per run.
func field(name, key string) string {
	re := regexp.MustCompile(`[{,(]` + regexp.QuoteMeta(key) + `=([^,})]+)`)
	if m := re.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	return ""
}

// intField is field as an int (ok false when absent or malformed).
func intField(name, key string) (int, bool) {
	v, err := strconv.Atoi(field(name, key))
	return v, err == nil
}

// floatField is field as a float.
func floatField(name, key string) (float64, bool) {
	v, err := strconv.ParseFloat(field(name, key), 64)
	return v, err == nil
}

// intList parses "[2 2]" into its ints.
func intList(s string) ([]int, bool) {
	s = strings.Trim(s, "[]")
	var out []int
	for _, f := range strings.Fields(s) {
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, false
		}
		out = append(out, v)
	}
	return out, len(out) > 0
}

// opRange parses the "a:b" range of SliceAxis, MeanAxes and BroadcastMean
// names.
func opRange(name string) (a, b int, ok bool) {
	m := rangeRE.FindStringSubmatch(name)
	if m == nil {
		return 0, 0, false
	}
	a, _ = strconv.Atoi(m[1])
	b, _ = strconv.Atoi(m[2])
	return a, b, true
}

// prod is the product of dims (1 for none).
func prod(dims []int) int {
	p := 1
	for _, d := range dims {
		p *= d
	}
	return p
}

// split views shape as [outer, shape[from:to], inner].
func split(shape tensor.Shape, from, to int) (outer, n, inner int) {
	return prod(shape[:from]), prod(shape[from:to]), prod(shape[to:])
}

// isScalar reports whether a node holds one value (a scalar or [1]).
func isScalar(n *G.Node) bool { return size(n) == 1 }

// ---- elementwise ----

// lowerBinary lowers an elementwise binary op on equal shapes to same;
// with a one-value operand to row (period 1), swapping the operands when
// the op commutes.
func lowerBinary(same, row string, commutes bool) lowering {
	return func(m *Machine, st *xstep) (func() error, error) {
		if len(st.in) != 2 {
			return nil, nil
		}
		a, b, y := st.in[0], st.in[1], st.out
		n := y.buf.N
		switch {
		case a.buf.N == n && b.buf.N == n && (st.in[0].node.Shape().Eq(st.in[1].node.Shape()) || n == 1):
			return m.k1(same, n, a.buf, b.buf, y.buf, n), nil
		case row == "":
			return nil, nil
		case a.buf.N == n && isScalar(b.node):
			return m.k1(row, n, a.buf, b.buf, y.buf, n, 1), nil
		case commutes && b.buf.N == n && isScalar(a.node):
			return m.k1(row, n, b.buf, a.buf, y.buf, n, 1), nil
		}
		return nil, nil
	}
}

// lowerSub lowers a − b on equal shapes to lsf_sub, and with a one-value
// operand computed on the device as an addition of a negation (exact in
// IEEE arithmetic): a − s = a + (−s), s − a = (−a) + s.
func lowerSub(m *Machine, st *xstep) (func() error, error) {
	if run, err := lowerBinary("lsf_sub", "", false)(m, st); run != nil || err != nil {
		return run, err
	}
	if len(st.in) != 2 {
		return nil, nil
	}
	a, b, y := st.in[0].buf, st.in[1].buf, st.out.buf
	n := y.N
	switch {
	case a.N == n && isScalar(st.in[1].node):
		neg, err := m.alloc(1)
		if err != nil {
			return nil, err
		}
		return seq(m.k1("lsf_neg", 1, b, neg, 1), m.k1("lsf_add_row", n, a, neg, y, n, 1)), nil
	case b.N == n && isScalar(st.in[0].node):
		return seq(m.k1("lsf_neg", n, b, y, n), m.k1("lsf_add_row", n, y, a, y, n, 1)), nil
	}
	return nil, nil
}

// lowerUnary lowers y = f(x) elementwise.
func lowerUnary(kernel string) lowering {
	return func(m *Machine, st *xstep) (func() error, error) {
		if len(st.in) != 1 || st.in[0].buf.N != st.out.buf.N {
			return nil, nil
		}
		n := st.out.buf.N
		return m.k1(kernel, n, st.in[0].buf, st.out.buf, n), nil
	}
}

// lowerUnaryGrad lowers the backward of a pointwise op, whose inputs are
// (x, g): grad(x, g, dx), or, for kernels written in terms of the forward
// output y, fwd(x) → y first.
func lowerUnaryGrad(fwd, grad string) lowering {
	return func(m *Machine, st *xstep) (func() error, error) {
		if len(st.in) != 2 {
			return nil, nil
		}
		n := st.out.buf.N
		x, g := st.in[0].buf, st.in[1].buf
		if fwd == "" {
			return m.k1(grad, n, x, g, st.out.buf, n), nil
		}
		y, err := m.alloc(n)
		if err != nil {
			return nil, err
		}
		return seq(m.k1(fwd, n, x, y, n), m.k1(grad, n, y, g, st.out.buf, n)), nil
	}
}

// surrogate parses "kind(k=…,m=…,smooth=…)" from a spike or LIF op name:
// the kernels' kind number, slope and multiplier; ok false for smooth
// forwards and unknown kinds.
func surrogate(name string) (kind int, k, mult float32, ok bool) {
	// "fast_sigmoid" before "sigmoid", which it contains.
	kinds := []struct {
		name string
		kind int
	}{{"fast_sigmoid", 0}, {"atan", 1}, {"triangular", 3}, {"straight_through", 4}, {"sigmoid", 2}}
	kind = -1
	for _, s := range kinds {
		if strings.Contains(name, s.name+"(k=") {
			kind = s.kind
			break
		}
	}
	kv, ok1 := floatField(name, "k")
	mv, ok2 := floatField(name, "m")
	if kind < 0 || !ok1 || !ok2 || field(name, "smooth") != "false" {
		return 0, 0, 0, false
	}
	return kind, float32(kv), float32(mv), true
}

func lowerSpike(m *Machine, st *xstep) (func() error, error) {
	if _, _, _, ok := surrogate(opName(st)); !ok {
		return nil, nil
	}
	return lowerUnary("lsf_heaviside")(m, st)
}

func lowerSpikeGrad(m *Machine, st *xstep) (func() error, error) {
	kind, k, mult, ok := surrogate(opName(st))
	if !ok || len(st.in) != 2 {
		return nil, nil
	}
	n := st.out.buf.N
	return m.k1("lsf_spike_grad", n, st.in[0].buf, st.in[1].buf, st.out.buf, n, kind, k, mult), nil
}

// ---- GEMMs ----

// lowerMatMul lowers Gorgonia's plain matrix product [M,K]×[K,N]; other
// forms (transposed, matrix-vector, batched) run on the host.
func lowerMatMul(m *Machine, st *xstep) (func() error, error) {
	a, b := st.in[0].node.Shape(), st.in[1].node.Shape()
	y := st.node.Shape()
	if strings.Contains(opName(st), "ᵀ") || a.Dims() != 2 || b.Dims() != 2 || y.Dims() != 2 || a[1] != b[0] || y[0] != a[0] || y[1] != b[1] {
		return nil, nil
	}
	M, K, N := a[0], a[1], b[1]
	return m.gemm(false, false, M, N, K, 1, st.in[0].buf, K, st.in[1].buf, N, st.out.buf, N), nil
}

// lowerLinear: y[m,out] = x[m,in]·Wᵀ (+ b).
func lowerLinear(m *Machine, st *xstep) (func() error, error) {
	w := st.in[1].node.Shape()
	if w.Dims() != 2 {
		return nil, nil
	}
	out, in := w[0], w[1]
	rows := st.in[0].buf.N / in
	y := st.out.buf
	run := m.gemm(false, true, rows, out, in, 1, st.in[0].buf, in, st.in[1].buf, in, y, out)
	if len(st.in) == 3 {
		run = seq(run, m.k1("lsf_add_row", y.N, y, st.in[2].buf, y, y.N, out))
	}
	return run, nil
}

// lowerLinearDX: dx[m,in] = g[m,out]·W[out,in].
func lowerLinearDX(m *Machine, st *xstep) (func() error, error) {
	w := st.in[1].node.Shape()
	if w.Dims() != 2 {
		return nil, nil
	}
	out, in := w[0], w[1]
	rows := st.in[0].buf.N / out
	return m.gemm(false, false, rows, in, out, 1, st.in[0].buf, out, st.in[1].buf, in, st.out.buf, in), nil
}

// lowerLinearDW: dW[out,in] = gᵀ·x.
func lowerLinearDW(m *Machine, st *xstep) (func() error, error) {
	ws := st.node.Shape()
	if ws.Dims() != 2 {
		return nil, nil
	}
	out, in := ws[0], ws[1]
	rows := st.in[0].buf.N / out
	return m.gemm(true, false, out, in, rows, 1, st.in[0].buf, out, st.in[1].buf, in, st.out.buf, in), nil
}

// lowerSumRows: y[c] = Σ_r g[r,c] (LinearDB, SumLeading).
func lowerSumRows(m *Machine, st *xstep) (func() error, error) {
	cols := st.out.buf.N
	rows := st.in[0].buf.N / cols
	return m.sumRows(st.in[0].buf, st.out.buf, rows, cols), nil
}

// ---- reductions and layout ----

var axesRE = regexp.MustCompile(`\[([\d ]+)\]`)

// lowerSum lowers Σ over consecutive axes (all axes: one block).
func lowerSum(m *Machine, st *xstep) (func() error, error) {
	xs := st.in[0].node.Shape()
	mm := axesRE.FindStringSubmatch(opName(st))
	if mm == nil {
		return nil, nil
	}
	axes, ok := intList(mm[1])
	if !ok {
		return nil, nil
	}
	for i := 1; i < len(axes); i++ {
		if axes[i] != axes[i-1]+1 {
			return nil, nil
		}
	}
	x, y := st.in[0].buf, st.out.buf
	if y.N == 1 {
		return m.kRows("lsf_sum_all", 1, x, y, x.N), nil
	}
	if axes[0] < 0 || axes[len(axes)-1] >= xs.Dims() {
		return nil, nil
	}
	outer, n, inner := split(xs, axes[0], axes[len(axes)-1]+1)
	if outer*inner != y.N {
		return nil, nil
	}
	return m.k1("lsf_sum_mid", y.N, x, y, outer, n, inner, float32(1)), nil
}

// lowerRepeat lowers Gorgonia's Repeat when it broadcasts one value or
// one axis of size 1 (the backward of Σ); same-shape repeats copy.
func lowerRepeat(m *Machine, st *xstep) (func() error, error) {
	x, y := st.in[0], st.out
	xs, ys := x.node.Shape(), st.node.Shape()
	switch {
	case x.buf.N == y.buf.N:
		return m.k1("lsf_scale", y.buf.N, x.buf, float32(1), y.buf, y.buf.N), nil
	case x.buf.N == 1:
		return m.k1("lsf_broadcast_mid", y.buf.N, x.buf, y.buf, 1, y.buf.N, 1, float32(1)), nil
	case xs.Dims() != ys.Dims():
		return nil, nil
	}
	axis := -1
	for i := range xs {
		if xs[i] != ys[i] {
			if axis >= 0 || xs[i] != 1 {
				return nil, nil
			}
			axis = i
		}
	}
	outer, n, inner := split(ys, axis, axis+1)
	return m.k1("lsf_broadcast_mid", y.buf.N, x.buf, y.buf, outer, n, inner, float32(1)), nil
}

// lowerSlice: y = x[..., start:end, ...] along axis.
func lowerSlice(m *Machine, st *xstep) (func() error, error) {
	name := opName(st)
	axis, ok1 := intField(name, "axis")
	start, end, ok2 := opRange(name)
	xs := st.in[0].node.Shape()
	if !ok1 || !ok2 || axis >= xs.Dims() {
		return nil, nil
	}
	outer, n, inner := split(xs, axis, axis+1)
	count := end - start
	if outer*count*inner != st.out.buf.N {
		return nil, nil
	}
	return m.k1("lsf_slice_get", st.out.buf.N, st.in[0].buf, st.out.buf, outer, n, inner, start, count), nil
}

// lowerPad: zeros of the full shape with x at [at:at+n] along axis.
func lowerPad(m *Machine, st *xstep) (func() error, error) {
	name := opName(st)
	axis, ok1 := intField(name, "axis")
	at, ok2 := intField(name, "at")
	count, ok3 := intField(name, "n")
	full := st.node.Shape()
	if !ok1 || !ok2 || !ok3 || axis >= full.Dims() {
		return nil, nil
	}
	outer, n, inner := split(full, axis, axis+1)
	if outer*count*inner != st.in[0].buf.N {
		return nil, nil
	}
	y := st.out.buf
	return seq(m.k1("lsf_fill", y.N, y, float32(0), y.N),
		m.k1("lsf_slice_put", outer*count*inner, st.in[0].buf, y, outer, n, inner, at, count)), nil
}

// lowerConcat writes each input at its offset along axis.
func lowerConcat(m *Machine, st *xstep) (func() error, error) {
	axis, ok := intField(opName(st), "axis")
	ys := st.node.Shape()
	if !ok || axis >= ys.Dims() {
		return nil, nil
	}
	outer, n, inner := split(ys, axis, axis+1)
	var runs []func() error
	off := 0
	for _, in := range st.in {
		xs := in.node.Shape()
		if xs.Dims() != ys.Dims() {
			return nil, nil
		}
		count := xs[axis]
		runs = append(runs, m.k1("lsf_slice_put", in.buf.N, in.buf, st.out.buf, outer, n, inner, off, count))
		off += count
	}
	if off != n {
		return nil, nil
	}
	return seq(runs...), nil
}

// lowerMeanAxes: mean over axes [from,to).
func lowerMeanAxes(m *Machine, st *xstep) (func() error, error) {
	from, to, ok := opRange(opName(st))
	xs := st.in[0].node.Shape()
	if !ok || to > xs.Dims() {
		return nil, nil
	}
	outer, n, inner := split(xs, from, to)
	return m.k1("lsf_sum_mid", st.out.buf.N, st.in[0].buf, st.out.buf, outer, n, inner, 1/float32(n)), nil
}

// lowerBroadcastMean: the adjoint of MeanAxes.
func lowerBroadcastMean(m *Machine, st *xstep) (func() error, error) {
	from, to, ok := opRange(opName(st))
	xs := st.node.Shape()
	if !ok || to > xs.Dims() {
		return nil, nil
	}
	outer, n, inner := split(xs, from, to)
	return m.k1("lsf_broadcast_mid", st.out.buf.N, st.in[0].buf, st.out.buf, outer, n, inner, 1/float32(n)), nil
}

// lowerChannelSum: y[c] = Σ over every axis but 1.
func lowerChannelSum(m *Machine, st *xstep) (func() error, error) {
	xs := st.in[0].node.Shape()
	if xs.Dims() < 2 {
		return nil, nil
	}
	b, c, s := split(xs, 1, 2)
	return m.kRows("lsf_channel_sum", c, st.in[0].buf, st.out.buf, b, c, s), nil
}
