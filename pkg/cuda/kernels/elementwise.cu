// Elementwise kernels: one thread per element, float32, n elements.
// Gorgonia's elemBinOp/elemUnaryOp and the nn activation kernels and
// their "/grad" ops lower here.

#define LSF_IDX int i = blockIdx.x * blockDim.x + threadIdx.x; if (i >= n) return;

extern "C" __global__ void lsf_add(const float* a, const float* b, float* y, int n) { LSF_IDX y[i] = a[i] + b[i]; }
extern "C" __global__ void lsf_sub(const float* a, const float* b, float* y, int n) { LSF_IDX y[i] = a[i] - b[i]; }
extern "C" __global__ void lsf_div(const float* a, const float* b, float* y, int n) { LSF_IDX y[i] = a[i] / b[i]; }
extern "C" __global__ void lsf_mul(const float* a, const float* b, float* y, int n) { LSF_IDX y[i] = a[i] * b[i]; }
// Broadcast of the right operand: b has period m (a row vector repeated).
extern "C" __global__ void lsf_add_row(const float* a, const float* b, float* y, int n, int m) { LSF_IDX y[i] = a[i] + b[i % m]; }
extern "C" __global__ void lsf_mul_row(const float* a, const float* b, float* y, int n, int m) { LSF_IDX y[i] = a[i] * b[i % m]; }
extern "C" __global__ void lsf_div_row(const float* a, const float* b, float* y, int n, int m) { LSF_IDX y[i] = a[i] / b[i % m]; }
extern "C" __global__ void lsf_scale(const float* a, float s, float* y, int n) { LSF_IDX y[i] = s * a[i]; }
extern "C" __global__ void lsf_neg(const float* a, float* y, int n) { LSF_IDX y[i] = -a[i]; }
extern "C" __global__ void lsf_square(const float* a, float* y, int n) { LSF_IDX y[i] = a[i] * a[i]; }
extern "C" __global__ void lsf_log(const float* a, float* y, int n) { LSF_IDX y[i] = logf(a[i]); }
extern "C" __global__ void lsf_exp(const float* a, float* y, int n) { LSF_IDX y[i] = expf(a[i]); }
extern "C" __global__ void lsf_fill(float* y, float v, int n) { LSF_IDX y[i] = v; }
// y += a (gradient accumulation into bound dual values, DESIGN.md fact 4).
extern "C" __global__ void lsf_accum(const float* a, float* y, int n) { LSF_IDX y[i] += a[i]; }

extern "C" __global__ void lsf_relu(const float* x, float* y, int n) { LSF_IDX y[i] = x[i] > 0.f ? x[i] : 0.f; }
extern "C" __global__ void lsf_relu_grad(const float* x, const float* g, float* dx, int n) { LSF_IDX dx[i] = x[i] > 0.f ? g[i] : 0.f; }
extern "C" __global__ void lsf_tanh(const float* x, float* y, int n) { LSF_IDX y[i] = tanhf(x[i]); }
// dx = g·(1−y²) from the forward output y.
extern "C" __global__ void lsf_tanh_grad(const float* y, const float* g, float* dx, int n) { LSF_IDX dx[i] = g[i] * (1.f - y[i] * y[i]); }
extern "C" __global__ void lsf_sigmoid(const float* x, float* y, int n) {
	LSF_IDX
	float v = x[i];
	y[i] = v >= 0.f ? 1.f / (1.f + expf(-v)) : expf(v) / (1.f + expf(v));
}
extern "C" __global__ void lsf_sigmoid_grad(const float* y, const float* g, float* dx, int n) { LSF_IDX dx[i] = g[i] * y[i] * (1.f - y[i]); }
extern "C" __global__ void lsf_silu(const float* x, float* y, int n) { LSF_IDX float s = 1.f / (1.f + expf(-x[i])); y[i] = x[i] * s; }
extern "C" __global__ void lsf_silu_grad(const float* x, const float* g, float* dx, int n) {
	LSF_IDX
	float s = 1.f / (1.f + expf(-x[i]));
	dx[i] = g[i] * s * (1.f + x[i] * (1.f - s));
}
// lecun_tanh(u) = 1.7159·tanh(0.666·u) (ncps).
extern "C" __global__ void lsf_lecun_tanh(const float* x, float* y, int n) { LSF_IDX y[i] = 1.7159f * tanhf(0.666f * x[i]); }
extern "C" __global__ void lsf_lecun_tanh_grad(const float* x, const float* g, float* dx, int n) {
	LSF_IDX
	float t = tanhf(0.666f * x[i]);
	dx[i] = g[i] * 1.7159f * 0.666f * (1.f - t * t);
}
extern "C" __global__ void lsf_gelu(const float* x, float* y, int n) { LSF_IDX y[i] = 0.5f * x[i] * (1.f + erff(x[i] * 0.70710678f)); }
extern "C" __global__ void lsf_gelu_grad(const float* x, const float* g, float* dx, int n) {
	LSF_IDX
	float v = x[i];
	dx[i] = g[i] * (0.5f * (1.f + erff(v * 0.70710678f)) + v * 0.39894228f * expf(-0.5f * v * v));
}

// Heaviside spike S = H(x) with strict > (DESIGN.md §1).
extern "C" __global__ void lsf_heaviside(const float* x, float* y, int n) { LSF_IDX y[i] = x[i] > 0.f ? 1.f : 0.f; }
// Surrogate derivative m·s(x) (nn.Surrogate.Deriv): kind 0 fast_sigmoid
// 1/(1+k|x|)^2, 1 atan k/2/(1+(π/2·k·x)^2), 2 sigmoid k·σ(kx)(1−σ(kx)),
// 3 triangular k·max(0, 1−k|x|), 4 straight-through 1.
__device__ float lsf_surrogate(float x, int kind, float k, float m) {
	float d;
	if (kind == 0) {
		float q = 1.f + k * fabsf(x);
		d = 1.f / (q * q);
	} else if (kind == 1) {
		float q = 1.5707963f * k * x;
		d = 0.5f * k / (1.f + q * q);
	} else if (kind == 2) {
		float s = 1.f / (1.f + expf(-k * x));
		d = k * s * (1.f - s);
	} else if (kind == 3) {
		d = k * fmaxf(0.f, 1.f - k * fabsf(x));
	} else {
		d = 1.f;
	}
	return m * d;
}

// Spike backward: dx = g·m·s(x).
extern "C" __global__ void lsf_spike_grad(const float* x, const float* g, float* dx, int n, int kind, float k, float m) {
	LSF_IDX
	dx[i] = g[i] * lsf_surrogate(x[i], kind, k, m);
}

// Fused LIF sequence (model.LIFSeq): one thread per element i of the
// n = B·N currents, neuron i % units. cur is [n] (direct coding, perStep
// 0) or [T, n]; spikes and mem are [T, n] (mem holds U_1…U_T for the
// backward). reset 0 subtract, 1 zero, 2 none; the reset is
// H(U_{t−1} − θ), detached (DESIGN.md §1). The bits of learn replace the
// fixed beta, theta by per-neuron parameters [units]: 1 β from bp
// (clamped to [0, 1]), 2 θ from tp, 4 the graded spike factor g from gp
// (spikes g·H(U − θ); the reset stays binary). Pointers whose bit is
// unset are not read (may be null).
__device__ void lsf_lif_neuron(const float* bp, const float* tp, const float* gp, int j, int learn, float beta, float theta, float* b, float* th, float* g) {
	*b = (learn & 1) ? fminf(fmaxf(bp[j], 0.f), 1.f) : beta;
	*th = (learn & 2) ? tp[j] : theta;
	*g = (learn & 4) ? gp[j] : 1.f;
}

extern "C" __global__ void lsf_lif_seq_forward(const float* cur, const float* bp, const float* tp, const float* gp, float* spikes, float* mem, int n, int units, int steps, int perStep, int reset, int learn, float beta, float theta) {
	LSF_IDX
	float b, th, g;
	lsf_lif_neuron(bp, tp, gp, i % units, learn, beta, theta, &b, &th, &g);
	float u = 0.f;
	for (int t = 0; t < steps; t++) {
		float x = cur[perStep ? t * n + i : i];
		bool fired = u - th > 0.f;
		if (reset == 0) u = b * u + x - (fired ? th : 0.f);
		else if (reset == 1) u = fired ? x : b * u + x;
		else u = b * u + x;
		mem[t * n + i] = u;
		spikes[t * n + i] = u - th > 0.f ? g : 0.f;
	}
}

// LIFSeq backward through time from g = dL/dS [T, n] and the membranes
// mem of lsf_lif_seq_forward (same parameters): dcur [n] (direct coding:
// Σ_t δ_t) or [T, n]. With learn ≠ 0 each thread also writes its sums
// over time of the parameter gradients into part, laid out [B, k·units]
// for the k set bits (in order dβ, dθ, dg); lsf_sum_rows then reduces
// them over the batch (deterministic: no atomics). dβ is 0 where the raw
// β lies outside [0, 1] (the clamp passes no gradient there).
extern "C" __global__ void lsf_lif_seq_backward(const float* mem, const float* g, const float* bp, const float* tp, const float* gp, float* dcur, float* part, int n, int units, int steps, int perStep, int reset, int learn, float beta, float theta, int kind, float k, float m) {
	LSF_IDX
	int j = i % units;
	float b, th, gf;
	lsf_lif_neuron(bp, tp, gp, j, learn, beta, theta, &b, &th, &gf);
	float carry = 0.f, sum = 0.f, sb = 0.f, st = 0.f, sg = 0.f;
	for (int t = steps - 1; t >= 0; t--) {
		float ut = mem[t * n + i], p = t > 0 ? mem[(t - 1) * n + i] : 0.f;
		float gt = g[t * n + i];
		float gs = gt * gf * lsf_surrogate(ut - th, kind, k, m);
		float delta = gs + carry;
		if (perStep) dcur[t * n + i] = delta;
		else sum += delta;
		bool fired = p - th > 0.f;
		float keep = (reset == 1 && fired) ? 0.f : 1.f;
		sb += delta * keep * p;
		st -= gs;
		if (reset == 0 && fired) st -= delta;
		if (ut - th > 0.f) sg += gt;
		carry = delta * b * keep;
	}
	if (!perStep) dcur[i] = sum;
	if (learn == 0) return;
	int parts = (learn & 1) + ((learn >> 1) & 1) + ((learn >> 2) & 1);
	float* o = part + (i / units) * parts * units + j;
	if (learn & 1) {
		*o = (bp[j] >= 0.f && bp[j] <= 1.f) ? sb : 0.f;
		o += units;
	}
	if (learn & 2) {
		*o = st;
		o += units;
	}
	if (learn & 4) *o = sg;
}
