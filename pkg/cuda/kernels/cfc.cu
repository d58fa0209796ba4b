// Fused CfC sequence (model.CfCSeq, default, no_gate and pure modes): the
// executor runs the recurrence as cuBLAS GEMMs per step plus these
// kernels. Rows are the B samples of one step; the packed cache keeps, per
// (step, sample) row of rc values, the backbone outputs b_1…b_L, their
// inputs a_1…a_L when the activation's derivative needs them (silu,
// gelu), then the heads at offset off: f1, f2, σ (default, no_gate) or
// ff1's output and e = exp(−ts·(|w_τ| + |f1|)) (pure) (model.cfcSeqSpec's
// layout).

// Backbone activation by number: 0 lecun_tanh, 1 tanh, 2 sigmoid,
// 3 relu, 4 identity, 5 silu, 6 gelu.
__device__ float lsf_cfc_act(float a, int act) {
	if (act == 0) return 1.7159f * tanhf(0.666f * a);
	if (act == 1) return tanhf(a);
	if (act == 2 || act == 5) {
		float s = a >= 0.f ? 1.f / (1.f + expf(-a)) : expf(a) / (1.f + expf(a));
		return act == 2 ? s : a * s;
	}
	if (act == 3) return a > 0.f ? a : 0.f;
	if (act == 6) return 0.5f * a * (1.f + erff(a * 0.70710678f));
	return a;
}

// The activation's derivative from the cached value v: its output y, or
// for silu and gelu (5, 6) its input a.
__device__ float lsf_cfc_act_dy(float v, int act) {
	if (act == 0) { float t = v / 1.7159f; return 1.7159f * 0.666f * (1.f - t * t); }
	if (act == 1) return 1.f - v * v;
	if (act == 2) return v * (1.f - v);
	if (act == 3) return v > 0.f ? 1.f : 0.f;
	if (act == 5) {
		float s = v >= 0.f ? 1.f / (1.f + expf(-v)) : expf(v) / (1.f + expf(v));
		return s * (1.f + v * (1.f - s));
	}
	if (act == 6) return 0.5f * (1.f + erff(v * 0.70710678f)) + v * 0.39894228f * expf(-0.5f * v * v);
	return 1.f;
}

// c[r·ld + j] = act(c[r·ld + j] + bias[j]) for r < rows, j < n (a backbone
// layer's pre-activation, written in place in the cache); with keep > 0
// the pre-activation is also kept at c[r·ld + keep + j] (a_l, for the
// derivatives that need it).
extern "C" __global__ void lsf_cfc_bias_act(float* c, const float* bias, int rows, int n, int ld, int act, int keep) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * n) return;
	int r = i / n, j = i % n;
	float a = c[r * ld + j] + bias[j];
	if (keep > 0) c[r * ld + keep + j] = a;
	c[r * ld + j] = lsf_cfc_act(a, act);
}

// da[r·n + j] = g[r·n + j]·act'(v[r·ld + j]): back through a backbone
// layer from its cached output (or, for silu and gelu, its cached input) v.
extern "C" __global__ void lsf_cfc_act_grad(const float* g, const float* v, float* da, int rows, int n, int ld, int act) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * n) return;
	int r = i / n, j = i % n;
	da[i] = g[i] * lsf_cfc_act_dy(v[r * ld + j], act);
}

__device__ float lsf_cfc_sigmoid(float z) { return z >= 0.f ? 1.f / (1.f + expf(-z)) : expf(z) / (1.f + expf(z)); }

// Heads of one step; mode 0 no_gate, 1 default, 2 pure. Default and
// no_gate: hd [rows, 4u] holds the raw ff1, ff2, time_a, time_b outputs
// (bias hb [4u] added here); f1 = tanh, f2 = tanh, σ = sigmoid(time_a·ts
// + time_b) go to the cache at off, and the state h [rows, u] is
// f1·(1 − σ) + σ·f2 (default) or f1 + σ·f2 (no_gate); tau and amp are not
// read. Pure: hd [rows, u] holds ff1 (bias hb [u]): f = ff1, e =
// exp(−ts·(|w_τ| + |f|)) from tau [u] go to the cache and h = A − A·e·f
// with A = amp [u].
extern "C" __global__ void lsf_cfc_heads(const float* hd, const float* hb, const float* tau, const float* amp, float* cache, float* h, int rows, int u, int rc, int off, float ts, int mode) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * u) return;
	int r = i / u, j = i % u;
	float* c = cache + r * rc + off;
	if (mode == 2) {
		float f = hd[i] + hb[j];
		float e = expf(-ts * (fabsf(tau[j]) + fabsf(f)));
		c[j] = f;
		c[u + j] = e;
		h[i] = amp[j] - e * f * amp[j];
		return;
	}
	const float* x = hd + r * 4 * u;
	float a = tanhf(x[j] + hb[j]);
	float b = tanhf(x[u + j] + hb[u + j]);
	float g = lsf_cfc_sigmoid((x[2 * u + j] + hb[2 * u + j]) * ts + x[3 * u + j] + hb[3 * u + j]);
	c[j] = a;
	c[u + j] = b;
	c[2 * u + j] = g;
	h[i] = mode == 1 ? a * (1.f - g) + g * b : a + g * b;
}

// Back through the heads of one step: dh = g + carry (carry may be null
// when hasCarry is 0) [rows, u]; writes d(raw head outputs) into dhd
// ([rows, 4u], or [rows, u] in pure mode) from the cache (mode as
// lsf_cfc_heads). Pure mode also writes each row's contributions to dw_τ
// and dA into part [rows, 2u] (dw_τ at j, dA at u + j), which
// lsf_sum_rows reduces over the rows; elsewhere tau, amp and part are not
// read.
extern "C" __global__ void lsf_cfc_heads_grad(const float* g, const float* carry, const float* tau, const float* amp, const float* cache, float* dhd, float* part, int rows, int u, int rc, int off, float ts, int mode, int hasCarry) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * u) return;
	int r = i / u, j = i % u;
	float d = g[i] + (hasCarry ? carry[i] : 0.f);
	const float* c = cache + r * rc + off;
	if (mode == 2) {
		float f = c[j], e = c[u + j], a = amp[j], w = tau[j];
		float sw = w > 0.f ? 1.f : (w < 0.f ? -1.f : 0.f);
		dhd[i] = -d * a * e * (1.f - ts * fabsf(f));
		part[r * 2 * u + j] = d * a * f * e * ts * sw;
		part[r * 2 * u + u + j] = d * (1.f - e * f);
		return;
	}
	float a = c[j], b = c[u + j], s = c[2 * u + j];
	float da = d, ds = d * b;
	if (mode == 1) { da = d * (1.f - s); ds = d * (b - a); }
	float dz = ds * s * (1.f - s);
	float* o = dhd + r * 4 * u;
	o[j] = da * (1.f - a * a);
	o[u + j] = d * s * (1.f - b * b);
	o[2 * u + j] = dz * ts;
	o[3 * u + j] = dz;
}
