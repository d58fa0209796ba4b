// 3-D convolution by vol2col (im2col over depth, height and width) and
// cuBLAS: x [C, D, H, W] of one or more samples (C counts every channel
// plane of the launch) into cols [C·kd·kh·kw, od·oh·ow], row (c, a, b, e)
// for the kernel tap (a, b, e), column (z, y, x) for the output
// position, so that a convolution is W[OutC, C·kd·kh·kw]·cols. Every axis
// has its own stride s, zero padding p and dilation (tap spacing) t: the
// tap (a, b, e) of output (z, y, x) reads x[c, z·sd − pd + a·td,
// y·sh − ph + b·th, x·sw − pw + e·tw], zero outside the input. Also the
// dilated 1-D and 2-D convolutions (leading axes of size 1).

// lsf_im2col3d writes cols, one thread per column entry.
extern "C" __global__ void lsf_im2col3d(const float* x, float* cols, int ch, int d, int h, int w, int kd, int kh, int kw, int sd, int sh, int sw, int pd, int ph, int pw, int td, int th, int tw, int od, int oh, int ow) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	int pos = od * oh * ow;
	if (i >= ch * kd * kh * kw * pos) return;
	int p = i % pos, row = i / pos;
	int ox = p % ow, oy = (p / ow) % oh, oz = p / (ow * oh);
	int e = row % kw, b = (row / kw) % kh, a = (row / (kw * kh)) % kd, c = row / (kw * kh * kd);
	int z = oz * sd - pd + a * td, y = oy * sh - ph + b * th, xx = ox * sw - pw + e * tw;
	cols[i] = (z >= 0 && z < d && y >= 0 && y < h && xx >= 0 && xx < w) ? x[((c * d + z) * h + y) * w + xx] : 0.f;
}

// lsf_tap_to_out finds the output index o (stride s, padding p, dilation
// t, n outputs) whose tap k reads input index q: q + p − k·t = o·s.
// It returns −1 when there is none.
__device__ int lsf_tap_to_out(int q, int k, int s, int p, int t, int n) {
	int r = q + p - k * t;
	if (r < 0 || r % s != 0 || r / s >= n) return -1;
	return r / s;
}

// lsf_col2im3d is the adjoint of lsf_im2col3d (the input gradient): dx
// [C, D, H, W] = the sum of every column entry read from that input
// position. One thread per input element gathers its entries in the
// order of the rows (no atomics: the sum is deterministic) and
// overwrites dx, so dx needs no zeroing.
extern "C" __global__ void lsf_col2im3d(const float* dcols, float* dx, int ch, int d, int h, int w, int kd, int kh, int kw, int sd, int sh, int sw, int pd, int ph, int pw, int td, int th, int tw, int od, int oh, int ow) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= ch * d * h * w) return;
	int xx = i % w, y = (i / w) % h, z = (i / (w * h)) % d, c = i / (w * h * d);
	float s = 0.f;
	for (int a = 0; a < kd; a++) {
		int oz = lsf_tap_to_out(z, a, sd, pd, td, od);
		if (oz < 0) continue;
		for (int b = 0; b < kh; b++) {
			int oy = lsf_tap_to_out(y, b, sh, ph, th, oh);
			if (oy < 0) continue;
			for (int e = 0; e < kw; e++) {
				int ox = lsf_tap_to_out(xx, e, sw, pw, tw, ow);
				if (ox < 0) continue;
				int row = ((c * kd + a) * kh + b) * kw + e;
				s += dcols[((row * od + oz) * oh + oy) * ow + ox];
			}
		}
	}
	dx[i] = s;
}
