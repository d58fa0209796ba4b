// Row-wise layer kernels: one block of blockDim.x threads per row of
// `cols` features, shared-memory tree reductions (blockDim.x a power of
// two ≤ 256).

__device__ float lsf_block_sum(float v, float* part) {
	part[threadIdx.x] = v;
	__syncthreads();
	for (int w = blockDim.x / 2; w > 0; w >>= 1) {
		if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
		__syncthreads();
	}
	float s = part[0];
	__syncthreads();
	return s;
}

__device__ float lsf_block_max(float v, float* part) {
	part[threadIdx.x] = v;
	__syncthreads();
	for (int w = blockDim.x / 2; w > 0; w >>= 1) {
		if (threadIdx.x < w) part[threadIdx.x] = fmaxf(part[threadIdx.x], part[threadIdx.x + w]);
		__syncthreads();
	}
	float s = part[0];
	__syncthreads();
	return s;
}

// LayerNorm over the last axis: y = (x−μ)/√(σ²+eps)·w + b; saves mean and
// rstd per row for the backward.
extern "C" __global__ void lsf_layernorm(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd, int rows, int cols, float eps) {
	__shared__ float part[256];
	int r = blockIdx.x;
	if (r >= rows) return;
	const float* xr = x + r * cols;
	float s = 0.f;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) s += xr[c];
	float mu = lsf_block_sum(s, part) / cols;
	float q = 0.f;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) { float d = xr[c] - mu; q += d * d; }
	float rs = rsqrtf(lsf_block_sum(q, part) / cols + eps);
	for (int c = threadIdx.x; c < cols; c += blockDim.x) y[r * cols + c] = (xr[c] - mu) * rs * w[c] + b[c];
	if (threadIdx.x == 0) { mean[r] = mu; rstd[r] = rs; }
}

// LayerNorm input gradient: dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), ĝ = g·w.
extern "C" __global__ void lsf_layernorm_grad_x(const float* x, const float* w, const float* g, const float* mean, const float* rstd, float* dx, int rows, int cols) {
	__shared__ float part[256];
	int r = blockIdx.x;
	if (r >= rows) return;
	float mu = mean[r], rs = rstd[r];
	float s1 = 0.f, s2 = 0.f;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) {
		float gh = g[r * cols + c] * w[c], xh = (x[r * cols + c] - mu) * rs;
		s1 += gh; s2 += gh * xh;
	}
	s1 = lsf_block_sum(s1, part) / cols;
	s2 = lsf_block_sum(s2, part) / cols;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) {
		float gh = g[r * cols + c] * w[c], xh = (x[r * cols + c] - mu) * rs;
		dx[r * cols + c] = rs * (gh - s1 - xh * s2);
	}
}

// LayerNorm weight/bias gradients: one thread per feature, Σ over rows.
extern "C" __global__ void lsf_layernorm_grad_wb(const float* x, const float* g, const float* mean, const float* rstd, float* dw, float* db, int rows, int cols) {
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= cols) return;
	float sw = 0.f, sb = 0.f;
	for (int r = 0; r < rows; r++) {
		float gv = g[r * cols + c];
		sw += gv * (x[r * cols + c] - mean[r]) * rstd[r];
		sb += gv;
	}
	dw[c] = sw;
	db[c] = sb;
}

// Softmax over the last axis (attention weights), optional key mask
// [rows/maskDiv, cols] (1 keep, 0 masked; pass maskDiv 0 for none).
extern "C" __global__ void lsf_softmax(const float* x, const float* mask, float* y, int rows, int cols, int maskDiv) {
	__shared__ float part[256];
	int r = blockIdx.x;
	if (r >= rows) return;
	const float* xr = x + r * cols;
	const float* mr = maskDiv > 0 ? mask + (r / maskDiv) * cols : 0;
	float m = -3.0e38f;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) if (!mr || mr[c] > 0.f) m = fmaxf(m, xr[c]);
	m = lsf_block_max(m, part);
	float s = 0.f;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) s += (!mr || mr[c] > 0.f) ? expf(xr[c] - m) : 0.f;
	s = lsf_block_sum(s, part);
	for (int c = threadIdx.x; c < cols; c += blockDim.x) y[r * cols + c] = (!mr || mr[c] > 0.f) ? expf(xr[c] - m) / s : 0.f;
}

// Softmax backward: dx = y·(g − Σ g·y).
extern "C" __global__ void lsf_softmax_grad(const float* y, const float* g, float* dx, int rows, int cols) {
	__shared__ float part[256];
	int r = blockIdx.x;
	if (r >= rows) return;
	float s = 0.f;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) s += g[r * cols + c] * y[r * cols + c];
	s = lsf_block_sum(s, part);
	for (int c = threadIdx.x; c < cols; c += blockDim.x) dx[r * cols + c] = y[r * cols + c] * (g[r * cols + c] - s);
}

// Cross-entropy per row: loss[r] = logsumexp(x_r) − x_r[label_r]; rows
// whose label equals ignore get 0 and count 0 (count[r] ∈ {0,1}).
extern "C" __global__ void lsf_xent(const float* x, const int* labels, float* loss, float* count, int rows, int cols, int ignore) {
	__shared__ float part[256];
	int r = blockIdx.x;
	if (r >= rows) return;
	const float* xr = x + r * cols;
	float m = -3.0e38f;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, xr[c]);
	m = lsf_block_max(m, part);
	float s = 0.f;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) s += expf(xr[c] - m);
	s = lsf_block_sum(s, part);
	if (threadIdx.x == 0) {
		int l = labels[r];
		bool use = l != ignore && l >= 0 && l < cols;
		loss[r] = use ? logf(s) + m - xr[l] : 0.f;
		count[r] = use ? 1.f : 0.f;
	}
}

// Cross-entropy backward: dx[r,c] = g·(softmax(x_r)[c] − [c==label])/n,
// scale = g/n given by the caller; ignored rows get 0.
extern "C" __global__ void lsf_xent_grad(const float* x, const int* labels, float* dx, int rows, int cols, int ignore, float scale) {
	__shared__ float part[256];
	int r = blockIdx.x;
	if (r >= rows) return;
	const float* xr = x + r * cols;
	int l = labels[r];
	bool use = l != ignore && l >= 0 && l < cols;
	float m = -3.0e38f;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, xr[c]);
	m = lsf_block_max(m, part);
	float s = 0.f;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) s += expf(xr[c] - m);
	s = lsf_block_sum(s, part);
	for (int c = threadIdx.x; c < cols; c += blockDim.x)
		dx[r * cols + c] = use ? scale * (expf(xr[c] - m) / s - (c == l ? 1.f : 0.f)) : 0.f;
}

// 1-D max pooling of [rows, len] (rows = B·C) into [rows, outLen];
// argmax saved for the backward.
extern "C" __global__ void lsf_maxpool1d(const float* x, float* y, int* arg, int rows, int len, int outLen, int k, int stride, int pad) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * outLen) return;
	int r = i / outLen, o = i % outLen;
	float best = -3.0e38f;
	int bi = -1;
	for (int j = 0; j < k; j++) {
		int p = o * stride - pad + j;
		if (p >= 0 && p < len && x[r * len + p] > best) { best = x[r * len + p]; bi = p; }
	}
	y[i] = best;
	arg[i] = bi;
}
extern "C" __global__ void lsf_maxpool1d_grad(const float* g, const int* arg, float* dx, int rows, int len, int outLen) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * outLen) return;
	int r = i / outLen;
	if (arg[i] >= 0) atomicAdd(&dx[r * len + arg[i]], g[i]);
}

// 2-D max pooling of planes [h, w] into [oh, ow] (nn.MaxPool2d): the
// window is clipped to the plane (padding is −∞); the first element is
// taken, then any larger one or a NaN, as the CPU kernel. arg keeps the
// flat index h·w of the maximum for the backward (lsf_maxpool1d_grad over
// rows = planes, len = h·w, outLen = oh·ow).
extern "C" __global__ void lsf_maxpool2d(const float* x, float* y, int* arg, int planes, int h, int w, int oh, int ow,
	int kh, int kw, int sh, int sw, int ph, int pw) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= planes * oh * ow) return;
	int oj = i % ow, oi = (i / ow) % oh, pl = i / (ow * oh);
	const float* xp = x + (long)pl * h * w;
	int h0 = oi * sh - ph, w0 = oj * sw - pw;
	float best = 0.f;
	int bi = -1;
	for (int a = h0 < 0 ? 0 : h0; a < h0 + kh && a < h; a++) {
		for (int b = w0 < 0 ? 0 : w0; b < w0 + kw && b < w; b++) {
			float v = xp[a * w + b];
			if (bi < 0 || v > best || v != v) { best = v; bi = a * w + b; }
		}
	}
	y[i] = best;
	arg[i] = bi;
}

// im2col for 2-D convolution: x [C, H, W] into cols [C·kh·kw, oh·ow].
extern "C" __global__ void lsf_im2col2d(const float* x, float* cols, int ch, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	int n = ch * kh * kw * oh * ow;
	if (i >= n) return;
	int ox = i % ow, oy = (i / ow) % oh, row = i / (ow * oh);
	int kx = row % kw, ky = (row / kw) % kh, c = row / (kw * kh);
	int y = oy * sh - ph + ky, xx = ox * sw - pw + kx;
	cols[i] = (y >= 0 && y < h && xx >= 0 && xx < w) ? x[(c * h + y) * w + xx] : 0.f;
}
extern "C" __global__ void lsf_col2im2d(const float* dcols, float* dx, int ch, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	int n = ch * kh * kw * oh * ow;
	if (i >= n) return;
	int ox = i % ow, oy = (i / ow) % oh, row = i / (ow * oh);
	int kx = row % kw, ky = (row / kw) % kh, c = row / (kw * kh);
	int y = oy * sh - ph + ky, xx = ox * sw - pw + kx;
	if (y >= 0 && y < h && xx >= 0 && xx < w) atomicAdd(&dx[(c * h + y) * w + xx], dcols[i]);
}

// Batch-norm statistics per channel of x viewed as [B, C, S]: mean and
// biased variance over B·S; one block per channel.
extern "C" __global__ void lsf_channel_stats(const float* x, float* mean, float* var, int b, int c, int s) {
	__shared__ float part[256];
	int ch = blockIdx.x;
	if (ch >= c) return;
	int n = b * s;
	float sum = 0.f;
	for (int i = threadIdx.x; i < n; i += blockDim.x) sum += x[((i / s) * c + ch) * s + i % s];
	float mu = lsf_block_sum(sum, part) / n;
	float q = 0.f;
	for (int i = threadIdx.x; i < n; i += blockDim.x) { float d = x[((i / s) * c + ch) * s + i % s] - mu; q += d * d; }
	q = lsf_block_sum(q, part) / n;
	if (threadIdx.x == 0) { mean[ch] = mu; var[ch] = q; }
}
// y = (x − mean[c])·rsqrt(var[c]+eps)·w[c] + b[c] over [B, C, S].
extern "C" __global__ void lsf_channel_affine(const float* x, const float* mean, const float* var, const float* w, const float* bias, float* y, int b, int c, int s, float eps) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= b * c * s) return;
	int ch = (i / s) % c;
	y[i] = (x[i] - mean[ch]) * rsqrtf(var[ch] + eps) * w[ch] + bias[ch];
}

// Batch-norm running statistics after a training batch of n values per
// channel: rm = (1−m)·rm + m·mean, rv = (1−m)·rv + m·var·n/(n−1) (var is
// the biased batch variance of lsf_channel_stats).
extern "C" __global__ void lsf_bn_running(float* rm, float* rv, const float* mean, const float* var, int c, float m, float n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= c) return;
	rm[i] = (1.f - m) * rm[i] + m * mean[i];
	rv[i] = (1.f - m) * rv[i] + m * var[i] * n / (n - 1.f);
}

// In-place Adam on n parameters: m, v moments; lr and eps carry the bias
// corrections (Machine.AdamStep: lr·√bc2/bc1 and eps·√bc2); wd is L2
// decay added to the gradient, keep = 1 − lr·wd the decoupled (AdamW)
// shrink applied to the weight first (1 when unused). Zeroes g.
extern "C" __global__ void lsf_adam(float* p, float* g, float* m, float* v, int n, float lr, float b1, float b2, float eps, float wd, float keep) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n) return;
	float pi = keep * p[i];
	float gi = g[i] + wd * pi;
	m[i] = b1 * m[i] + (1.f - b1) * gi;
	v[i] = b2 * v[i] + (1.f - b2) * gi * gi;
	p[i] = pi - lr * m[i] / (sqrtf(v[i]) + eps);
	g[i] = 0.f;
}

// Batch-norm backward sums per channel of [B, C, S] with the statistics
// the forward used (mean, var): sg[c] = Σ g, sgx[c] = Σ g·x̂ (x̂ =
// (x−mean)·rsqrt(var+eps)); sgx is also dγ. One block per channel.
extern "C" __global__ void lsf_bn_grad_sums(const float* x, const float* g, const float* mean, const float* var, float* sg, float* sgx, int b, int c, int s, float eps) {
	__shared__ float part[256];
	int ch = blockIdx.x;
	if (ch >= c) return;
	float rs = rsqrtf(var[ch] + eps), s1 = 0.f, s2 = 0.f;
	for (int i = threadIdx.x; i < b * s; i += blockDim.x) {
		int k = ((i / s) * c + ch) * s + i % s;
		s1 += g[k];
		s2 += g[k] * (x[k] - mean[ch]) * rs;
	}
	s1 = lsf_block_sum(s1, part);
	s2 = lsf_block_sum(s2, part);
	if (threadIdx.x == 0) { sg[ch] = s1; sgx[ch] = s2; }
}

// Batch-norm input gradient: training (batch statistics) dx =
// γ·rstd·(g − Σg/n − x̂·Σ(g·x̂)/n), n = B·S; evaluation (running
// statistics, train 0) dx = γ·rstd·g.
extern "C" __global__ void lsf_bn_grad_x(const float* x, const float* g, const float* gamma, const float* mean, const float* var, const float* sg, const float* sgx, float* dx, int b, int c, int s, float eps, int train) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= b * c * s) return;
	int ch = (i / s) % c;
	float rs = rsqrtf(var[ch] + eps);
	if (!train) { dx[i] = gamma[ch] * rs * g[i]; return; }
	float n = (float)(b * s), xh = (x[i] - mean[ch]) * rs;
	dx[i] = gamma[ch] * rs * (g[i] - sg[ch] / n - xh * sgx[ch] / n);
}
