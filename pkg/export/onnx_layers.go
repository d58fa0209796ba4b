package export

import (
	"math"
	"strings"
)

// The layers of pkg/nn as ONNX nodes. Each reads its parameters from the
// store under the same names the Gorgonia layer creates.

// linear is nn.Linear{In: x's last axis, Out: out}: y = x·Wᵀ + b with
// "weight" [Out, In] and "bias" [Out], for x [B, In] (Gemm) or
// [B, L, In] (MatMul with Wᵀ, then Add).
func linear(s scope, x value, out int, bias bool) value {
	if s.failed() {
		return value{}
	}
	if x.rank() != 2 && x.rank() != 3 {
		s.fail("linear expects input [batch, in] or [batch, seq, in], got %v", x.shape)
		return value{}
	}
	w := s.param("weight", out, x.last())
	var b *value
	if bias {
		bv := s.param("bias", out)
		b = &bv
	}
	if x.rank() == 2 {
		return s.gemm(x, w, b)
	}
	y := s.matmul(x, s.transpose(w, 1, 0))
	if b != nil {
		y = s.add(y, *b)
	}
	return y
}

// conv is nn.Conv1d/2d/3d (by x's rank) with square kernel k, stride,
// symmetric padding, dilation and groups: "weight" [outC, inC/groups,
// k...], "bias" [outC].
func conv(s scope, x value, outC, k, stride, pad, dilation, groups int, bias bool) value {
	if s.failed() {
		return value{}
	}
	nd := x.rank() - 2
	inC := x.shape[1]
	if nd < 1 || nd > 3 || groups < 1 || inC%groups != 0 || outC%groups != 0 {
		s.fail("convolution of input %v to %d channels with %d groups is not supported", x.shape, outC, groups)
		return value{}
	}
	wshape := []int{outC, inC / groups}
	shape := []int{x.shape[0], outC}
	for i := 0; i < nd; i++ {
		wshape = append(wshape, k)
		o := (x.shape[2+i]+2*pad-dilation*(k-1)-1)/stride + 1
		if o < 1 {
			s.fail("convolution kernel %d does not fit input %v", k, x.shape)
			return value{}
		}
		shape = append(shape, o)
	}
	ins := []value{x, s.param("weight", wshape...)}
	if bias {
		ins = append(ins, s.param("bias", outC))
	}
	return s.op("Conv", ins, tFloat, shape,
		intsAttr("kernel_shape", repeat(k, nd)...), intsAttr("strides", repeat(stride, nd)...),
		intsAttr("pads", repeat(pad, 2*nd)...), intsAttr("dilations", repeat(dilation, nd)...),
		intAttr("group", groups))
}

// maxPool is nn.MaxPool1d/2d (by x's rank) with kernel k, stride and
// padding (padded cells never win, as in nn's pool).
func maxPool(s scope, x value, k, stride, pad int) value {
	if s.failed() {
		return value{}
	}
	nd := x.rank() - 2
	shape := []int{x.shape[0], x.shape[1]}
	for i := 0; i < nd; i++ {
		o := (x.shape[2+i]+2*pad-k)/stride + 1
		if o < 1 {
			s.fail("max pool %d does not fit input %v", k, x.shape)
			return value{}
		}
		shape = append(shape, o)
	}
	return s.op("MaxPool", []value{x}, tFloat, shape, intsAttr("kernel_shape", repeat(k, nd)...),
		intsAttr("strides", repeat(stride, nd)...), intsAttr("pads", repeat(pad, 2*nd)...))
}

// globalAvgPool is nn.GlobalAvgPool: x [B, C, spatial...] → [B, C]
// (GlobalAveragePool, then Flatten).
func globalAvgPool(s scope, x value) value {
	if s.failed() {
		return value{}
	}
	if x.rank() < 3 {
		s.fail("global average pool expects [B,C,spatial...], got %v", x.shape)
		return value{}
	}
	pooled := append([]int{x.shape[0], x.shape[1]}, repeat(1, x.rank()-2)...)
	p := s.op("GlobalAveragePool", []value{x}, tFloat, pooled)
	return s.op("Flatten", []value{p}, tFloat, []int{x.shape[0], x.shape[1]}, intAttr("axis", 1))
}

// batchNorm is nn.BatchNorm in evaluation mode (running statistics):
// "weight", "bias", "running_mean", "running_var" [C].
func batchNorm(s scope, x value, eps float64) value {
	if s.failed() {
		return value{}
	}
	c := x.shape[1]
	ins := []value{x, s.param("weight", c), s.param("bias", c), s.param("running_mean", c), s.param("running_var", c)}
	return s.op("BatchNormalization", ins, tFloat, x.shape, floatAttr("epsilon", eps))
}

// layerNorm is nn.LayerNorm over the last axis ("weight", "bias" [F]):
// LayerNormalization from opset 17, its decomposition before.
func layerNorm(s scope, x value, eps float64) value {
	if s.failed() {
		return value{}
	}
	f := x.last()
	w, b := s.param("weight", f), s.param("bias", f)
	if s.b.opset >= 17 {
		return s.op("LayerNormalization", []value{x, w, b}, tFloat, x.shape,
			intAttr("axis", -1), floatAttr("epsilon", eps))
	}
	axis := x.rank() - 1
	mean := s.reduce("ReduceMean", x, true, axis)
	d := s.sub2(x, mean)
	v := s.reduce("ReduceMean", s.mul(d, d), true, axis)
	rstd := s.unary("Sqrt", s.add(v, s.b.scalar(eps)))
	return s.add(s.mul(s.div(d, rstd), w), b)
}

// activation applies the nn.ActivationByName activation name.
func activation(s scope, name string, x value) value {
	if s.failed() {
		return value{}
	}
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "relu":
		return s.unary("Relu", x)
	case "tanh":
		return s.unary("Tanh", x)
	case "sigmoid":
		return s.unary("Sigmoid", x)
	case "silu":
		return s.mul(x, s.unary("Sigmoid", x))
	case "gelu":
		// Exact GELU: 0.5·x·(1 + erf(x/√2)).
		if s.b.opset >= 20 {
			return s.unary("Gelu", x)
		}
		e := s.unary("Erf", s.scaleBy(x, 1/math.Sqrt2))
		return s.mul(s.scaleBy(x, 0.5), s.add(e, s.b.scalar(1)))
	case "lecun_tanh":
		return s.scaleBy(s.unary("Tanh", s.scaleBy(x, 0.666)), 1.7159)
	case "identity":
		return x
	}
	s.fail("activation %q is not supported by the ONNX exporter", name)
	return value{}
}

// attention is nn.MultiHeadAttention without a mask: q [B, Lq, dim]
// attends over kv [B, Lk, kvDim] with heads heads; parameters "q_proj",
// "k_proj", "v_proj", "out_proj" under s. Scores are MatMul, scaled by
// 1/√dh, then Softmax over the keys.
func attention(s scope, q, kv value, dim, heads int) value {
	if s.failed() {
		return value{}
	}
	if heads < 1 || dim%heads != 0 || q.rank() != 3 || kv.rank() != 3 {
		s.fail("attention with dim %d and %d heads on %v and %v is not supported", dim, heads, q.shape, kv.shape)
		return value{}
	}
	dh := dim / heads
	lq, lk := q.shape[1], kv.shape[1]
	qp := linear(s.sub("q_proj"), q, dim, true)
	kp := linear(s.sub("k_proj"), kv, dim, true)
	vp := linear(s.sub("v_proj"), kv, dim, true)
	qh := s.transpose(s.reshape(qp, 0, lq, heads, dh), 0, 2, 1, 3) // [B,H,Lq,dh]
	kt := s.transpose(s.reshape(kp, 0, lk, heads, dh), 0, 2, 3, 1) // [B,H,dh,Lk]
	vh := s.transpose(s.reshape(vp, 0, lk, heads, dh), 0, 2, 1, 3) // [B,H,Lk,dh]
	scores := s.scaleBy(s.matmul(qh, kt), 1/math.Sqrt(float64(dh)))
	probs := s.unary("Softmax", scores, intAttr("axis", -1))
	o := s.transpose(s.matmul(probs, vh), 0, 2, 1, 3) // [B,Lq,H,dh]
	return linear(s.sub("out_proj"), s.reshape(o, 0, lq, dim), dim, true)
}

func repeat(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}
