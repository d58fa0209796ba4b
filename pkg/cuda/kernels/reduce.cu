// Reductions and layout kernels. Shapes are row-major; "rows × cols"
// means the tensor viewed as a matrix.

// y[c] = Σ_r x[r, c]: Σ over the leading axes (SumLeading, LinearDB,
// gorgonia Σ[0], the batch sums of the LIF and CfC backward). One block of
// 256 threads per 32 columns (launchSumRows): 8 lanes per column, lane l
// summing rows l, l+8, l+16, …, then lane 0 adding the 8 partial sums in
// lane order, so each column's long sum is split 8 ways and the order is
// fixed (runs are reproducible).
extern "C" __global__ void lsf_sum_rows(const float* x, float* y, int rows, int cols) {
	__shared__ float part[8][32];
	int k = threadIdx.x % 32, lane = threadIdx.x / 32;
	int c = blockIdx.x * 32 + k;
	float s = 0.f;
	if (c < cols)
		for (int r = lane; r < rows; r += 8) s += x[(long)r * cols + c];
	part[lane][k] = s;
	__syncthreads();
	if (lane == 0 && c < cols) {
		float t = 0.f;
		for (int l = 0; l < 8; l++) t += part[l][k];
		y[c] = t;
	}
}

// Σ over the middle axis of x viewed as [outer, len, inner]:
// y[o, k] = scale·Σ_j x[o, j, k] (MeanAxes with scale 1/len, gorgonia
// Σ over one axis); one thread per output.
extern "C" __global__ void lsf_sum_mid(const float* x, float* y, int outer, int len, int inner, float scale) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= outer * inner) return;
	int o = i / inner, k = i % inner;
	float s = 0.f;
	for (int j = 0; j < len; j++) s += x[(o * len + j) * inner + k];
	y[i] = scale * s;
}

// y[0] = Σ x over n values: one block of 256 threads (scalars: loss).
extern "C" __global__ void lsf_sum_all(const float* x, float* y, int n) {
	__shared__ float part[256];
	float s = 0.f;
	for (int i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
	part[threadIdx.x] = s;
	__syncthreads();
	for (int w = blockDim.x / 2; w > 0; w >>= 1) {
		if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
		__syncthreads();
	}
	if (threadIdx.x == 0) y[0] = part[0];
}

// y[0] = Σ (s·x[i])² over n values, one block of 256 threads: a gradient's
// contribution to the global norm after unscaling (Machine.GradSumSquares;
// a non-finite value gives a non-finite sum).
extern "C" __global__ void lsf_sum_sq(const float* x, float* y, int n, float s) {
	__shared__ float part[256];
	float q = 0.f;
	for (int i = threadIdx.x; i < n; i += blockDim.x) {
		float v = s * x[i];
		q += v * v;
	}
	float t = lsf_block_sum(q, part);
	if (threadIdx.x == 0) y[0] = t;
}

// The adjoint of lsf_sum_mid: y[o, j, k] = scale·g[o, k] (BroadcastMean,
// gorgonia Repeat).
extern "C" __global__ void lsf_broadcast_mid(const float* g, float* y, int outer, int len, int inner, float scale) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= outer * len * inner) return;
	y[i] = scale * g[(i / (len * inner)) * inner + i % inner];
}

// y[c] = Σ_b Σ_s x[b, c, s] over [B, C, S] (ChannelSum: conv bias
// gradient); one block per channel.
extern "C" __global__ void lsf_channel_sum(const float* x, float* y, int b, int c, int s) {
	__shared__ float part[256];
	int ch = blockIdx.x;
	if (ch >= c) return;
	float sum = 0.f;
	for (int i = threadIdx.x; i < b * s; i += blockDim.x) sum += x[((i / s) * c + ch) * s + i % s];
	part[threadIdx.x] = sum;
	__syncthreads();
	for (int w = blockDim.x / 2; w > 0; w >>= 1) {
		if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
		__syncthreads();
	}
	if (threadIdx.x == 0) y[ch] = part[0];
}

// y[b, c, s] += bias[c] over [B, C, S] (convolution bias).
extern "C" __global__ void lsf_add_channel(float* y, const float* bias, int b, int c, int s) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= b * c * s) return;
	y[i] += bias[(i / s) % c];
}

// Copy a slab of axis `axis` viewed as [outer, len, inner]: y[o, j, k] =
// x[o, start + j, k] for j < count (SliceAxis; Concat writes with
// lsf_slice_put).
extern "C" __global__ void lsf_slice_get(const float* x, float* y, int outer, int len, int inner, int start, int count) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	int n = outer * count * inner;
	if (i >= n) return;
	int k = i % inner, j = (i / inner) % count, o = i / (inner * count);
	y[i] = x[(o * len + start + j) * inner + k];
}
extern "C" __global__ void lsf_slice_put(const float* x, float* y, int outer, int len, int inner, int start, int count) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	int n = outer * count * inner;
	if (i >= n) return;
	int k = i % inner, j = (i / inner) % count, o = i / (inner * count);
	y[(o * len + start + j) * inner + k] = x[i];
}

// Swap axes 1 and 2 of [d0, d1, d2, inner] into [d0, d2, d1, inner]
// (modality.Swap12, attention head split/merge).
extern "C" __global__ void lsf_swap12(const float* x, float* y, int d0, int d1, int d2, int inner) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	int n = d0 * d1 * d2 * inner;
	if (i >= n) return;
	int k = i % inner, a = (i / inner) % d1, b = (i / (inner * d1)) % d2, o = i / (inner * d1 * d2);
	y[i] = x[((o * d1 + a) * d2 + b) * inner + k];
}

// Gather rows: y[r, :] = x[idx[r], :] (Embedding, modality.Gather);
// index < 0 gives zeros (padding).
extern "C" __global__ void lsf_gather_rows(const float* x, const int* idx, float* y, int rows, int cols) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * cols) return;
	int r = i / cols, j = idx[r];
	y[i] = j < 0 ? 0.f : x[j * cols + (i % cols)];
}
// dx[idx[r], :] += g[r, :] (Embedding/grad, modality.Scatter).
extern "C" __global__ void lsf_scatter_add_rows(const float* g, const int* idx, float* dx, int rows, int cols) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * cols) return;
	int j = idx[i / cols];
	if (j >= 0) atomicAdd(&dx[j * cols + (i % cols)], g[i]);
}

// Column gather: y[r, j] = x[r, idx[j]] for x [rows, n], idx [m] (0 where
// idx < 0): modality.Gather (STFT framing).
extern "C" __global__ void lsf_gather_cols(const float* x, const int* idx, float* y, int rows, int n, int m) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows * m) return;
	int r = i / m, j = idx[i % m];
	y[i] = j < 0 ? 0.f : x[r * n + j];
}

// Spike telemetry (model.SpikeStats over one [rows, n] spike tensor): per
// neuron j, with f the number of non-zero entries of column j,
// y[j] = f/rows, y[n + j] = 1 if f = 0, y[2n + j] = 1 if f = rows.
extern "C" __global__ void lsf_spike_stats(const float* s, float* y, int rows, int n) {
	int j = blockIdx.x * blockDim.x + threadIdx.x;
	if (j >= n) return;
	int f = 0;
	for (int r = 0; r < rows; r++) f += s[r * n + j] != 0.f;
	y[j] = (float)f / (float)rows;
	y[n + j] = f == 0 ? 1.f : 0.f;
	y[2 * n + j] = f == rows ? 1.f : 0.f;
}
