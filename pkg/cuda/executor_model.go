package cuda

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Lowerings of pkg/model's fused spiking op and telemetry, and of
// pkg/modality's and pkg/fusion's kernels (see lowerings).

// lowerGather lowers modality.Gather (out[b, j] = x[b, idx[j]], 0 where
// idx[j] < 0; STFT framing) to lsf_gather_cols. The index table is the
// op's own: its CPU code is run once, when the machine is built, on a
// probe whose every row is 1, 2, …, n, so out − 1 is idx (−1 for the
// zeros of padding); the table is uploaded once.
func lowerGather(m *Machine, st *xstep) (func() error, error) {
	xs := st.in[0].node.Shape()
	if len(st.in) != 1 || xs.Dims() != 2 || st.in[0].ints || xs[1] >= 1<<24 || st.out.buf.N%xs[0] != 0 {
		return nil, nil
	}
	rows, n := xs[0], xs[1]
	cols := st.out.buf.N / rows
	probe := make([]float32, rows*n)
	for i := range probe {
		probe[i] = float32(i%n + 1)
	}
	v, err := recoverDo(st.op, func() (G.Value, error) {
		return st.op.Do(tensor.New(tensor.WithShape(rows, n), tensor.WithBacking(probe)))
	})
	if err != nil {
		return nil, err
	}
	f, err := floats(v)
	if err != nil || len(f) != rows*cols {
		return nil, nil
	}
	idx := make([]int32, cols)
	for j := range idx {
		if f[j] != float32(int32(f[j])) || f[j] < 0 || f[j] > float32(n) {
			return nil, nil // not a pure gather: keep the host fallback
		}
		idx[j] = int32(f[j]) - 1
	}
	for i, x := range f {
		if x != f[i%cols] {
			return nil, nil // rows gathered differently
		}
	}
	tab, err := m.alloc(cols)
	if err != nil {
		return nil, err
	}
	if err := m.dev.uploadInts(tab, idx); err != nil {
		return nil, err
	}
	return m.k1("lsf_gather_cols", rows*cols, st.in[0].buf, tab, st.out.buf, rows, n, cols), nil
}

// lowerSwapAxes01 swaps axes 0 and 1 of a rank-3 tensor [A, B, D]:
// lsf_swap12 over [1, A, B, D].
func lowerSwapAxes01(m *Machine, st *xstep) (func() error, error) {
	xs := st.in[0].node.Shape()
	if xs.Dims() != 3 {
		return nil, nil
	}
	return m.k1("lsf_swap12", st.out.buf.N, st.in[0].buf, st.out.buf, 1, xs[0], xs[1], xs[2]), nil
}

var resampleRE = regexp.MustCompile(`[{,](\d+)->(\d+)[,}]`)

// resampleTaps are the two source steps and weights of each of the to
// output steps of a linear resampling from `from` steps
// (model.TemporalResample: torch's interpolate, mode linear,
// align_corners false).
func resampleTaps(from, to int) (i0, i1 []int, w0, w1 []float32) {
	scale := float64(from) / float64(to)
	for i := 0; i < to; i++ {
		p := math.Max(0, (float64(i)+0.5)*scale-0.5)
		lo := min(int(p), from-1)
		hi := min(lo+1, from-1)
		lam := p - float64(lo)
		if lo == hi {
			lam = 0
		}
		i0, i1 = append(i0, lo), append(i1, hi)
		w0, w1 = append(w0, float32(1-lam)), append(w1, float32(lam))
	}
	return i0, i1, w0, w1
}

// mixTable lays a resampling out for lsf_mix_rows: per output row of the
// op, the source rows and weights in the order the CPU kernel adds them
// (forward: the two taps; transposed: every forward output step reading
// the row, in increasing step order). ints is ptr (rows+1) then src.
func mixTable(from, to int, transposed bool) (ints []int32, w []float32) {
	i0, i1, w0, w1 := resampleTaps(from, to)
	rows := to
	if transposed {
		rows = from
	}
	lists := make([][]int32, rows)
	weights := make([][]float32, rows)
	add := func(r, s int, v float32) {
		lists[r], weights[r] = append(lists[r], int32(s)), append(weights[r], v)
	}
	for t := 0; t < to; t++ {
		if transposed {
			add(i0[t], t, w0[t])
			add(i1[t], t, w1[t])
		} else {
			add(t, i0[t], w0[t])
			add(t, i1[t], w1[t])
		}
	}
	ptr := []int32{0}
	var src []int32
	for r := range lists {
		src, w = append(src, lists[r]...), append(w, weights[r]...)
		ptr = append(ptr, int32(len(src)))
	}
	return append(ptr, src...), w
}

// lowerResample lowers TemporalResample (and its transposed backward) to
// lsf_mix_rows with its table uploaded once.
func lowerResample(m *Machine, st *xstep) (func() error, error) {
	name := opName(st)
	axis, ok := intField(name, "axis")
	sizes := resampleRE.FindStringSubmatch(name)
	xs, ys := st.in[0].node.Shape(), st.node.Shape()
	if !ok || sizes == nil || axis < 0 || axis >= ys.Dims() || xs.Dims() != ys.Dims() {
		return nil, nil
	}
	from, _ := strconv.Atoi(sizes[1])
	to, _ := strconv.Atoi(sizes[2])
	transposed := field(name, "transposed") == "true"
	inRows, outRows := from, to
	if transposed {
		inRows, outRows = to, from
	}
	if from < 1 || to < 1 || xs[axis] != inRows || ys[axis] != outRows {
		return nil, nil
	}
	ints, w := mixTable(from, to, transposed)
	tab, err := m.alloc(len(ints))
	if err != nil {
		return nil, err
	}
	wb, err := m.alloc(len(w))
	if err != nil {
		return nil, err
	}
	if err := m.dev.uploadInts(tab, ints); err != nil {
		return nil, err
	}
	if err := m.dev.upload(wb, w); err != nil {
		return nil, err
	}
	ptr, src := tab.at(0, outRows+1), tab.at(outRows+1, len(ints)-outRows-1)
	outer, inner := prod(ys[:axis]), prod(ys[axis+1:])
	return m.k1("lsf_mix_rows", st.out.buf.N, st.in[0].buf, ptr, src, wb, st.out.buf, outer, inRows, outRows, inner), nil
}

// lowerSwap12 swaps axes 1 and 2 of a rank ≥ 3 tensor.
func lowerSwap12(m *Machine, st *xstep) (func() error, error) {
	xs := st.in[0].node.Shape()
	if xs.Dims() < 3 {
		return nil, nil
	}
	n := st.out.buf.N
	return m.k1("lsf_swap12", n, st.in[0].buf, st.out.buf, xs[0], xs[1], xs[2], prod(xs[3:])), nil
}

var braceRE = regexp.MustCompile(`\{([^}]+)\}`)

// lowerFusionScale: y = s·x, s from the name "fusion.Scale{s}".
func lowerFusionScale(m *Machine, st *xstep) (func() error, error) {
	mm := braceRE.FindStringSubmatch(opName(st))
	if mm == nil {
		return nil, nil
	}
	sc, err := strconv.ParseFloat(mm[1], 64)
	if err != nil {
		return nil, nil
	}
	n := st.out.buf.N
	return m.k1("lsf_scale", n, st.in[0].buf, float32(sc), st.out.buf, n), nil
}

// lowerMaskOp lowers the missing-modality ops over a feature or gradient
// [B, D] and the keep mask [B, M] (column col): Substitute (f, e, mask),
// MaskRows (g, mask), MissingGrad (g, mask) → [D].
func lowerMaskOp(kernel string) lowering {
	return func(m *Machine, st *xstep) (func() error, error) {
		col, ok := intField(opName(st), "col")
		fs, ms := st.in[0].node.Shape(), st.in[len(st.in)-1].node.Shape()
		if !ok || fs.Dims() != 2 || ms.Dims() != 2 {
			return nil, nil
		}
		b, d, cols := fs[0], fs[1], ms[1]
		args := []any{}
		for _, in := range st.in {
			args = append(args, in.buf)
		}
		args = append(args, st.out.buf, b, d, cols, col)
		n := b * d
		if kernel == "lsf_missing_grad" {
			n = d
		}
		return m.k1(kernel, n, args...), nil
	}
}

// lowerWeighted lowers fusion.Weighted (x, logits) → factor·softmax(logits)[col]·x
// and its logit gradient (g, x, logits), one block.
func lowerWeighted(m *Machine, st *xstep) (func() error, error) {
	name := opName(st)
	col, ok1 := intField(name, "col")
	factor, ok2 := floatField(name, "factor")
	logits := st.in[len(st.in)-1].buf
	if !ok1 || !ok2 || logits.N > 256 {
		return nil, nil
	}
	if st.fam == "fusion.Weighted" {
		n := st.out.buf.N
		return m.k1("lsf_weighted", n, st.in[0].buf, logits, st.out.buf, n, logits.N, col, float32(factor)), nil
	}
	n := st.in[0].buf.N
	return m.kRows("lsf_weighted_logit_grad", 1, st.in[0].buf, st.in[1].buf, logits, st.out.buf, n, logits.N, col, float32(factor)), nil
}

// lowerSpikeStats lowers the telemetry of one [rows, n] spike tensor.
func lowerSpikeStats(m *Machine, st *xstep) (func() error, error) {
	n := st.out.buf.N / 3
	if len(st.in) == 0 || n == 0 || st.in[0].buf.N%n != 0 {
		return nil, nil
	}
	if len(st.in) == 1 {
		return m.k1("lsf_spike_stats", n, st.in[0].buf, st.out.buf, st.in[0].buf.N/n, n), nil
	}
	// Per-step spikes (unfused encoders): the T inputs [B, N] copied one
	// after the other into [T·B, N], then the same statistics.
	per := st.in[0].buf.N
	all, err := m.alloc(per * len(st.in))
	if err != nil {
		return nil, err
	}
	runs := make([]func() error, 0, len(st.in)+1)
	for i, s := range st.in {
		if s.buf.N != per || s.ints {
			return nil, nil
		}
		runs = append(runs, m.copyBuf(s.buf, all.at(i*per, per)))
	}
	runs = append(runs, m.k1("lsf_spike_stats", n, all, st.out.buf, all.N/n, n))
	return seq(runs...), nil
}

// lifParams is a LIFSeq name parsed: n = B·N elements of N = units
// neurons; learn has bit 1 for a learnable β, 2 for a learnable θ, 4 for
// graded spikes (the kernels' learn argument), parts how many of those
// are set (the per-neuron inputs after the current, and gradients after
// the current's). The smooth forward has no kernel (Lower sends it to the
// host).
type lifParams struct {
	t, n, units, perStep, reset int
	beta, theta, k, mult        float32
	kind, learn, parts          int
}

func parseLIF(name string) (lifParams, bool) {
	var p lifParams
	t, ok1 := intField(name, "T")
	b, ok2 := intField(name, "B")
	n, ok3 := intField(name, "N")
	beta, ok4 := floatField(name, "beta")
	theta, ok5 := floatField(name, "theta")
	kind, k, mult, ok6 := surrogate(name)
	reset := map[string]int{"subtract": 0, "zero": 1, "none": 2}
	r, ok7 := reset[field(name, "reset")]
	learn, ok8 := map[string]int{"false/false": 0, "true/false": 1, "false/true": 2, "true/true": 3}[field(name, "learn")]
	graded, ok9 := map[string]int{"false": 0, "true": 4}[field(name, "graded")]
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8 && ok9) {
		return p, false
	}
	p = lifParams{t: t, n: b * n, units: n, reset: r, beta: float32(beta), theta: float32(theta), k: k, mult: mult, kind: kind, learn: learn | graded}
	for bit := 1; bit <= 4; bit <<= 1 {
		if p.learn&bit != 0 {
			p.parts++
		}
	}
	if field(name, "perStep") == "true" {
		p.perStep = 1
	}
	return p, true
}

// lifParamBufs returns the kernels' β, θ, g pointer arguments: the
// per-neuron inputs in[0…] in that order as p.learn enables them, a null
// Buffer (never read) for the others.
func lifParamBufs(p lifParams, in []*slot) [3]Buffer {
	var bufs [3]Buffer
	next := 0
	for i := range bufs {
		if p.learn&(1<<i) != 0 {
			bufs[i], next = in[next].buf, next+1
		}
	}
	return bufs
}

// lowerLIF lowers the fused LIF sequence and its backward; the backward
// recomputes the membranes with the forward kernel into scratch buffers
// and, with learnable parameters or graded spikes, reduces the kernel's
// per-sample parameter gradients over the batch into the packed output
// after the current's gradient (model's layout: dcur, dβ, dθ, dg).
func lowerLIF(m *Machine, st *xstep) (func() error, error) {
	p, ok := parseLIF(opName(st))
	if !ok || p.units <= 0 {
		return nil, nil
	}
	cur := st.in[0].buf
	n, tn := p.n, p.t*p.n
	curLen := n
	if p.perStep == 1 {
		curLen = tn
	}
	grad := strings.HasSuffix(st.fam, "/grad")
	if (grad && len(st.in) != 2+p.parts) || (!grad && len(st.in) != 1+p.parts) || cur.N != curLen {
		return nil, nil
	}
	par := lifParamBufs(p, st.in[1:])
	for i, b := range par {
		if p.learn&(1<<i) != 0 && b.N != p.units {
			return nil, nil
		}
	}
	fwdArgs := func(spikes, mem Buffer) []any {
		return []any{cur, par[0], par[1], par[2], spikes, mem, n, p.units, p.t, p.perStep, p.reset, p.learn, p.beta, p.theta}
	}
	if !grad {
		if st.out.buf.N != tn {
			return nil, nil
		}
		mem, err := m.alloc(tn)
		if err != nil {
			return nil, err
		}
		return m.k1("lsf_lif_seq_forward", n, fwdArgs(st.out.buf, mem)...), nil
	}
	pn := p.parts * p.units
	if st.out.buf.N != curLen+pn {
		return nil, nil
	}
	scratch, err := m.alloc(2*tn + p.parts*n)
	if err != nil {
		return nil, err
	}
	spikes, mem, part := scratch.at(0, tn), scratch.at(tn, tn), Buffer{}
	if p.parts > 0 {
		part = scratch.at(2*tn, p.parts*n)
	}
	runs := []func() error{m.k1("lsf_lif_seq_forward", n, fwdArgs(spikes, mem)...),
		m.k1("lsf_lif_seq_backward", n, mem, st.in[1+p.parts].buf, par[0], par[1], par[2], st.out.buf.at(0, curLen), part,
			n, p.units, p.t, p.perStep, p.reset, p.learn, p.beta, p.theta, p.kind, p.k, p.mult)}
	if p.parts > 0 {
		runs = append(runs, m.sumRows(part, st.out.buf.at(curLen, pn), n/p.units, pn))
	}
	return seq(runs...), nil
}

// lowerWeightedSumL: y[b,d] = Σ_l w[b,l]·x[b,l,d], inputs (x, w).
func lowerWeightedSumL(m *Machine, st *xstep) (func() error, error) {
	xs := st.in[0].node.Shape()
	if xs.Dims() != 3 {
		return nil, nil
	}
	b, l, d := xs[0], xs[1], xs[2]
	return m.k1("lsf_weighted_sum_l", b*d, st.in[0].buf, st.in[1].buf, st.out.buf, b, l, d), nil
}

// lowerMaskedMaxL lowers masked max pooling (x [B,L,D], mask [B,L]) →
// [B,D] and its backward (mask, x, g) → [B,L,D] (g at each arg-max), one
// thread per (b, d).
func lowerMaskedMaxL(m *Machine, st *xstep) (func() error, error) {
	x := st.in[0]
	if st.fam == "modality.MaskedMaxLGrad" {
		x = st.in[1]
	}
	xs := x.node.Shape()
	if xs.Dims() != 3 {
		return nil, nil
	}
	b, l, d := xs[0], xs[1], xs[2]
	if st.fam == "modality.MaskedMaxL" {
		return m.k1("lsf_masked_max_l", b*d, x.buf, st.in[1].buf, st.out.buf, b, l, d), nil
	}
	return m.k1("lsf_masked_max_l_grad", b*d, st.in[0].buf, x.buf, st.in[2].buf, st.out.buf, b, l, d), nil
}

// lowerSpreadL: dx[b,l,d] = w[b,l]·g[b,d], inputs (w, x, g).
func lowerSpreadL(m *Machine, st *xstep) (func() error, error) {
	ys := st.node.Shape()
	if ys.Dims() != 3 || len(st.in) != 3 {
		return nil, nil
	}
	b, l, d := ys[0], ys[1], ys[2]
	return m.k1("lsf_spread_l", b*l*d, st.in[2].buf, st.in[0].buf, st.out.buf, b, l, d), nil
}
