// Row mixing along one axis (model.TemporalResample): x viewed as
// [outer, in_rows, inner], y as [outer, out_rows, inner], and
// y[o, r, :] = sum over e in [ptr[r], ptr[r+1]) of w[e] * x[o, src[e], :],
// added in e order. The forward interpolation has two taps per output
// step; its adjoint (the backward) lists, per source step, the output
// steps that read it in increasing order, so it is a gather as well: no
// atomics, and the sums are added in the CPU kernel's scatter order.
extern "C" __global__ void lsf_mix_rows(const float* x, const int* ptr, const int* src, const float* w, float* y,
	int outer, int in_rows, int out_rows, int inner) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= outer * out_rows * inner) return;
	int k = i % inner, r = (i / inner) % out_rows, o = i / (inner * out_rows);
	const float* xo = x + (long)o * in_rows * inner + k;
	float acc = 0.f;
	for (int e = ptr[r]; e < ptr[r + 1]; e++) acc += w[e] * xo[(long)src[e] * inner];
	y[i] = acc;
}
