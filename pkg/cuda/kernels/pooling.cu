// Masked max pooling of token features (modality.MaskedMaxL): x [b, l, d],
// mask [b, l]; y[r, k] = max over the positions j with mask ≠ 0 of
// x[r, j, k] (the first one on ties), 0 for a row with no position. One
// thread per (r, k).
__device__ int lsf_masked_argmax(const float* x, const float* mask, int r, int k, int l, int d) {
	int arg = -1;
	float best = 0.f;
	for (int j = 0; j < l; j++) {
		if (mask[r * l + j] == 0.f) continue;
		float v = x[(r * l + j) * d + k];
		if (arg < 0 || v > best) {
			best = v;
			arg = j;
		}
	}
	return arg;
}

extern "C" __global__ void lsf_masked_max_l(const float* x, const float* mask, float* y, int b, int l, int d) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= b * d) return;
	int r = i / d, k = i % d;
	int arg = lsf_masked_argmax(x, mask, r, k, l, d);
	y[i] = arg < 0 ? 0.f : x[(r * l + arg) * d + k];
}

// Its backward (modality.MaskedMaxLGrad): dx [b, l, d] holds g[r, k] at
// the arg-max position of each (r, k) and 0 elsewhere; every element is
// written, by the thread of its (r, k).
extern "C" __global__ void lsf_masked_max_l_grad(const float* mask, const float* x, const float* g, float* dx, int b, int l, int d) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= b * d) return;
	int r = i / d, k = i % d;
	int arg = lsf_masked_argmax(x, mask, r, k, l, d);
	for (int j = 0; j < l; j++) dx[(r * l + j) * d + k] = j == arg ? g[i] : 0.f;
}
