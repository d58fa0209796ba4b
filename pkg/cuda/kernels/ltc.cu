// LTC synapses (model.LTC's synapse op): v [b, m] and synapse parameters
// mu, sigma, w, erev [m, n];
//   a_kij = w_ij·sigmoid(sigma_ij·(v_ki − mu_ij)),
//   out [b, 2n] = [Σ_i a_kij·erev_ij | Σ_i a_kij].
// One thread per output value, summing in the CPU kernel's order (i, or
// the batch row k, ascending): no atomics, deterministic.

__device__ float lsf_ltc_sigmoid(float z) {
	if (z >= 0.f) return 1.f / (1.f + expf(-z));
	float e = expf(z);
	return e / (1.f + e);
}

extern "C" __global__ void lsf_ltc_synapses(const float* v, const float* mu, const float* sigma, const float* w,
	const float* erev, float* out, int b, int m, int n) {
	int t = blockIdx.x * blockDim.x + threadIdx.x;
	if (t >= b * n) return;
	int k = t / n, j = t % n;
	float num = 0.f, den = 0.f;
	for (int i = 0; i < m; i++) {
		int p = i * n + j;
		float a = w[p] * lsf_ltc_sigmoid(sigma[p] * (v[k * m + i] - mu[p]));
		num += a * erev[p];
		den += a;
	}
	out[k * 2 * n + j] = num;
	out[k * 2 * n + n + j] = den;
}

// The backward's input gradient dv [b, m] from g = dL/dout [b, 2n]: one
// thread per (k, i), summing over j.
extern "C" __global__ void lsf_ltc_synapses_grad_v(const float* v, const float* mu, const float* sigma, const float* w,
	const float* erev, const float* g, float* dv, int b, int m, int n) {
	int t = blockIdx.x * blockDim.x + threadIdx.x;
	if (t >= b * m) return;
	int k = t / m, i = t % m;
	const float* gn = g + k * 2 * n;
	const float* gd = gn + n;
	float vi = v[t], acc = 0.f;
	for (int j = 0; j < n; j++) {
		int p = i * n + j;
		float s = lsf_ltc_sigmoid(sigma[p] * (vi - mu[p]));
		float dA = gn[j] * erev[p] + gd[j];
		float dz = dA * w[p] * s * (1.f - s);
		acc += dz * sigma[p];
	}
	dv[t] = acc;
}

// The parameters' gradients, packed as dp = [dmu | dsigma | dw | derev]
// (m·n each): one thread per synapse (i, j), summing over the batch.
extern "C" __global__ void lsf_ltc_synapses_grad_p(const float* v, const float* mu, const float* sigma, const float* w,
	const float* erev, const float* g, float* dp, int b, int m, int n) {
	int p = blockIdx.x * blockDim.x + threadIdx.x;
	int mn = m * n;
	if (p >= mn) return;
	int i = p / n, j = p % n;
	float dmu = 0.f, dsigma = 0.f, dw = 0.f, derev = 0.f;
	for (int k = 0; k < b; k++) {
		float diff = v[k * m + i] - mu[p];
		float s = lsf_ltc_sigmoid(sigma[p] * diff);
		float a = w[p] * s;
		float gn = g[k * 2 * n + j], gd = g[k * 2 * n + n + j];
		float dA = gn * erev[p] + gd;
		dw += dA * s;
		derev += gn * a;
		float dz = dA * w[p] * s * (1.f - s);
		dsigma += dz * diff;
		dmu -= dz * sigma[p];
	}
	dp[p] = dmu;
	dp[mn + p] = dsigma;
	dp[2 * mn + p] = dw;
	dp[3 * mn + p] = derev;
}

// Softplus as the LTC parameters use it (model.softplus, PyTorch's
// Softplus with β = 1 and threshold 20): log(1 + eˣ), x itself above 20;
// its backward is g·sigmoid(x) (g above 20).
extern "C" __global__ void lsf_softplus(const float* x, float* y, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n) return;
	y[i] = x[i] > 20.f ? x[i] : log1pf(expf(x[i]));
}
extern "C" __global__ void lsf_softplus_grad(const float* x, const float* g, float* dx, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n) return;
	if (x[i] > 20.f) {
		dx[i] = g[i];
		return;
	}
	float z = expf(x[i]);
	dx[i] = g[i] * (z / (z + 1.f));
}
