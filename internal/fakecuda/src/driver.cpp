// A stand-in for libcuda.so.1 and libcublas.so on a machine without a GPU
// (tests only). "Device" memory is host memory (cuMemAlloc is calloc), the
// stream runs everything at once, cuLaunchKernel runs the kernel's CUDA C
// source compiled for the host through the emulator's lsf_emu_launch, and
// the cuBLAS calls are plain column-major loops that check their
// arguments the way cuBLAS does. Only the entry points lsfuse binds exist.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

extern "C" int lsf_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
	unsigned bz, void** params);

namespace {
// With LSFUSE_FAKE_NOEXEC set, launches and GEMMs are checked and counted
// but not run: a step then costs what the host side costs (the backend's
// Go code, purego and this library's entry), which is how a test measures
// the executor's host overhead without a GPU.
const bool noexec = getenv("LSFUSE_FAKE_NOEXEC") != nullptr;
std::vector<std::string> functions;      // cuModuleGetFunction handles - 1
unsigned long long launches = 0, gemms = 0; // calls served, for the tests
int moduleLoaded = 0;

float half_to_float(uint16_t h) {
	uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
	if (e == 0) {
		if (m == 0) {
			bits = s;
		} else { // subnormal: normalise
			int shift = 0;
			while (!(m & 0x400)) {
				m <<= 1;
				shift++;
			}
			m &= 0x3ff;
			bits = s | (uint32_t)(127 - 15 - shift + 1) << 23 | m << 13;
		}
	} else if (e == 31) {
		bits = s | 0x7f800000u | m << 13;
	} else {
		bits = s | (e + 127 - 15) << 23 | m << 13;
	}
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

float bf16_to_float(uint16_t h) {
	uint32_t bits = (uint32_t)h << 16;
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

// load reads element i of a matrix stored as type (CUDA_R_32F 0,
// CUDA_R_16F 2, CUDA_R_16BF 14).
float load(const void* p, int type, long i) {
	switch (type) {
	case 2:
		return half_to_float(((const uint16_t*)p)[i]);
	case 14:
		return bf16_to_float(((const uint16_t*)p)[i]);
	}
	return ((const float*)p)[i];
}

// gemm is column-major C = alpha·op(A)·op(B) + beta·C (cuBLAS's
// definition; beta 0 ignores C's old values). It returns
// CUBLAS_STATUS_INVALID_VALUE (7) for the arguments cuBLAS rejects.
int gemm(int ta, int tb, int m, int n, int k, const float* alpha, const void* A, int at, int lda, const void* B, int bt,
	int ldb, const float* beta, float* C, int ldc) {
	if (m < 0 || n < 0 || k < 0 || lda < (ta ? (k > 1 ? k : 1) : (m > 1 ? m : 1)) ||
		ldb < (tb ? (n > 1 ? n : 1) : (k > 1 ? k : 1)) || ldc < (m > 1 ? m : 1) || (ta != 0 && ta != 1) || (tb != 0 && tb != 1))
		return 7;
	gemms++;
	if (noexec) return 0;
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) {
			float s = 0.f;
			for (int p = 0; p < k; p++) {
				float a = load(A, at, ta ? (long)i * lda + p : (long)p * lda + i);
				float b = load(B, bt, tb ? (long)p * ldb + j : (long)j * ldb + p);
				s += a * b;
			}
			float* c = C + (long)j * ldc + i;
			*c = *beta == 0.f ? *alpha * s : *alpha * s + *beta * *c;
		}
	return 0;
}
} // namespace

extern "C" {
// The counters the tests read.
unsigned long long lsf_fake_launches() { return launches; }
unsigned long long lsf_fake_gemms() { return gemms; }

int cuInit(unsigned) { return 0; }
int cuDriverGetVersion(int* v) { *v = 13000; return 0; }
int cuDeviceGetCount(int* n) { *n = 1; return 0; }
int cuDeviceGet(int* d, int ordinal) { if (ordinal != 0) return 101; *d = 0; return 0; }
int cuDeviceGetName(char* name, int len, int) { snprintf(name, len, "lsfuse fake GPU"); return 0; }
int cuDeviceGetAttribute(int* v, int attr, int) { *v = attr == 75 ? 9 : 0; return 0; } // sm_90
int cuDeviceTotalMem_v2(size_t* b, int) { *b = (size_t)16 << 30; return 0; }
int cuDevicePrimaryCtxRetain(void** ctx, int) { *ctx = (void*)0x1; return 0; }
int cuDevicePrimaryCtxRelease(int) { return 0; }
int cuCtxSetCurrent(void*) { return 0; }
int cuStreamCreate(void** s, unsigned) { *s = (void*)0x2; return 0; }
int cuStreamDestroy_v2(void*) { return 0; }
int cuStreamSynchronize(void*) { return 0; }
int cuMemAlloc_v2(uint64_t* p, size_t n) {
	void* m = calloc(n ? n : 1, 1);
	*p = (uint64_t)(uintptr_t)m;
	return m ? 0 : 2;
}
int cuMemFree_v2(uint64_t p) { free((void*)(uintptr_t)p); return 0; }
int cuMemcpyHtoDAsync_v2(uint64_t dst, const void* src, size_t n, void*) { memcpy((void*)(uintptr_t)dst, src, n); return 0; }
int cuMemcpyDtoHAsync_v2(void* dst, uint64_t src, size_t n, void*) { memcpy(dst, (const void*)(uintptr_t)src, n); return 0; }
int cuMemsetD32Async(uint64_t dst, unsigned v, size_t n, void*) {
	uint32_t* p = (uint32_t*)(uintptr_t)dst;
	for (size_t i = 0; i < n; i++) p[i] = v;
	return 0;
}
// The image must be an ELF file (the cubin NVRTC built); it is not run.
// LSFUSE_FAKE_OLD_DRIVER plays a driver older than the compiler.
int cuModuleLoadData(void** m, const void* image) {
	if (getenv("LSFUSE_FAKE_OLD_DRIVER")) return 222;       // CUDA_ERROR_UNSUPPORTED_PTX_VERSION
	if (memcmp(image, "\x7f" "ELF", 4) != 0) return 200; // CUDA_ERROR_INVALID_IMAGE
	moduleLoaded = 1;
	*m = (void*)0x3;
	return 0;
}
int cuModuleUnload(void*) { moduleLoaded = 0; return 0; }
int cuModuleGetFunction(void** f, void*, const char* name) {
	if (!moduleLoaded) return 400; // CUDA_ERROR_INVALID_HANDLE
	functions.push_back(name);
	*f = (void*)(uintptr_t)functions.size();
	return 0;
}
int cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shared,
	void*, void** params, void** extra) {
	size_t h = (size_t)(uintptr_t)f;
	if (h == 0 || h > functions.size() || extra != nullptr || shared != 0) return 1; // CUDA_ERROR_INVALID_VALUE
	if (bx * by * bz > 1024 || gy > 65535 || gz > 65535) return 701;              // CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES
	launches++;
	if (noexec) return 0;
	return lsf_emu_launch(functions[h - 1].c_str(), gx, gy, gz, bx, by, bz, params) ? 500 : 0; // CUDA_ERROR_NOT_FOUND
}
int cuGetErrorString(int, const char** s) { *s = "fake driver error"; return 0; }

// The handle cublasCreate gives; the other calls refuse any other with
// CUBLAS_STATUS_NOT_INITIALIZED, as cuBLAS does a null one.
void* const blasHandle = (void*)0x4;
int cublasCreate_v2(void** h) { *h = blasHandle; return 0; }
int cublasDestroy_v2(void*) { return 0; }
int cublasGetVersion_v2(void*, int* v) { *v = 130000; return 0; }
int cublasSetStream_v2(void*, void*) { return 0; }
int cublasSgemm_v2(void* h, int ta, int tb, int m, int n, int k, const float* alpha, const float* A, int lda, const float* B,
	int ldb, const float* beta, float* C, int ldc) {
	if (h != blasHandle) return 1;
	return gemm(ta, tb, m, n, k, alpha, A, 0, lda, B, 0, ldb, beta, C, ldc);
}
int cublasSgemmBatched(void* h, int ta, int tb, int m, int n, int k, const float* alpha, const float* const A[], int lda,
	const float* const B[], int ldb, const float* beta, float* const C[], int ldc, int count) {
	if (h != blasHandle) return 1;
	for (int i = 0; i < count; i++) {
		int s = gemm(ta, tb, m, n, k, alpha, A[i], 0, lda, B[i], 0, ldb, beta, C[i], ldc);
		if (s) return s;
	}
	return 0;
}
// Only float32 output and CUBLAS_COMPUTE_32F (68), as lsfuse calls it.
int cublasGemmEx(void* h, int ta, int tb, int m, int n, int k, const float* alpha, const void* A, int at, int lda, const void* B,
	int bt, int ldb, const float* beta, void* C, int ct, int ldc, int compute, int algo) {
	if (h != blasHandle) return 1;
	if (ct != 0 || compute != 68 || algo != -1) return 7;
	return gemm(ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, (float*)C, ldc);
}
int cublasGemmBatchedEx(void* h, int ta, int tb, int m, int n, int k, const float* alpha, const void* const A[], int at, int lda,
	const void* const B[], int bt, int ldb, const float* beta, void* const C[], int ct, int ldc, int count, int compute,
	int algo) {
	if (h != blasHandle) return 1;
	if (ct != 0 || compute != 68 || algo != -1) return 7;
	for (int i = 0; i < count; i++) {
		int s = gemm(ta, tb, m, n, k, alpha, A[i], at, lda, B[i], bt, ldb, beta, (float*)C[i], ldc);
		if (s) return s;
	}
	return 0;
}
}
