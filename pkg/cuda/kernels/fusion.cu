// Kernels of the fusion strategies and modality pooling (pkg/fusion,
// pkg/modality). Masks are [B, M] (1 keep, 0 missing) and col picks the
// modality.

// y[b, :] = mask[b, col]·f[b, :] + (1 − mask[b, col])·e (fusion.Substitute).
extern "C" __global__ void lsf_substitute(const float* f, const float* e, const float* mask, float* y, int b, int d, int m, int col) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= b * d) return;
	float k = mask[(i / d) * m + col];
	y[i] = k * f[i] + (1.f - k) * e[i % d];
}
// y[b, :] = g[b, :]·mask[b, col] (fusion.MaskRows).
extern "C" __global__ void lsf_mask_rows(const float* g, const float* mask, float* y, int b, int d, int m, int col) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= b * d) return;
	y[i] = g[i] * mask[(i / d) * m + col];
}
// de[k] = Σ_b (1 − mask[b, col])·g[b, k] (fusion.MissingGrad).
extern "C" __global__ void lsf_missing_grad(const float* g, const float* mask, float* de, int b, int d, int m, int col) {
	int k = blockIdx.x * blockDim.x + threadIdx.x;
	if (k >= d) return;
	float s = 0.f;
	for (int r = 0; r < b; r++) s += (1.f - mask[r * m + col]) * g[r * d + k];
	de[k] = s;
}

// Softmax of the m modality-weight logits, computed by every thread
// (m is tiny).
__device__ float lsf_weight_of(const float* logits, int m, int col) {
	float mx = logits[0];
	for (int j = 1; j < m; j++) mx = fmaxf(mx, logits[j]);
	float s = 0.f;
	for (int j = 0; j < m; j++) s += expf(logits[j] - mx);
	return expf(logits[col] - mx) / s;
}
// y = factor·w[col]·x, w = softmax(logits) (fusion.Weighted; its input
// gradient is the same kernel applied to g).
extern "C" __global__ void lsf_weighted(const float* x, const float* logits, float* y, int n, int m, int col, float factor) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n) return;
	y[i] = factor * lsf_weight_of(logits, m, col) * x[i];
}
// dlogits[j] = factor·S·w[col]·(δ(j,col) − w[j]), S = Σ g⊙x: one block of
// 256 threads (fusion.WeightedLogitGrad).
extern "C" __global__ void lsf_weighted_logit_grad(const float* g, const float* x, const float* logits, float* dl, int n, int m, int col, float factor) {
	__shared__ float part[256];
	float s = 0.f;
	for (int i = threadIdx.x; i < n; i += blockDim.x) s += g[i] * x[i];
	part[threadIdx.x] = s;
	__syncthreads();
	for (int w = blockDim.x / 2; w > 0; w >>= 1) {
		if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
		__syncthreads();
	}
	if (threadIdx.x < m) {
		int j = threadIdx.x;
		float wc = lsf_weight_of(logits, m, col), wj = lsf_weight_of(logits, m, j);
		dl[j] = factor * part[0] * wc * ((j == col ? 1.f : 0.f) - wj);
	}
}

// out[b, d] = Σ_l w[b, l]·x[b, l, d] (modality.WeightedSumL: masked mean
// pooling of token features).
extern "C" __global__ void lsf_weighted_sum_l(const float* x, const float* w, float* y, int b, int l, int d) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= b * d) return;
	int r = i / d, k = i % d;
	float s = 0.f;
	for (int j = 0; j < l; j++) s += w[r * l + j] * x[(r * l + j) * d + k];
	y[i] = s;
}
// dx[b, l, d] = w[b, l]·g[b, d] (modality.SpreadL, the adjoint).
extern "C" __global__ void lsf_spread_l(const float* g, const float* w, float* dx, int b, int l, int d) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= b * l * d) return;
	int k = i % d, r = i / (l * d);
	dx[i] = w[i / d] * g[r * d + k];
}
