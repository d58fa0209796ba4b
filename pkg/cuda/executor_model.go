package cuda

import (
	"regexp"
	"strconv"
	"strings"
)

// Lowerings of pkg/model's fused spiking op and telemetry, and of
// pkg/modality's and pkg/fusion's kernels (see lowerings).

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
	if len(st.in) != 1 || n == 0 || st.in[0].buf.N%n != 0 {
		return nil, nil
	}
	return m.k1("lsf_spike_stats", n, st.in[0].buf, st.out.buf, st.in[0].buf.N/n, n), nil
}

// lifParams parses a LIFSeq name (fixed β/θ, binary spikes: Lower sends
// the other variants to the host).
type lifParams struct {
	t, n, perStep, reset int
	beta, theta, k, mult float32
	kind                 int
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
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || field(name, "learn") != "false/false" || field(name, "graded") != "false" {
		return p, false
	}
	p = lifParams{t: t, n: b * n, reset: r, beta: float32(beta), theta: float32(theta), k: k, mult: mult, kind: kind}
	if field(name, "perStep") == "true" {
		p.perStep = 1
	}
	return p, true
}

// lowerLIF lowers the fused LIF sequence and its backward; the backward
// recomputes the membranes with the forward kernel into scratch buffers.
func lowerLIF(m *Machine, st *xstep) (func() error, error) {
	p, ok := parseLIF(opName(st))
	if !ok {
		return nil, nil
	}
	cur := st.in[0].buf
	n, tn := p.n, p.t*p.n
	if strings.HasSuffix(st.fam, "/grad") {
		if len(st.in) != 2 {
			return nil, nil
		}
		spikes, err := m.alloc(tn)
		if err != nil {
			return nil, err
		}
		mem, err := m.alloc(tn)
		if err != nil {
			return nil, err
		}
		return seq(m.k1("lsf_lif_seq_forward", n, cur, spikes, mem, n, p.t, p.perStep, p.reset, p.beta, p.theta),
			m.k1("lsf_lif_seq_backward", n, mem, st.in[1].buf, st.out.buf, n, p.t, p.perStep, p.reset, p.beta, p.theta, p.kind, p.k, p.mult)), nil
	}
	if len(st.in) != 1 || st.out.buf.N != tn {
		return nil, nil
	}
	mem, err := m.alloc(tn)
	if err != nil {
		return nil, err
	}
	return m.k1("lsf_lif_seq_forward", n, cur, st.out.buf, mem, n, p.t, p.perStep, p.reset, p.beta, p.theta), nil
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

// lowerSpreadL: dx[b,l,d] = w[b,l]·g[b,d], inputs (w, x, g).
func lowerSpreadL(m *Machine, st *xstep) (func() error, error) {
	ys := st.node.Shape()
	if ys.Dims() != 3 || len(st.in) != 3 {
		return nil, nil
	}
	b, l, d := ys[0], ys[1], ys[2]
	return m.k1("lsf_spread_l", b*l*d, st.in[2].buf, st.in[0].buf, st.out.buf, b, l, d), nil
}
