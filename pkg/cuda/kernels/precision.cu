// Mixed precision (train.mixed_precision): y[i] is a[i] rounded to
// binary16 (lsf_round_f16) or bfloat16 (lsf_round_bf16), round to nearest
// even, kept in a float32 that holds it exactly. The executor rounds both
// inputs of every GEMM into scratch buffers before cuBLAS multiplies them
// with float32 accumulation: the products of two binary16 (or bfloat16)
// values are exact in float32, so the result is that of a GEMM with 16-bit
// inputs and float32 compute. Integer bit manipulation only: no
// cuda_fp16.h, so NVRTC and the host syntax check see the same source.
// RoundFP16 and RoundBF16 (precision.go) are the Go transcriptions.

__device__ float lsf_f16(float x) {
    unsigned b = __float_as_uint(x);
    unsigned s = b & 0x80000000u;
    unsigned a = b ^ s;
    if (a >= 0x7f800000u) return x;
    if (a < 0x00800000u) return __uint_as_float(s);
    int e = (int)(a >> 23) - 127;
    if (e > 15) return __uint_as_float(s | 0x7f800000u);
    int qe = (e < -14 ? -14 : e) - 10;
    int drop = qe - (e - 23);
    if (drop > 24) return __uint_as_float(s);
    unsigned m = (a & 0x7fffffu) | 0x800000u;
    unsigned r = m >> drop, rem = m & ((1u << drop) - 1u), half = 1u << (drop - 1);
    if (rem > half || (rem == half && (r & 1u))) r++;
    float y = ldexpf((float)r, qe);
    if (y > 65504.0f) y = __uint_as_float(0x7f800000u);
    return __uint_as_float(__float_as_uint(y) | s);
}

__device__ float lsf_bf16(float x) {
    unsigned b = __float_as_uint(x);
    if ((b & 0x7fffffffu) > 0x7f800000u) return x;
    b += 0x7fffu + ((b >> 16) & 1u);
    return __uint_as_float(b & 0xffff0000u);
}

extern "C" __global__ void lsf_round_f16(const float* a, float* y, int n) { LSF_IDX y[i] = lsf_f16(a[i]); }
extern "C" __global__ void lsf_round_bf16(const float* a, float* y, int n) { LSF_IDX y[i] = lsf_bf16(a[i]); }
