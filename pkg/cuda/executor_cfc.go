package cuda

import (
	"regexp"
	"strconv"
)

// cfcGeom is a fused CfC op's geometry and settings, parsed from its name
// (model.cfcSeqSpec.String). mode is the heads kernels' mode (0 no_gate,
// 1 default, 2 pure), heads the number of head layers (4, or 1 in pure
// mode: ff1), keepA whether the cache keeps the backbone pre-activations
// (silu and gelu, whose derivative needs them). rc and off are the cache
// layout per (step, sample) row: the L backbone outputs, their inputs
// when kept, then the heads (f1, f2, σ; pure: ff1's output and e) at off.
type cfcGeom struct {
	t, b, in, u, layers, bu int
	act, mode, heads        int
	keepA                   bool
	ts                      float32
	rc, off                 int
}

var cfcRE = regexp.MustCompile(`^CfCSeq\{T=(\d+),B=(\d+),in=(\d+),units=(\d+),backbone=(\d+)x(\d+),(\w+),mode=(\w+),ts=([^}]+)\}`)

// parseCfC parses a CfCSeq or CfCSeq/grad name; ok is false for names it
// does not know (another activation or mode).
func parseCfC(name string) (cfcGeom, bool) {
	var g cfcGeom
	m := cfcRE.FindStringSubmatch(name)
	if m == nil {
		return g, false
	}
	var ints [6]int
	for i := range ints {
		v, err := strconv.Atoi(m[i+1])
		if err != nil {
			return g, false
		}
		ints[i] = v
	}
	acts := map[string]int{"lecun_tanh": 0, "tanh": 1, "sigmoid": 2, "relu": 3, "identity": 4, "silu": 5, "gelu": 6}
	modes := map[string]int{"no_gate": 0, "default": 1, "pure": 2}
	act, ok1 := acts[m[7]]
	mode, ok2 := modes[m[8]]
	ts, err := strconv.ParseFloat(m[9], 64)
	if !ok1 || !ok2 || err != nil {
		return g, false
	}
	g = cfcGeom{t: ints[0], b: ints[1], in: ints[2], u: ints[3], layers: ints[4], bu: ints[5], act: act, mode: mode,
		heads: 4, keepA: act >= 5, ts: float32(ts)}
	headCache := 3 * g.u
	if mode == 2 {
		g.heads, headCache = 1, 2*g.u
	}
	g.off = g.layers * g.bu
	if g.keepA {
		g.off *= 2
	}
	g.rc = g.off + headCache
	return g, true
}

// bOff is the offset of backbone layer l's output in a cache row.
func (g cfcGeom) bOff(l int) int { return l * g.bu }

// keep is the offset of a layer's kept pre-activation from its output
// (lsf_cfc_bias_act's keep; 0 when not kept).
func (g cfcGeom) keep() int {
	if g.keepA {
		return g.layers * g.bu
	}
	return 0
}

// dyOff is the offset of the cached value lsf_cfc_act_grad reads for
// layer l: its output, or its input when kept.
func (g cfcGeom) dyOff(l int) int { return g.bOff(l) + g.keep() }

// inputs is the number of the op's inputs.
func (g cfcGeom) inputs() int {
	n := 1 + 2*g.layers + 2*g.heads
	if g.mode == 2 {
		n += 2
	}
	return n
}

// cfcWeights are the op's inputs by role: x, then per backbone layer W
// [bu, in_l] and b [bu], then per head (ff1, ff2, time_a, time_b; pure:
// ff1) W [u, bu] and b [u], then in pure mode w_τ and A [1, u] (tau,
// amp; null Buffers otherwise, never read).
type cfcWeights struct {
	x          Buffer
	w, bias    []Buffer
	head, hbia []Buffer
	tau, amp   Buffer
}

func cfcInputs(g cfcGeom, in []*slot) (cfcWeights, bool) {
	var p cfcWeights
	if len(in) != g.inputs() {
		return p, false
	}
	p.x = in[0].buf
	for l := 0; l < g.layers; l++ {
		p.w, p.bias = append(p.w, in[1+2*l].buf), append(p.bias, in[2+2*l].buf)
	}
	for k := 0; k < g.heads; k++ {
		i := 1 + 2*g.layers + 2*k
		p.head, p.hbia = append(p.head, in[i].buf), append(p.hbia, in[i+1].buf)
	}
	if g.mode == 2 {
		p.tau, p.amp = in[len(in)-2].buf, in[len(in)-1].buf
	}
	return p, true
}

// packHeads plans copies of the heads' weights into one [heads·u, bu]
// matrix (one GEMM per step for all heads) and, when hb is non-empty,
// their biases into hb [heads·u].
func (m *Machine) packHeads(g cfcGeom, p cfcWeights, wh, hb Buffer) func() error {
	var runs []func() error
	for k := 0; k < g.heads; k++ {
		runs = append(runs, m.copyBuf(p.head[k], wh.at(k*g.u*g.bu, g.u*g.bu)))
		if hb.N > 0 {
			runs = append(runs, m.copyBuf(p.hbia[k], hb.at(k*g.u, g.u)))
		}
	}
	return seq(runs...)
}

// lowerCfC lowers the fused CfC sequence (forward: states and cache into
// the packed output) and its backward (backpropagation through time into
// the packed gradient of every input), both from model's layout.
func lowerCfC(m *Machine, st *xstep) (func() error, error) {
	g, ok := parseCfC(opName(st))
	if !ok {
		return nil, nil
	}
	grad := st.fam == "CfCSeq/grad"
	n := len(st.in)
	if grad {
		n -= 2
	}
	p, ok := cfcInputs(g, st.in[:n])
	if !ok {
		return nil, nil
	}
	rows, tbu := g.t*g.b, g.t*g.b*g.u
	if grad {
		return m.cfcBackward(g, p, st.in[n].buf, st.in[n+1].buf, st.out.buf, rows, tbu)
	}
	if st.out.buf.N != tbu+rows*g.rc {
		return nil, nil
	}
	return m.cfcForward(g, p, st.out.buf, rows, tbu)
}

func (m *Machine) cfcForward(g cfcGeom, p cfcWeights, out Buffer, rows, tbu int) (func() error, error) {
	hs, ld0 := g.heads*g.u, g.in+g.u
	scratch, err := m.alloc(hs*g.bu + hs + g.b*hs)
	if err != nil {
		return nil, err
	}
	wh, hb, hd := scratch.at(0, hs*g.bu), scratch.at(hs*g.bu, hs), scratch.at(hs*g.bu+hs, g.b*hs)
	hAll, cache := out.at(0, tbu), out.at(tbu, rows*g.rc)
	// The input projection of every step at once, into the b_1 slots.
	runs := []func() error{m.packHeads(g, p, wh, hb),
		m.gemm(false, true, rows, g.bu, g.in, 1, p.x, g.in, p.w[0], ld0, cache, g.rc)}
	for t := 0; t < g.t; t++ {
		c := cache.at(t*g.b*g.rc, g.b*g.rc)
		if t > 0 { // + h_{t−1}·W_hᵀ
			runs = append(runs, m.gemmBeta(false, true, g.b, g.bu, g.u, 1, hAll.at((t-1)*g.b*g.u, g.b*g.u), g.u, p.w[0].at(g.in, 0), ld0, 1, c, g.rc))
		}
		for l := 0; l < g.layers; l++ {
			bl := c.at(g.bOff(l), 0)
			if l > 0 {
				runs = append(runs, m.gemm(false, true, g.b, g.bu, g.bu, 1, c.at(g.bOff(l-1), 0), g.rc, p.w[l], g.bu, bl, g.rc))
			}
			runs = append(runs, m.k1("lsf_cfc_bias_act", g.b*g.bu, bl, p.bias[l], g.b, g.bu, g.rc, g.act, g.keep()))
		}
		runs = append(runs,
			m.gemm(false, true, g.b, hs, g.bu, 1, c.at(g.bOff(g.layers-1), 0), g.rc, wh, g.bu, hd, hs),
			m.k1("lsf_cfc_heads", g.b*g.u, hd, hb, p.tau, p.amp, c, hAll.at(t*g.b*g.u, g.b*g.u), g.b, g.u, g.rc, g.off, g.ts, g.mode))
	}
	return seq(runs...), nil
}

func (m *Machine) cfcBackward(g cfcGeom, p cfcWeights, fwd, dout, dst Buffer, rows, tbu int) (func() error, error) {
	hs, ld0 := g.heads*g.u, g.in+g.u
	pureLen := 0 // dw_τ and dA: [rows, 2u] per-row contributions, then [2u] in dst
	if g.mode == 2 {
		pureLen = 2 * g.u
	}
	total := rows*g.in + g.bu*ld0 + g.bu + (g.layers-1)*(g.bu*g.bu+g.bu) + g.heads*(g.u*g.bu+g.u) + pureLen
	if dst.N != total || fwd.N != tbu+rows*g.rc {
		return nil, nil
	}
	need := hs*g.bu + rows*hs + g.layers*rows*g.bu + g.b*g.u + g.b*g.bu + hs + rows*pureLen
	scratch, err := m.alloc(need)
	if err != nil {
		return nil, err
	}
	off := 0
	take := func(buf Buffer, n int) Buffer { b := buf.at(off, n); off += n; return b }
	wh, dHd := take(scratch, hs*g.bu), take(scratch, rows*hs)
	da := make([]Buffer, g.layers)
	for l := range da {
		da[l] = take(scratch, rows*g.bu)
	}
	carry, db, hbSum := take(scratch, g.b*g.u), take(scratch, g.b*g.bu), take(scratch, hs)
	var part Buffer
	if pureLen > 0 {
		part = take(scratch, rows*pureLen)
	}
	hAll, cache := fwd.at(0, tbu), fwd.at(tbu, rows*g.rc)
	runs := []func() error{m.packHeads(g, p, wh, Buffer{}), m.k1("lsf_fill", dst.N, dst, float32(0), dst.N)}
	for t := g.t - 1; t >= 0; t-- {
		c := cache.at(t*g.b*g.rc, g.b*g.rc)
		dHdT := dHd.at(t*g.b*hs, g.b*hs)
		hasCarry := 0
		if t < g.t-1 {
			hasCarry = 1
		}
		partT := part
		if pureLen > 0 {
			partT = part.at(t*g.b*pureLen, g.b*pureLen)
		}
		runs = append(runs,
			m.k1("lsf_cfc_heads_grad", g.b*g.u, dout.at(t*g.b*g.u, g.b*g.u), carry, p.tau, p.amp, c, dHdT, partT, g.b, g.u, g.rc, g.off, g.ts, g.mode, hasCarry),
			m.gemm(false, false, g.b, g.bu, hs, 1, dHdT, hs, wh, g.bu, db, g.bu))
		for l := g.layers - 1; l >= 0; l-- {
			dal := da[l].at(t*g.b*g.bu, g.b*g.bu)
			runs = append(runs, m.k1("lsf_cfc_act_grad", g.b*g.bu, db, c.at(g.dyOff(l), 0), dal, g.b, g.bu, g.rc, g.act))
			if l > 0 {
				runs = append(runs, m.gemm(false, false, g.b, g.bu, g.bu, 1, dal, g.bu, p.w[l], g.bu, db, g.bu))
			}
		}
		if t > 0 { // dL/dh_{t−1} through W_h: da_1·W_0[:, in:]
			runs = append(runs, m.gemm(false, false, g.b, g.u, g.bu, 1, da[0].at(t*g.b*g.bu, 0), g.bu, p.w[0].at(g.in, 0), ld0, carry, g.u))
		}
	}
	// The packed gradients, in model's order: dx, per layer dW and db, per
	// head dW and db, then (pure) dw_τ and dA.
	off = 0
	dx := take(dst, rows*g.in)
	runs = append(runs, m.gemm(false, false, rows, g.in, g.bu, 1, da[0], g.bu, p.w[0], ld0, dx, g.in))
	for l := 0; l < g.layers; l++ {
		if l == 0 {
			dw := take(dst, g.bu*ld0)
			runs = append(runs, m.gemm(true, false, g.bu, g.in, rows, 1, da[0], g.bu, p.x, g.in, dw, ld0))
			if g.t > 1 { // h_{t−1} for t ≥ 1 are h_0…h_{T−2}; h_0 = 0 adds nothing
				runs = append(runs, m.gemm(true, false, g.bu, g.u, (g.t-1)*g.b, 1, da[0].at(g.b*g.bu, 0), g.bu, hAll, g.u, dw.at(g.in, 0), ld0))
			}
		} else {
			dw := take(dst, g.bu*g.bu)
			runs = append(runs, m.gemm(true, false, g.bu, g.bu, rows, 1, da[l], g.bu, cache.at(g.bOff(l-1), 0), g.rc, dw, g.bu))
		}
		runs = append(runs, m.sumRows(da[l], take(dst, g.bu), rows, g.bu))
	}
	runs = append(runs, m.sumRows(dHd, hbSum, rows, hs))
	bL := cache.at(g.bOff(g.layers-1), 0)
	for k := 0; k < g.heads; k++ {
		runs = append(runs, m.gemm(true, false, g.u, g.bu, rows, 1, dHd.at(k*g.u, 0), hs, bL, g.rc, take(dst, g.u*g.bu), g.bu),
			m.copyBuf(hbSum.at(k*g.u, g.u), take(dst, g.u)))
	}
	if pureLen > 0 {
		runs = append(runs, m.sumRows(part, take(dst, pureLen), rows, pureLen))
	}
	return seq(runs...), nil
}
