// Mixed precision (train.mixed_precision): y[i] is the 16-bit encoding
// of a[i] rounded to nearest even, binary16 (lsf_pack_f16) or bfloat16
// (lsf_pack_bf16). The executor packs both inputs of every GEMM into
// 16-bit scratch buffers, which cublasGemmEx / cublasGemmBatchedEx read
// as CUDA_R_16F or CUDA_R_16BF with float32 compute and output. Integer
// bit manipulation only: no cuda_fp16.h, so NVRTC and the host syntax
// check see the same source. FP16Bits and BF16Bits (precision.go) are
// the Go transcriptions.

// lsf_f16_bits: NaN becomes the quiet NaN with its sign; magnitudes from
// 2^16 (Inf included) are Inf; below 2^-25 a signed zero. Otherwise r is
// the code before rounding (exponent and fraction, or a subnormal's
// multiple of 2^-24) and rounding up may carry into the exponent: to the
// smallest normal, or from 65504 to Inf (from 65520 on).
__device__ unsigned short lsf_f16_bits(float x) {
    unsigned b = __float_as_uint(x);
    unsigned s = (b >> 16) & 0x8000u;
    unsigned a = b & 0x7fffffffu;
    if (a > 0x7f800000u) return (unsigned short)(s | 0x7e00u);
    if (a >= 0x47800000u) return (unsigned short)(s | 0x7c00u);
    if (a < 0x33000000u) return (unsigned short)s;
    unsigned e = a >> 23, r, rem, half;
    if (e > 112u) {
        r = ((e - 112u) << 10) | ((a >> 13) & 0x3ffu);
        rem = a & 0x1fffu;
        half = 0x1000u;
    } else {
        unsigned m = (a & 0x7fffffu) | 0x800000u, drop = 126u - e;
        r = m >> drop;
        rem = m & ((1u << drop) - 1u);
        half = 1u << (drop - 1u);
    }
    if (rem > half || (rem == half && (r & 1u))) r++;
    return (unsigned short)(s | r);
}

// lsf_bf16_bits: the upper half after rounding to nearest even; a NaN is
// quieted instead, so that one whose payload sits in the dropped bits
// stays a NaN.
__device__ unsigned short lsf_bf16_bits(float x) {
    unsigned b = __float_as_uint(x);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((b >> 16) | 0x40u);
    b += 0x7fffu + ((b >> 16) & 1u);
    return (unsigned short)(b >> 16);
}

extern "C" __global__ void lsf_pack_f16(const float* a, unsigned short* y, int n) { LSF_IDX y[i] = lsf_f16_bits(a[i]); }
extern "C" __global__ void lsf_pack_bf16(const float* a, unsigned short* y, int n) { LSF_IDX y[i] = lsf_bf16_bits(a[i]); }
