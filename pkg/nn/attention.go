package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MultiHeadAttention is multi-head scaled dot-product attention (Vaswani et
// al. 2017) with separate query and key/value sequences, as
// torch.nn.MultiheadAttention(Dim, Heads, dropout=Dropout, kdim=vdim=KVDim,
// batch_first=True):
//
//	Q = q·Wqᵀ+bq, K = kv·Wkᵀ+bk, V = kv·Wvᵀ+bv      (each [B, L, Dim])
//	A_h = softmax(Q_h·K_hᵀ/√dh + M)                  (dh = Dim/Heads)
//	out = concat_h(dropout(A_h)·V_h)·Woᵀ + bo
//
// Parameters under the scope: Linear layers "q_proj" [Dim, Dim],
// "k_proj" and "v_proj" [Dim, KVDim], "out_proj" [Dim, Dim], each with a
// bias [Dim] — the same parameter count as PyTorch. Initialisation follows
// PyTorch: Xavier-uniform q/k/v weights, the default Linear init for
// out_proj, zero biases.
type MultiHeadAttention struct {
	// Dim is the query and output width; it must be a multiple of Heads.
	Dim int
	// Heads is the number of attention heads (≥ 1).
	Heads int
	// KVDim is the width of the key/value input; 0 means Dim.
	KVDim int
	// Dropout is the probability of dropping an attention weight in
	// training (inverted dropout on A, as PyTorch); 0 disables it. It is
	// inactive in evaluation.
	Dropout float64
}

// Forward attends from q [B, Lq, Dim] over kv [B, Lk, KVDim] and returns
// out [B, Lq, Dim] and the attention weights [B, Heads, Lq, Lk] (each row
// sums to 1 over the attended keys; taken before dropout, so they are what
// attention-map plots should show).
//
// mask is nil or a float tensor [B, Lk] of the graph's dtype: an entry 0
// masks key j of sample b (its score is −∞), any other value attends. A
// query whose keys are all masked gets all-zero weights, so its output is
// out_proj's bias (PyTorch would produce NaN).
func (m MultiHeadAttention) Forward(c *Ctx, q, kv, mask *G.Node) (out, weights *G.Node, err error) {
	if m.Dim <= 0 || m.Heads <= 0 || m.KVDim < 0 {
		return nil, nil, c.Errorf("attention: Dim, Heads must be positive and KVDim ≥ 0, got Dim=%d Heads=%d KVDim=%d", m.Dim, m.Heads, m.KVDim)
	}
	if m.Dim%m.Heads != 0 {
		return nil, nil, c.Errorf("attention: Dim %d is not divisible by Heads %d", m.Dim, m.Heads)
	}
	if !validProbability(m.Dropout) {
		return nil, nil, c.Errorf("attention: Dropout must be in [0, 1), got %g", m.Dropout)
	}
	kvDim := m.KVDim
	if kvDim == 0 {
		kvDim = m.Dim
	}
	if q == nil || kv == nil {
		return nil, nil, c.Errorf("attention: nil query or key/value input")
	}
	qs, ks := q.Shape(), kv.Shape()
	if qs.Dims() != 3 || qs[2] != m.Dim {
		return nil, nil, c.Errorf("attention expects query [batch, Lq, %d], got %v", m.Dim, qs)
	}
	if ks.Dims() != 3 || ks[2] != kvDim || ks[0] != qs[0] {
		return nil, nil, c.Errorf("attention expects key/value [%d, Lk, %d] for query %v, got %v", qs[0], kvDim, qs, ks)
	}
	for _, name := range []string{"q_proj", "k_proj", "v_proj", "out_proj"} {
		// Created here first so that Linear finds PyTorch's zero biases.
		if _, err := c.Sub(name).Param("bias", []int{m.Dim}, Zeros()); err != nil {
			return nil, nil, err
		}
	}
	xavier := XavierUniform(1)
	qp, err := Linear{In: m.Dim, Out: m.Dim, WeightInit: xavier}.Forward(c.Sub("q_proj"), q)
	if err != nil {
		return nil, nil, err
	}
	kp, err := Linear{In: kvDim, Out: m.Dim, WeightInit: xavier}.Forward(c.Sub("k_proj"), kv)
	if err != nil {
		return nil, nil, err
	}
	vp, err := Linear{In: kvDim, Out: m.Dim, WeightInit: xavier}.Forward(c.Sub("v_proj"), kv)
	if err != nil {
		return nil, nil, err
	}
	o, weights, err := ScaledDotProductAttention(c, qp, kp, vp, mask, m.Heads, m.Dropout)
	if err != nil {
		return nil, nil, err
	}
	out, err = Linear{In: m.Dim, Out: m.Dim}.Forward(c.Sub("out_proj"), o)
	if err != nil {
		return nil, nil, err
	}
	return out, weights, nil
}

// ScaledDotProductAttention is the parameter-free core of multi-head
// attention on already projected q [B, Lq, D], k [B, Lk, D], v [B, Lk, D]
// with D = heads·dh, head h using features [h·dh, (h+1)·dh):
//
//	A = softmax(q_h·k_hᵀ/√dh + M) [B, heads, Lq, Lk],  out_h = dropout(A)_h·v_h
//
// It returns out [B, Lq, D] (heads concatenated on the last axis) and A
// (before dropout). mask is as in MultiHeadAttention.Forward. dropout is
// active only when c.Train(); its mask is drawn as in Dropout.
//
// It is two fused kernels (weights, then weights·v) whose backward passes
// are four kernels; the softmax backward is recomputed from A.
func ScaledDotProductAttention(c *Ctx, q, k, v, mask *G.Node, heads int, dropout float64) (out, weights *G.Node, err error) {
	for i, n := range []*G.Node{q, k, v} {
		if err := checkFloatNode("attention", n); err != nil {
			return nil, nil, c.Errorf("%v", err)
		}
		if n.Shape().Dims() != 3 || n.Dtype() != c.Dtype() {
			return nil, nil, c.Errorf("attention: input %d must be [batch, seq, dim] of dtype %v, got %v %v", i, c.Dtype(), n.Dtype(), n.Shape())
		}
	}
	qs, ks, vs := q.Shape(), k.Shape(), v.Shape()
	if heads <= 0 || qs[2]%heads != 0 {
		return nil, nil, c.Errorf("attention: width %d is not divisible by %d heads", qs[2], heads)
	}
	if !ks.Eq(vs) || ks[0] != qs[0] || ks[2] != qs[2] {
		return nil, nil, c.Errorf("attention: keys %v and values %v must both be [%d, Lk, %d]", ks, vs, qs[0], qs[2])
	}
	if mask != nil {
		if mask.Dtype() != c.Dtype() || mask.Shape().Dims() != 2 || mask.Shape()[0] != qs[0] || mask.Shape()[1] != ks[1] {
			return nil, nil, c.Errorf("attention: mask must be %v [%d, %d] (batch, keys), got %v %v", c.Dtype(), qs[0], ks[1], mask.Dtype(), mask.Shape())
		}
	}
	g := attnGeom{b: qs[0], lq: qs[1], lk: ks[1], d: qs[2], heads: heads, dh: qs[2] / heads}
	weights, err = g.probs(q, k, mask)
	if err != nil {
		return nil, nil, c.Errorf("attention: %v", err)
	}
	dropped, err := Dropout{P: dropout}.Forward(c.Sub("attn_dropout"), weights)
	if err != nil {
		return nil, nil, err
	}
	if out, err = g.apply(dropped, v); err != nil {
		return nil, nil, c.Errorf("attention: %v", err)
	}
	return out, weights, nil
}

// attnGeom holds the sizes of one attention core. Per (batch b, head h),
// head h of q is the Lq×dh matrix at offset b·Lq·D + h·dh with row stride
// D; the weights block is Lq×Lk at offset (b·heads+h)·Lq·Lk.
type attnGeom struct{ b, lq, lk, d, heads, dh int }

func (g attnGeom) String() string {
	return fmt.Sprintf("B=%d,Lq=%d,Lk=%d,D=%d,heads=%d", g.b, g.lq, g.lk, g.d, g.heads)
}

func (g attnGeom) scale() float64         { return 1 / math.Sqrt(float64(g.dh)) }
func (g attnGeom) wShape() tensor.Shape   { return tensor.Shape{g.b, g.heads, g.lq, g.lk} }
func (g attnGeom) seqOff(b, l, h int) int { return b*l*g.d + h*g.dh }
func (g attnGeom) wOff(b, h int) int      { return (b*g.heads + h) * g.lq * g.lk }
func (g attnGeom) blocks() int            { return g.b * g.heads }
func (g attnGeom) split(i int) (b, h int) { return i / g.heads, i % g.heads }
func (g attnGeom) qShape() tensor.Shape   { return tensor.Shape{g.b, g.lq, g.d} }
func (g attnGeom) kShape() tensor.Shape   { return tensor.Shape{g.b, g.lk, g.d} }

// constShape returns a Kernel.Shape for a kernel whose output shape is
// fixed when the graph is built (inputs were validated by the builder).
func constShape(s tensor.Shape) func([]tensor.Shape) (tensor.Shape, error) {
	return func([]tensor.Shape) (tensor.Shape, error) { return s.Clone(), nil }
}

// probs adds the kernel A = masked softmax(q·kᵀ/√dh) and its backward.
func (g attnGeom) probs(q, k, mask *G.Node) (*G.Node, error) {
	masked := mask != nil
	name := fmt.Sprintf("AttentionWeights{%v,masked=%v}", g, masked)
	kern := &Kernel{Name: name, Shape: constShape(g.wShape())}
	if masked {
		kern.NoGrad = []bool{false, false, true}
	}
	kern.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(g.wShape(), in, dst,
			func(in [][]float64, out []float64) { attnWeights(g, in, out) },
			func(in [][]float32, out []float32) { attnWeights(g, in, out) })
	}
	kern.Backward = func(in G.Nodes, a, da *G.Node) (G.Nodes, error) {
		dq := &Kernel{Name: name + "/dq", Shape: constShape(g.qShape())}
		dq.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return floatKernel(g.qShape(), in, dst,
				func(in [][]float64, out []float64) { attnScoreGrad(g, in[0], in[1], in[2], out, false) },
				func(in [][]float32, out []float32) { attnScoreGrad(g, in[0], in[1], in[2], out, false) })
		}
		dk := &Kernel{Name: name + "/dk", Shape: constShape(g.kShape())}
		dk.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return floatKernel(g.kShape(), in, dst,
				func(in [][]float64, out []float64) { attnScoreGrad(g, in[0], in[1], in[2], out, true) },
				func(in [][]float32, out []float32) { attnScoreGrad(g, in[0], in[1], in[2], out, true) })
		}
		gq, err := Apply(dq, a, da, in[1])
		if err != nil {
			return nil, err
		}
		gk, err := Apply(dk, a, da, in[0])
		if err != nil {
			return nil, err
		}
		gs := G.Nodes{gq, gk}
		if masked {
			gs = append(gs, nil)
		}
		return gs, nil
	}
	inputs := []*G.Node{q, k}
	if masked {
		inputs = append(inputs, mask)
	}
	return Apply(kern, inputs...)
}

// apply adds the kernel out_h = A_h·v_h and its backward.
func (g attnGeom) apply(a, v *G.Node) (*G.Node, error) {
	name := fmt.Sprintf("AttentionApply{%v}", g)
	kern := &Kernel{Name: name, Shape: constShape(g.qShape())}
	kern.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(g.qShape(), in, dst,
			func(in [][]float64, out []float64) { attnApply(g, in[0], in[1], out) },
			func(in [][]float32, out []float32) { attnApply(g, in[0], in[1], out) })
	}
	kern.Backward = func(in G.Nodes, _, dout *G.Node) (G.Nodes, error) {
		da := &Kernel{Name: name + "/da", Shape: constShape(g.wShape())}
		da.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return floatKernel(g.wShape(), in, dst,
				func(in [][]float64, out []float64) { attnApplyGradA(g, in[0], in[1], out) },
				func(in [][]float32, out []float32) { attnApplyGradA(g, in[0], in[1], out) })
		}
		dv := &Kernel{Name: name + "/dv", Shape: constShape(g.kShape())}
		dv.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return floatKernel(g.kShape(), in, dst,
				func(in [][]float64, out []float64) { attnApplyGradV(g, in[0], in[1], out) },
				func(in [][]float32, out []float32) { attnApplyGradV(g, in[0], in[1], out) })
		}
		ga, err := Apply(da, dout, in[1])
		if err != nil {
			return nil, err
		}
		gv, err := Apply(dv, in[0], dout)
		if err != nil {
			return nil, err
		}
		return G.Nodes{ga, gv}, nil
	}
	return Apply(kern, a, v)
}

// attnWeights computes A from in = (q, k[, mask]).
func attnWeights[T Float](g attnGeom, in [][]T, a []T) {
	q, k := in[0], in[1]
	var mask []T
	if len(in) > 2 {
		mask = in[2]
	}
	parallelFor(g.blocks(), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			b, h := g.split(i)
			w := a[g.wOff(b, h) : g.wOff(b, h)+g.lq*g.lk]
			blasGemm(false, true, g.lq, g.lk, g.dh, T(g.scale()), q[g.seqOff(b, g.lq, h):], g.d, k[g.seqOff(b, g.lk, h):], g.d, 0, w, g.lk)
			var keep []T
			if mask != nil {
				keep = mask[b*g.lk : (b+1)*g.lk]
			}
			for r := 0; r < len(w); r += g.lk {
				maskedSoftmaxRow(w[r:r+g.lk], keep)
			}
		}
	})
}

// maskedSoftmaxRow replaces the scores s by their softmax over the entries
// whose keep value is non-zero (all entries when keep is nil); the other
// entries become 0, and a row with nothing kept becomes all zeros.
func maskedSoftmaxRow[T Float](s, keep []T) {
	if keep == nil {
		softmaxRow(s, s)
		return
	}
	m := math.Inf(-1)
	for j, v := range s {
		if keep[j] != 0 {
			m = math.Max(m, float64(v))
		}
	}
	if math.IsInf(m, -1) {
		clear(s)
		return
	}
	var sum float64
	for j, v := range s {
		if keep[j] == 0 {
			s[j] = 0
			continue
		}
		e := math.Exp(float64(v) - m)
		s[j] = T(e)
		sum += e
	}
	inv := 1 / sum
	for j := range s {
		s[j] = T(float64(s[j]) * inv)
	}
}

// attnScoreGrad computes, per block, dS = A⊙(dA − rowsum(dA⊙A))/√dh and then
// dq_h = dS·k_h (other = k) or, with wrtKey, dk_h = dSᵀ·q_h (other = q).
func attnScoreGrad[T Float](g attnGeom, a, da, other, out []T, wrtKey bool) {
	scale := g.scale()
	parallelFor(g.blocks(), func(_, lo, hi int) {
		ds := make([]T, g.lq*g.lk)
		for i := lo; i < hi; i++ {
			b, h := g.split(i)
			off := g.wOff(b, h)
			aw, dw := a[off:off+g.lq*g.lk], da[off:off+g.lq*g.lk]
			for r := 0; r < len(aw); r += g.lk {
				var dot float64
				for j := r; j < r+g.lk; j++ {
					dot += float64(aw[j]) * float64(dw[j])
				}
				for j := r; j < r+g.lk; j++ {
					ds[j] = T(float64(aw[j]) * (float64(dw[j]) - dot) * scale)
				}
			}
			if wrtKey {
				blasGemm(true, false, g.lk, g.dh, g.lq, 1, ds, g.lk, other[g.seqOff(b, g.lq, h):], g.d, 0, out[g.seqOff(b, g.lk, h):], g.d)
			} else {
				blasGemm(false, false, g.lq, g.dh, g.lk, 1, ds, g.lk, other[g.seqOff(b, g.lk, h):], g.d, 0, out[g.seqOff(b, g.lq, h):], g.d)
			}
		}
	})
}

// attnApply: out_h = A_h·v_h.
func attnApply[T Float](g attnGeom, a, v, out []T) {
	parallelFor(g.blocks(), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			b, h := g.split(i)
			blasGemm(false, false, g.lq, g.dh, g.lk, 1, a[g.wOff(b, h):], g.lk, v[g.seqOff(b, g.lk, h):], g.d, 0, out[g.seqOff(b, g.lq, h):], g.d)
		}
	})
}

// attnApplyGradA: dA_h = dout_h·v_hᵀ.
func attnApplyGradA[T Float](g attnGeom, dout, v, da []T) {
	parallelFor(g.blocks(), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			b, h := g.split(i)
			blasGemm(false, true, g.lq, g.lk, g.dh, 1, dout[g.seqOff(b, g.lq, h):], g.d, v[g.seqOff(b, g.lk, h):], g.d, 0, da[g.wOff(b, h):], g.lk)
		}
	})
}

// attnApplyGradV: dv_h = A_hᵀ·dout_h.
func attnApplyGradV[T Float](g attnGeom, a, dout, dv []T) {
	parallelFor(g.blocks(), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			b, h := g.split(i)
			blasGemm(true, false, g.lk, g.dh, g.lq, 1, a[g.wOff(b, h):], g.lk, dout[g.seqOff(b, g.lq, h):], g.d, 0, dv[g.seqOff(b, g.lk, h):], g.d)
		}
	})
}
