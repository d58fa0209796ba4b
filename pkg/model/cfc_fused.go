package model

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// CfCSeqOutput is what the fused CfC sequence op produced.
type CfCSeqOutput struct {
	// Last is the final state h_T, [B, Units].
	Last *G.Node
	// States holds h_1…h_T, T-major [T, B, Units]; nil unless requested
	// (every node of a Gorgonia graph runs, so unused outputs cost time).
	States *G.Node
}

// FusedSupported reports whether ForwardFused can build this cell in a
// graph of the given mode: backbone dropout (BackboneDropout > 0 with two
// or more backbone layers) is active in training graphs and is only
// implemented by the unrolled cell (Forward).
func (m *CfC) FusedSupported(train bool) error {
	if train && m.cfg.BackboneDropout > 0 && m.cfg.BackboneLayers > 1 {
		return fmt.Errorf("cfc: the fused sequence op has no backbone dropout (backbone_dropout %g in a training graph); use the unrolled cell", m.cfg.BackboneDropout)
	}
	return nil
}

// ForwardFused runs the cell over the whole sequence xs [T, B, InputSize]
// from h0 = 0 — the same computation and parameters as Forward — as one
// graph node, with the states of every step in its output. With states it
// also returns h_1…h_T as one [T, B, Units] node.
//
// The input projection of every step is one matrix product before the
// recurrence; each step then multiplies only the state and the backbone
// by pre-transposed weights, and the batch is split over the cores. The
// forward keeps the backbone and head activations in its (packed) output,
// so the backward — one op running backpropagation through time for all
// inputs, whose gradients it packs into one vector that cheap slices
// unpack (DESIGN.md §3) — recomputes nothing; weight gradients are single
// matrix products over all T·B rows. Behaves the same in training and
// evaluation; training graphs with backbone dropout are an error (see
// FusedSupported).
func (m *CfC) ForwardFused(c *nn.Ctx, xs *G.Node, states bool) (*CfCSeqOutput, error) {
	cfg := m.cfg
	s := xs.Shape()
	if s.Dims() != 3 || s[2] != cfg.InputSize {
		return nil, c.Errorf("cfc expects an input sequence [steps, batch, %d], got %v", cfg.InputSize, s)
	}
	if err := m.FusedSupported(c.Train()); err != nil {
		return nil, c.Errorf("%v", err)
	}
	act, err := cfcActivation(cfg.BackboneActivation)
	if err != nil {
		return nil, c.Errorf("cfc: %v", err)
	}
	spec := cfcSeqSpec{t: s[0], b: s[1], in: cfg.InputSize, u: cfg.Units, bu: cfg.BackboneUnits,
		layers: cfg.BackboneLayers, mode: cfg.Mode, act: act, ts: cfg.ElapsedTime, heads: 4}
	if cfg.Mode == CfCPure {
		spec.heads = 1
	}
	xavier := nn.XavierUniform(1)
	inputs := []*G.Node{xs}
	linear := func(scope string, in, out int) error {
		lc := c.Sub(scope)
		w, err := lc.Param("weight", []int{out, in}, xavier)
		if err != nil {
			return err
		}
		b, err := lc.Param("bias", []int{out}, nn.BiasUniform(in))
		if err != nil {
			return err
		}
		inputs = append(inputs, w, b)
		return nil
	}
	for l, idx := range cfcBackboneIndices(cfg) {
		in := cfg.BackboneUnits
		if l == 0 {
			in = cfg.InputSize + cfg.Units
		}
		if err := linear(fmt.Sprintf("backbone.%d", idx), in, cfg.BackboneUnits); err != nil {
			return nil, err
		}
	}
	for _, h := range []string{"ff1", "ff2", "time_a", "time_b"}[:spec.heads] {
		if err := linear(h, cfg.BackboneUnits, cfg.Units); err != nil {
			return nil, err
		}
	}
	if cfg.Mode == CfCPure {
		for _, name := range []string{"w_tau", "A"} {
			p, err := c.Param(name, []int{1, cfg.Units}, xavier)
			if err != nil {
				return nil, err
			}
			inputs = append(inputs, p)
		}
	}
	packed, err := nn.Apply(spec.kernel(), inputs...)
	if err != nil {
		return nil, c.Errorf("cfc: %v", err)
	}
	tbu := spec.t * spec.b * spec.u
	out := &CfCSeqOutput{}
	out.Last, err = nn.SliceAxisAs(packed, 1, tbu-spec.b*spec.u, tbu, []int{spec.b, spec.u})
	if err == nil && states {
		out.States, err = nn.SliceAxisAs(packed, 1, 0, tbu, []int{spec.t, spec.b, spec.u})
	}
	if err != nil {
		return nil, c.Errorf("cfc: %v", err)
	}
	return out, nil
}

// cfcBackboneIndices returns the ncps nn.Sequential index of each backbone
// Linear ("backbone.<i>"), the naming of CfC.Step: Linear and activation
// per layer, plus a Dropout module after layers 2… when BackboneDropout >
// 0.
func cfcBackboneIndices(cfg CfCConfig) []int {
	idx := make([]int, cfg.BackboneLayers)
	i := 0
	for l := range idx {
		idx[l] = i
		i += 2
		if l > 0 && cfg.BackboneDropout > 0 {
			i++
		}
	}
	return idx
}

// cfcAct is a backbone activation with its derivative, taken from the
// output y when possible (so the forward need not keep the input a).
type cfcAct struct {
	name string
	f    func(a float64) float64
	// f32 is f for float32 graphs: the same function through expApprox
	// (relative error < 1e-8, far below float32 rounding) where f takes
	// a transcendental.
	f32    func(a float64) float64
	dfY    func(y float64) float64 // derivative from the output; nil: use dfA
	dfA    func(a float64) float64
	keepsA bool
}

// cfcActivation returns the backbone activation called name (the names of
// nn.ActivationByName).
func cfcActivation(name string) (cfcAct, error) {
	sigmoid := func(a float64) float64 {
		if a >= 0 {
			return 1 / (1 + math.Exp(-a))
		}
		e := math.Exp(a)
		return e / (1 + e)
	}
	switch name {
	case "lecun_tanh":
		const scale, slope = 1.7159, 0.666 // ncps' constants, as nn.LeCunTanh
		return cfcAct{name: name, f: func(a float64) float64 { return scale * math.Tanh(slope*a) },
			f32: func(a float64) float64 { return scale * tanhApprox(slope*a) },
			dfY: func(y float64) float64 { t := y / scale; return scale * slope * (1 - t*t) }}, nil
	case "tanh":
		return cfcAct{name: name, f: math.Tanh, f32: tanhApprox, dfY: func(y float64) float64 { return 1 - y*y }}, nil
	case "sigmoid":
		return cfcAct{name: name, f: sigmoid, f32: sigmoidApprox, dfY: func(y float64) float64 { return y * (1 - y) }}, nil
	case "relu":
		return cfcAct{name: name, f: func(a float64) float64 { return math.Max(a, 0) }, dfY: func(y float64) float64 {
			if y > 0 {
				return 1
			}
			return 0
		}}, nil
	case "identity":
		return cfcAct{name: name, f: func(a float64) float64 { return a }, dfY: func(float64) float64 { return 1 }}, nil
	case "silu":
		return cfcAct{name: name, keepsA: true, f: func(a float64) float64 { return a * sigmoid(a) },
			f32: func(a float64) float64 { return a * sigmoidApprox(a) },
			dfA: func(a float64) float64 { s := sigmoid(a); return s * (1 + a*(1-s)) }}, nil
	case "gelu":
		return cfcAct{name: name, keepsA: true, f: func(a float64) float64 { return 0.5 * a * (1 + math.Erf(a/math.Sqrt2)) },
			dfA: func(a float64) float64 {
				return 0.5*(1+math.Erf(a/math.Sqrt2)) + a*math.Exp(-0.5*a*a)/math.Sqrt(2*math.Pi)
			}}, nil
	}
	return cfcAct{}, fmt.Errorf("backbone activation %q has no fused implementation", name)
}

// cfcSeqSpec is the geometry and settings of one fused CfC op.
type cfcSeqSpec struct {
	t, b, in, u, bu, layers int
	mode                    string
	act                     cfcAct
	ts                      float64
	heads                   int // 4 (default, no_gate) or 1 (pure)
}

func (s cfcSeqSpec) String() string {
	return fmt.Sprintf("CfCSeq{T=%d,B=%d,in=%d,units=%d,backbone=%dx%d,%s,mode=%s,ts=%g}",
		s.t, s.b, s.in, s.u, s.layers, s.bu, s.act.name, s.mode, s.ts)
}

// Cache layout per (step, batch row), after the T·B·U states: the
// backbone outputs b_1…b_L, their inputs a_1…a_L when the activation's
// derivative needs them, then the heads: f1, f2 (after tanh) and the gate σ
// (default, no_gate) or ff1's output and e = exp(−ts·(|w_τ|+|f1|)) (pure).
func (s cfcSeqSpec) headCache() int {
	if s.mode == CfCPure {
		return 2 * s.u
	}
	return 3 * s.u
}

func (s cfcSeqSpec) rowCache() int {
	n := s.layers * s.bu
	if s.act.keepsA {
		n *= 2
	}
	return n + s.headCache()
}

func (s cfcSeqSpec) outLen() int { return s.t * s.b * (s.u + s.rowCache()) }

// bOff, aOff and headOff are the offsets of b_l, a_l and the heads within
// a row's cache.
func (s cfcSeqSpec) bOff(l int) int { return l * s.bu }
func (s cfcSeqSpec) aOff(l int) int { return (s.layers + l) * s.bu }
func (s cfcSeqSpec) headOff() int   { return s.rowCache() - s.headCache() }

// gradShapes lists the input shapes in input order (x, backbone W/b, head
// W/b, then w_tau and A in pure mode).
func (s cfcSeqSpec) gradShapes() [][]int {
	shapes := [][]int{{s.t, s.b, s.in}}
	for l := 0; l < s.layers; l++ {
		in := s.bu
		if l == 0 {
			in = s.in + s.u
		}
		shapes = append(shapes, []int{s.bu, in}, []int{s.bu})
	}
	for h := 0; h < s.heads; h++ {
		shapes = append(shapes, []int{s.u, s.bu}, []int{s.u})
	}
	if s.mode == CfCPure {
		shapes = append(shapes, []int{1, s.u}, []int{1, s.u})
	}
	return shapes
}

func (s cfcSeqSpec) kernel() *nn.Kernel {
	outShape := tensor.Shape{1, s.outLen()}
	k := &nn.Kernel{Name: s.String(), Shape: constShape(outShape)}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return nn.FloatKernel(in[0].Dtype(), outShape, in, dst,
			func(in [][]float64, out []float64) { cfcSeqForward(s, in, out) },
			func(in [][]float32, out []float32) { cfcSeqForward(s, in, out) })
	}
	k.Backward = func(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
		shapes := s.gradShapes()
		total := 0
		for _, sh := range shapes {
			total += prodInts(sh)
		}
		gShape := tensor.Shape{1, total}
		bk := &nn.Kernel{Name: s.String() + "/grad", Shape: constShape(gShape)}
		bk.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return nn.FloatKernel(in[0].Dtype(), gShape, in, dst,
				func(in [][]float64, dst []float64) { cfcSeqBackward(s, in, dst) },
				func(in [][]float32, dst []float32) { cfcSeqBackward(s, in, dst) })
		}
		packed, err := nn.Apply(bk, append(append(G.Nodes{}, in...), out, grad)...)
		if err != nil {
			return nil, err
		}
		return unpackGrads(packed, shapes)
	}
	return k
}

// cfcParams are the op's inputs by role (row-major backing slices).
type cfcParams[T nn.Float] struct {
	x          []T   // [T·B, in]
	w, bias    [][]T // backbone layer l: [bu, in_l], [bu]
	hw, hb     [][]T // head k: [u, bu], [u]
	wTau, amp  []T   // pure mode: [u] each
	w0hT, whT  []T   // pre-transposed: W_0's state columns [u, bu]; heads [bu, heads·u]
	wlT        [][]T // layers l ≥ 1 transposed [bu, bu] (index l)
	headBias   []T   // [heads·u]
	headStride int   // heads·u
}

func cfcSplit[T nn.Float](s cfcSeqSpec, in [][]T) *cfcParams[T] {
	p := &cfcParams[T]{x: in[0], headStride: s.heads * s.u}
	i := 1
	for l := 0; l < s.layers; l++ {
		p.w, p.bias = append(p.w, in[i]), append(p.bias, in[i+1])
		i += 2
	}
	for h := 0; h < s.heads; h++ {
		p.hw, p.hb = append(p.hw, in[i]), append(p.hb, in[i+1])
		i += 2
	}
	if s.mode == CfCPure {
		p.wTau, p.amp = in[i], in[i+1]
	}
	return p
}

// prepare fills the pre-transposed weights used by the forward recurrence
// (buffers from tmp).
func (p *cfcParams[T]) prepare(s cfcSeqSpec, tmp *scratch[T]) {
	ld0 := s.in + s.u
	p.w0hT = tmp.get(s.u * s.bu)
	for o := 0; o < s.bu; o++ {
		row := p.w[0][o*ld0+s.in : (o+1)*ld0]
		for j, v := range row {
			p.w0hT[j*s.bu+o] = v
		}
	}
	p.wlT = make([][]T, s.layers)
	for l := 1; l < s.layers; l++ {
		p.wlT[l] = transposeInto(tmp.get(s.bu*s.bu), p.w[l], s.bu, s.bu)
	}
	hs := p.headStride
	p.whT = tmp.get(s.bu * hs)
	p.headBias = tmp.get(hs)
	for h := 0; h < s.heads; h++ {
		for j := 0; j < s.u; j++ {
			row := p.hw[h][j*s.bu : (j+1)*s.bu]
			for o, v := range row {
				p.whT[o*hs+h*s.u+j] = v
			}
		}
		copy(p.headBias[h*s.u:], p.hb[h])
	}
}

// transposeInto writes the transpose of the rows×cols matrix src into dst
// (cols×rows) and returns dst.
func transposeInto[T nn.Float](dst, src []T, rows, cols int) []T {
	for r := 0; r < rows; r++ {
		for c, v := range src[r*cols : (r+1)*cols] {
			dst[c*rows+r] = v
		}
	}
	return dst
}

// workers returns the number of batch splits of a fused CfC op: one per
// core when each gets enough rows to amortise the hand-off.
func (s cfcSeqSpec) workers() int {
	if s.b*s.t*s.bu*(s.u+s.heads*s.u) < 1<<17 || s.b < 8 {
		return 1
	}
	return nn.Workers(s.b / 4)
}

// cfcSeqForward computes every state and the cache into out.
func cfcSeqForward[T nn.Float](s cfcSeqSpec, in [][]T, out []T) {
	var tmp scratch[T]
	defer tmp.release()
	p := cfcSplit(s, in)
	p.prepare(s, &tmp)
	m := cfcMathFor[T](s.act)
	rc := s.rowCache()
	tbu := s.t * s.b * s.u
	hAll, cache := out[:tbu], out[tbu:]
	rows := s.t * s.b
	// a_1 = x·W_xᵀ + bias for every step at once, into the b_1 slots.
	for r := 0; r < rows; r++ {
		copy(cache[r*rc:r*rc+s.bu], p.bias[0])
	}
	nn.Gemm(false, true, rows, s.bu, s.in, 1, p.x, s.in, p.w[0], s.in+s.u, 1, cache, rc)
	run := func(_, lo, hi int) {
		var wtmp scratch[T]
		defer wtmp.release()
		nb := hi - lo
		hd := wtmp.get(nb * p.headStride)
		for t := 0; t < s.t; t++ {
			row0 := t*s.b + lo
			c := cache[row0*rc:]
			if t > 0 {
				// + h_{t−1}·W_hᵀ
				nn.GemmSerial(false, false, nb, s.bu, s.u, 1, hAll[((t-1)*s.b+lo)*s.u:], s.u, p.w0hT, s.bu, 1, c, rc)
			}
			for l := 0; l < s.layers; l++ {
				if l > 0 {
					for r := 0; r < nb; r++ {
						copy(c[r*rc+s.bOff(l):r*rc+s.bOff(l)+s.bu], p.bias[l])
					}
					nn.GemmSerial(false, false, nb, s.bu, s.bu, 1, c[s.bOff(l-1):], rc, p.wlT[l], s.bu, 1, c[s.bOff(l):], rc)
				}
				for r := 0; r < nb; r++ {
					b := c[r*rc+s.bOff(l) : r*rc+s.bOff(l)+s.bu]
					if s.act.keepsA {
						copy(c[r*rc+s.aOff(l):], b)
					}
					for i, a := range b {
						b[i] = T(m.act(float64(a)))
					}
				}
			}
			for r := 0; r < nb; r++ {
				copy(hd[r*p.headStride:(r+1)*p.headStride], p.headBias)
			}
			nn.GemmSerial(false, false, nb, p.headStride, s.bu, 1, c[s.bOff(s.layers-1):], rc, p.whT, p.headStride, 1, hd, p.headStride)
			for r := 0; r < nb; r++ {
				h := hAll[(row0+r)*s.u : (row0+r+1)*s.u]
				cacheHeads := c[r*rc+s.headOff() : (r+1)*rc]
				cfcHeads(s, p, m, hd[r*p.headStride:(r+1)*p.headStride], cacheHeads, h)
			}
		}
	}
	if w := s.workers(); w > 1 {
		nn.ParallelFor(s.b, run)
	} else {
		run(0, 0, s.b)
	}
}

// cfcMath holds the transcendental functions of one dtype: the exact
// math package ones for float64 (gradient checks, parity to 1e-9) and the
// faster expApprox-based ones for float32, whose error (< 1e-8 relative)
// is far below float32 rounding.
type cfcMath struct {
	act, tanh, exp func(float64) float64
}

func cfcMathFor[T nn.Float](act cfcAct) cfcMath {
	var z T
	if _, f32 := any(z).(float32); f32 {
		m := cfcMath{act: act.f, tanh: tanhApprox, exp: expApprox}
		if act.f32 != nil {
			m.act = act.f32
		}
		return m
	}
	return cfcMath{act: act.f, tanh: math.Tanh, exp: math.Exp}
}

// cfcHeads turns one row of head outputs into the new state h and the
// row's head cache.
func cfcHeads[T nn.Float](s cfcSeqSpec, p *cfcParams[T], m cfcMath, hd, cache, h []T) {
	u := s.u
	h = h[:u]
	if s.mode == CfCPure {
		f1, e, raw := cache[:u], cache[u:2*u], hd[:u]
		wTau, amp := p.wTau[:u], p.amp[:u]
		for j := range h {
			f := float64(raw[j])
			ex := m.exp(-s.ts * (math.Abs(float64(wTau[j])) + math.Abs(f)))
			a := float64(amp[j])
			f1[j], e[j] = raw[j], T(ex)
			h[j] = T(-(ex*f*a - a))
		}
		return
	}
	f1, f2, sg := cache[:u], cache[u:2*u], cache[2*u:3*u]
	r1, r2, ta, tb := hd[:u], hd[u:2*u], hd[2*u:3*u], hd[3*u:4*u]
	for j := range h {
		a := m.tanh(float64(r1[j]))
		b := m.tanh(float64(r2[j]))
		z := float64(ta[j])*s.ts + float64(tb[j])
		var g float64
		if z >= 0 {
			g = 1 / (1 + m.exp(-z))
		} else {
			e := m.exp(z)
			g = e / (1 + e)
		}
		f1[j], f2[j], sg[j] = T(a), T(b), T(g)
		if s.mode == CfCDefault {
			h[j] = T(a*(1-g) + g*b)
		} else {
			h[j] = T(a + g*b)
		}
	}
}

// expApprox is e^x to a relative error below 1e-8 (exact in the float64
// sense it is not: float32 kernels only). x = n·ln2 + r with |r| ≤ ln2/2,
// e^r by its degree-7 Taylor polynomial (remainder < 5.3e-9), 2^n from the
// exponent bits.
func expApprox(x float64) float64 {
	switch {
	case x > 88.8: // beyond float32's range
		return math.Inf(1)
	case x < -104: // below float32's smallest subnormal
		return 0
	}
	const (
		log2e = 1.4426950408889634
		ln2Hi = 6.93147180369123816490e-01
		ln2Lo = 1.90821492927058770002e-10
	)
	const round = 0x1.8p52 // adding 1.5·2^52 rounds to an integer (math.Floor is a call on amd64 v1)
	n := (x*log2e + round) - round
	r := x - n*ln2Hi - n*ln2Lo
	p := 1 + r*(1+r*(1./2+r*(1./6+r*(1./24+r*(1./120+r*(1./720+r*(1./5040)))))))
	return p * math.Float64frombits(uint64(int64(n)+1023)<<52)
}

// tanhApprox is tanh(x) to a relative error below 2e-8: an odd Taylor
// polynomial for |x| < 0.25 (remainder < 2.1e-9), 1 − 2/(e^{2|x|} + 1)
// through expApprox above (float32 kernels only).
func tanhApprox(x float64) float64 {
	a := math.Abs(x)
	if a < 0.25 {
		x2 := x * x
		return x * (1 + x2*(-1./3+x2*(2./15+x2*(-17./315+x2*(62./2835)))))
	}
	if a > 20 {
		return math.Copysign(1, x)
	}
	return math.Copysign(1-2/(expApprox(2*a)+1), x)
}

// sigmoidApprox is 1/(1 + e^{−x}) through expApprox, in the form that never
// overflows (float32 kernels only).
func sigmoidApprox(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + expApprox(-x))
	}
	e := expApprox(x)
	return e / (1 + e)
}

// scratch collects pooled buffers (nn.GetScratch) for release together.
// One per goroutine.
type scratch[T nn.Float] struct{ bufs []*[]T }

// get returns a buffer of n elements with undefined contents.
func (s *scratch[T]) get(n int) []T {
	p := nn.GetScratch[T](n)
	s.bufs = append(s.bufs, p)
	return *p
}

func (s *scratch[T]) release() {
	for _, p := range s.bufs {
		nn.PutScratch(p)
	}
	s.bufs = nil
}

// cfcSeqBackward: in = inputs…, packed forward output, its gradient; dst is
// the packed gradient of every input (gradShapes order).
func cfcSeqBackward[T nn.Float](s cfcSeqSpec, in [][]T, dst []T) {
	n := len(in)
	fwd, grad := in[n-2], in[n-1]
	p := cfcSplit(s, in[:n-2])
	rc, hs := s.rowCache(), p.headStride
	tbu := s.t * s.b * s.u
	hAll, cache := fwd[:tbu], fwd[tbu:]
	rows := s.t * s.b
	var tmp scratch[T]
	defer tmp.release()
	// Heads' weights stacked [heads·u, bu] for db_L = dHd·W_h.
	whCat := tmp.get(hs * s.bu)
	for h := 0; h < s.heads; h++ {
		copy(whCat[h*s.u*s.bu:], p.hw[h])
	}
	dHd := tmp.get(rows * hs)   // dL/d(head outputs), every step
	da := make([][]T, s.layers) // dL/da_l, every step
	for l := range da {
		da[l] = tmp.get(rows * s.bu)
	}
	workers := s.workers()
	var pureParts [][]float64 // per worker: dw_tau, dA partial sums
	if s.mode == CfCPure {
		pureParts = make([][]float64, max(workers, nn.Workers(s.b)))
	}
	run := func(w, lo, hi int) {
		var wtmp scratch[T]
		defer wtmp.release()
		nb := hi - lo
		dh := wtmp.get(nb * s.u)    // dL/dh_t for the rows
		carry := wtmp.get(nb * s.u) // dL/dh_t through step t+1
		clear(carry)
		db := wtmp.get(nb * s.bu)
		var pp []float64
		if pureParts != nil {
			pp = make([]float64, 2*s.u)
			pureParts[w] = pp
		}
		for t := s.t - 1; t >= 0; t-- {
			row0 := t*s.b + lo
			c := cache[row0*rc:]
			g := grad[row0*s.u : (row0+nb)*s.u]
			for i := range dh {
				dh[i] = g[i] + carry[i]
			}
			for r := 0; r < nb; r++ {
				cfcHeadsGrad(s, p, dh[r*s.u:(r+1)*s.u], c[r*rc+s.headOff():(r+1)*rc], dHd[(row0+r)*hs:(row0+r+1)*hs], pp)
			}
			// db_L = dHd·W_h
			nn.GemmSerial(false, false, nb, s.bu, hs, 1, dHd[row0*hs:], hs, whCat, s.bu, 0, db, s.bu)
			for l := s.layers - 1; l >= 0; l-- {
				dal := da[l][row0*s.bu : (row0+nb)*s.bu]
				for r := 0; r < nb; r++ {
					dr, gr := dal[r*s.bu:(r+1)*s.bu], db[r*s.bu:(r+1)*s.bu]
					if s.act.keepsA {
						for i, a := range c[r*rc+s.aOff(l) : r*rc+s.aOff(l)+s.bu] {
							dr[i] = T(float64(gr[i]) * s.act.dfA(float64(a)))
						}
						continue
					}
					for i, y := range c[r*rc+s.bOff(l) : r*rc+s.bOff(l)+s.bu] {
						dr[i] = T(float64(gr[i]) * s.act.dfY(float64(y)))
					}
				}
				if l > 0 {
					nn.GemmSerial(false, false, nb, s.bu, s.bu, 1, dal, s.bu, p.w[l], s.bu, 0, db, s.bu)
				}
			}
			// dL/dh_{t−1} through W_h: da_1·W_0[:, in:]
			if t > 0 {
				nn.GemmSerial(false, false, nb, s.u, s.bu, 1, da[0][row0*s.bu:], s.bu, p.w[0][s.in:], s.in+s.u, 0, carry, s.u)
			}
		}
	}
	if workers > 1 {
		nn.ParallelFor(s.b, run)
	} else {
		run(0, 0, s.b)
	}

	// Gradients of every input, in gradShapes order.
	off := 0
	take := func(n int) []T { d := dst[off : off+n]; off += n; return d }
	dx := take(rows * s.in)
	ld0 := s.in + s.u
	// dX = da_1·W_0[:, :in]
	nn.Gemm(false, false, rows, s.in, s.bu, 1, da[0], s.bu, p.w[0], ld0, 0, dx, s.in)
	for l := 0; l < s.layers; l++ {
		if l == 0 {
			dw := take(s.bu * ld0)
			nn.Gemm(true, false, s.bu, s.in, rows, 1, da[0], s.bu, p.x, s.in, 0, dw, ld0)
			if s.t > 1 {
				// h_{t−1} for t ≥ 1 are the states h_0…h_{T−2} (h_0 = 0 adds nothing).
				nn.Gemm(true, false, s.bu, s.u, (s.t-1)*s.b, 1, da[0][s.b*s.bu:], s.bu, hAll, s.u, 0, dw[s.in:], ld0)
			} else {
				for o := 0; o < s.bu; o++ {
					clear(dw[o*ld0+s.in : (o+1)*ld0])
				}
			}
		} else {
			dw := take(s.bu * s.bu)
			nn.Gemm(true, false, s.bu, s.bu, rows, 1, da[l], s.bu, cache[s.bOff(l-1):], rc, 0, dw, s.bu)
		}
		colSums(take(s.bu), da[l], rows, s.bu, s.bu)
	}
	// Heads: dW_h = dHdᵀ·b_L, one product for all heads.
	dwh := tmp.get(hs * s.bu)
	nn.Gemm(true, false, hs, s.bu, rows, 1, dHd, hs, cache[s.bOff(s.layers-1):], rc, 0, dwh, s.bu)
	for h := 0; h < s.heads; h++ {
		copy(take(s.u*s.bu), dwh[h*s.u*s.bu:(h+1)*s.u*s.bu])
		colSums(take(s.u), dHd[h*s.u:], rows, s.u, hs)
	}
	if s.mode == CfCPure {
		dTau, dA := take(s.u), take(s.u)
		for j := 0; j < s.u; j++ {
			var st, sa float64
			for _, pp := range pureParts {
				if pp != nil {
					st += pp[j]
					sa += pp[s.u+j]
				}
			}
			dTau[j], dA[j] = T(st), T(sa)
		}
	}
}

// cfcHeadsGrad back-propagates dh (one row) through the heads: it writes
// dL/d(head outputs) into dhd and, in pure mode, adds dw_τ and dA into pp.
func cfcHeadsGrad[T nn.Float](s cfcSeqSpec, p *cfcParams[T], dh, cache, dhd []T, pp []float64) {
	u := s.u
	dh = dh[:u]
	if s.mode == CfCPure {
		f1, e, out := cache[:u], cache[u:2*u], dhd[:u]
		wTau, amp, dTau, dA := p.wTau[:u], p.amp[:u], pp[:u], pp[u:2*u]
		for j, dv := range dh {
			d, f, ex, a := float64(dv), float64(f1[j]), float64(e[j]), float64(amp[j])
			// h = A − A·e·f, e = exp(−ts·(|w_τ| + |f|))
			out[j] = T(-d * a * ex * (1 - s.ts*math.Abs(f)))
			dA[j] += d * (1 - ex*f)
			dTau[j] += d * a * f * ex * s.ts * sign(float64(wTau[j]))
		}
		return
	}
	f1, f2, sg := cache[:u], cache[u:2*u], cache[2*u:3*u]
	d1, d2, dta, dtb := dhd[:u], dhd[u:2*u], dhd[2*u:3*u], dhd[3*u:4*u]
	gate := s.mode == CfCDefault
	for j, dv := range dh {
		d, a, b, g := float64(dv), float64(f1[j]), float64(f2[j]), float64(sg[j])
		da, ds := d, d*b // no_gate: h = f1 + σ·f2
		if gate {        // default: h = f1·(1 − σ) + σ·f2
			da, ds = d*(1-g), d*(b-a)
		}
		dz := ds * g * (1 - g)
		d1[j] = T(da * (1 - a*a))
		d2[j] = T(d * g * (1 - b*b))
		dta[j] = T(dz * s.ts)
		dtb[j] = T(dz)
	}
}

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

// colSums writes into dst[j] the sum over rows of src[r·ld + j], j < n.
func colSums[T nn.Float](dst, src []T, rows, n, ld int) {
	acc := make([]float64, n)
	for r := 0; r < rows; r++ {
		for j, v := range src[r*ld : r*ld+n] {
			acc[j] += float64(v)
		}
	}
	for j, v := range acc {
		dst[j] = T(v)
	}
}
