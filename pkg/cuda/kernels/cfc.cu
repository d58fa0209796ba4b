// Fused CfC sequence (model.CfCSeq, default and no_gate modes): the
// executor runs the recurrence as cuBLAS GEMMs per step plus these
// kernels. Rows are the B samples of one step; the packed cache keeps, per
// (step, sample) row of rc values, the backbone outputs b_1…b_L then the
// heads f1, f2, σ at offset off (model.cfcSeqSpec's layout).

// Backbone activation by number: 0 lecun_tanh, 1 tanh, 2 sigmoid,
// 3 relu, 4 identity.
__device__ float lsf_cfc_act(float a, int act) {
	if (act == 0) return 1.7159f * tanhf(0.666f * a);
	if (act == 1) return tanhf(a);
	if (act == 2) return a >= 0.f ? 1.f / (1.f + expf(-a)) : expf(a) / (1.f + expf(a));
	if (act == 3) return a > 0.f ? a : 0.f;
	return a;
}

// The activation's derivative from its output y.
__device__ float lsf_cfc_act_dy(float y, int act) {
	if (act == 0) { float t = y / 1.7159f; return 1.7159f * 0.666f * (1.f - t * t); }
	if (act == 1) return 1.f - y * y;
	if (act == 2) return y * (1.f - y);
	if (act == 3) return y > 0.f ? 1.f : 0.f;
	return 1.f;
}

// c[r·ld + j] = act(c[r·ld + j] + bias[j]) for r < rows, j < n (a backbone
// layer's pre-activation, written in place in the cache).
extern "C" __global__ void lsf_cfc_bias_act(float* c, const float* bias, int rows, int n, int ld, int act) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * n) return;
	int r = i / n, j = i % n;
	c[r * ld + j] = lsf_cfc_act(c[r * ld + j] + bias[j], act);
}

// da[r·n + j] = g[r·n + j]·act'(y[r·ld + j]): back through a backbone
// layer from its cached output y.
extern "C" __global__ void lsf_cfc_act_grad(const float* g, const float* y, float* da, int rows, int n, int ld, int act) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * n) return;
	int r = i / n, j = i % n;
	da[i] = g[i] * lsf_cfc_act_dy(y[r * ld + j], act);
}

// Heads of one step: hd [rows, 4u] holds the raw ff1, ff2, time_a, time_b
// outputs (bias hb [4u] added here); f1 = tanh, f2 = tanh, σ =
// sigmoid(time_a·ts + time_b) go to the cache at off, and the state h
// [rows, u] is f1·(1 − σ) + σ·f2 (gate 1, default) or f1 + σ·f2 (no_gate).
extern "C" __global__ void lsf_cfc_heads(const float* hd, const float* hb, float* cache, float* h, int rows, int u, int rc, int off, float ts, int gate) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * u) return;
	int r = i / u, j = i % u;
	const float* x = hd + r * 4 * u;
	float a = tanhf(x[j] + hb[j]);
	float b = tanhf(x[u + j] + hb[u + j]);
	float z = (x[2 * u + j] + hb[2 * u + j]) * ts + x[3 * u + j] + hb[3 * u + j];
	float g = z >= 0.f ? 1.f / (1.f + expf(-z)) : expf(z) / (1.f + expf(z));
	float* c = cache + r * rc + off;
	c[j] = a;
	c[u + j] = b;
	c[2 * u + j] = g;
	h[i] = gate ? a * (1.f - g) + g * b : a + g * b;
}

// Back through the heads of one step: dh = g + carry (carry may be null
// when hasCarry is 0) [rows, u]; writes d(ff1, ff2, time_a, time_b raw
// outputs) into dhd [rows, 4u] from the cached f1, f2, σ.
extern "C" __global__ void lsf_cfc_heads_grad(const float* g, const float* carry, const float* cache, float* dhd, int rows, int u, int rc, int off, float ts, int gate, int hasCarry) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * u) return;
	int r = i / u, j = i % u;
	float d = g[i] + (hasCarry ? carry[i] : 0.f);
	const float* c = cache + r * rc + off;
	float a = c[j], b = c[u + j], s = c[2 * u + j];
	float da = d, ds = d * b;
	if (gate) { da = d * (1.f - s); ds = d * (b - a); }
	float dz = ds * s * (1.f - s);
	float* o = dhd + r * 4 * u;
	o[j] = da * (1.f - a * a);
	o[u + j] = d * s * (1.f - b * b);
	o[2 * u + j] = dz * ts;
	o[3 * u + j] = dz;
}
