package fakecuda

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/lsfuse/lsfuse/internal/csrc"
)

// The CUDA emulator: pkg/cuda's kernel sources compiled by the host C++
// compiler and run with CUDA's execution model (blocks one after another,
// the threads of a block as fibers where they meet at barriers). It
// exports lsf_emu_launch(name, grid, block, kernelParams), which takes
// the kernel parameters exactly as cuLaunchKernel does, and
// lsf_emu_launches(name), a launch count.

// Emulator returns the C++ source of the emulator for the kernel sources
// src, whose kernels' parameter kinds are params (pkg/cuda's
// KernelParams: 'p' float*, 'q' int*, 'h' unsigned short*, 'i' int, 'f'
// float), and the kernels it runs as fibers. Compile it with Flags.
func Emulator(src string, params map[string]string) (code string, barrier map[string]bool) {
	barrier = BarrierKernels(src)
	return Prelude + emuRuntime + src + dispatch(params, barrier), barrier
}

// Prelude maps the CUDA C the kernels use onto plain C++: the
// dim3 builtins as globals (the caller sets them per emulated thread),
// the keywords (__shared__ becomes a function-static: blocks run one
// after another on the host, so the threads of a block share it), and the
// intrinsics. atomicAdd is a plain read-modify-write: host threads of a
// launch never run at the same time. __syncthreads is left to the user:
// pkg/cuda's syntax check stubs it, the emulator (Emulator) makes it a
// barrier.
const Prelude = `#include <math.h>
#include <string.h>
struct lsf_dim3 { unsigned x, y, z; };
static lsf_dim3 blockIdx, threadIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __shared__ static
static float atomicAdd(float* p, float v) { float o = *p; *p += v; return o; }
static int atomicAdd(int* p, int v) { int o = *p; *p += v; return o; }
static float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static unsigned __float_as_uint(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
static float __uint_as_float(unsigned u) { float x; memcpy(&x, &u, 4); return x; }
`

// emuRuntime is the C++ side of the CUDA emulator, between Prelude and
// the kernel sources. Blocks run one after another on the calling OS
// thread. A kernel without barriers runs its threads one after another;
// a kernel that reaches __syncthreads runs each thread of a block as a
// user-space fiber with its own stack (started once with makecontext,
// then switched with _setjmp/_longjmp, which cost no system call):
// __syncthreads saves the fiber and returns to the scheduler, which
// resumes the block's unfinished fibers round-robin, so no thread passes
// a barrier before every live thread of its block reached it. A thread
// whose kernel returned no longer takes part, as an exited CUDA thread.
// Fibers persist: when its kernel returns, a fiber parks, ready to run
// the next block of this or a later launch.
const emuRuntime = `
#include <setjmp.h>
#include <stdlib.h>
#include <ucontext.h>

struct lsf_fiber {
	jmp_buf resume;   // where the fiber continues: a barrier, or parked
	char* stack;
	lsf_dim3 tid;
	int started, done;
};
enum { LSF_MAX_THREADS = 1024, LSF_STACK = 256 << 10 };
static lsf_fiber lsf_fibers[LSF_MAX_THREADS];
static int lsf_cur = -1;          // the running fiber; -1 on the caller's stack
static jmp_buf lsf_sched;         // the scheduler, waiting for the fiber to yield
static void (*lsf_body)(void**);  // the running launch's kernel wrapper
static void** lsf_args;
static int lsf_fault;             // a barrier reached outside a fiber

static void __syncthreads() {
	if (lsf_cur < 0) {
		lsf_fault = 1;
		return;
	}
	if (!_setjmp(lsf_fibers[lsf_cur].resume)) _longjmp(lsf_sched, 1);
}

static void lsf_fiber_main() {
	volatile int me = lsf_cur;
	for (;;) {
		lsf_body(lsf_args);
		lsf_fibers[me].done = 1;
		if (!_setjmp(lsf_fibers[me].resume)) _longjmp(lsf_sched, 1);
	}
}

// lsf_run_fibers runs the current block's n threads as fibers to the end.
static int lsf_run_fibers(int n) {
	for (int i = 0; i < n; i++) {
		if (!lsf_fibers[i].stack && !(lsf_fibers[i].stack = (char*)malloc(LSF_STACK))) return 4;
		lsf_fibers[i].done = 0;
	}
	volatile int live = n;
	while (live > 0) {
		for (volatile int i = 0; i < n; i++) {
			lsf_fiber* f = &lsf_fibers[i];
			if (f->done) continue;
			lsf_cur = i;
			threadIdx = f->tid;
			if (!_setjmp(lsf_sched)) {
				if (f->started) _longjmp(f->resume, 1);
				f->started = 1;
				ucontext_t uc;
				getcontext(&uc);
				uc.uc_stack.ss_sp = f->stack;
				uc.uc_stack.ss_size = LSF_STACK;
				uc.uc_link = 0;
				makecontext(&uc, lsf_fiber_main, 0);
				setcontext(&uc);
				abort();
			}
			lsf_cur = -1;
			if (lsf_fibers[i].done) live = live - 1;
		}
	}
	return 0;
}

struct lsf_kernel {
	const char* name;
	void (*run)(void**);
	int barrier;
	long long launches;
};
static lsf_kernel* lsf_find(const char* name);

// lsf_emu_launch runs kernel name over the grid, its parameters passed as
// cuLaunchKernel's kernelParams. It returns 0, 1 for an unknown kernel, 2
// for a barrier in a kernel run without fibers, 3 for a bad geometry, 4
// when a fiber stack cannot be allocated.
extern "C" int lsf_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz,
		unsigned bx, unsigned by, unsigned bz, void** params) {
	lsf_kernel* k = lsf_find(name);
	if (!k) return 1;
	unsigned long long threads = (unsigned long long)bx * by * bz;
	if (threads == 0 || threads > LSF_MAX_THREADS || gx == 0 || gy == 0 || gz == 0) return 3;
	k->launches++;
	gridDim = {gx, gy, gz};
	blockDim = {bx, by, bz};
	lsf_body = k->run;
	lsf_args = params;
	lsf_fault = 0;
	int n = 0;
	for (unsigned z = 0; z < bz; z++)
		for (unsigned y = 0; y < by; y++)
			for (unsigned x = 0; x < bx; x++) lsf_fibers[n++].tid = {x, y, z};
	for (unsigned z = 0; z < gz; z++)
		for (unsigned y = 0; y < gy; y++)
			for (unsigned x = 0; x < gx; x++) {
				blockIdx = {x, y, z};
				if (k->barrier) {
					if (int rc = lsf_run_fibers(n)) return rc;
					continue;
				}
				for (int t = 0; t < n; t++) {
					threadIdx = lsf_fibers[t].tid;
					k->run(params);
				}
			}
	return lsf_fault ? 2 : 0;
}

// lsf_emu_launches is how many times kernel name was launched; -1 for an
// unknown kernel.
extern "C" long long lsf_emu_launches(const char* name) {
	lsf_kernel* k = lsf_find(name);
	return k ? k->launches : -1;
}
`

// dispatch generates the C++ wrappers of every kernel in params
// (each casts cuLaunchKernel's parameter pointers to the declared types
// and calls the kernel) and their table, barrier marking the kernels that
// need fibers.
func dispatch(params map[string]string, barrier map[string]bool) string {
	ctype := map[byte]string{'p': "float*", 'q': "int*", 'h': "unsigned short*", 'i': "int", 'f': "float"}
	names := slices.Sorted(maps.Keys(params))
	var b strings.Builder
	b.WriteString("\n// ---- dispatch (generated from the kernels' parameter kinds) ----\n")
	for _, n := range names {
		args := make([]string, len(params[n]))
		for i := range params[n] {
			args[i] = fmt.Sprintf("*(%s*)a[%d]", ctype[params[n][i]], i)
		}
		fmt.Fprintf(&b, "static void lsf_emu_w_%s(void** a) { %s(%s); }\n", n, n, strings.Join(args, ", "))
	}
	b.WriteString("static lsf_kernel lsf_kernels[] = {\n")
	for _, n := range names {
		fmt.Fprintf(&b, "\t{%q, lsf_emu_w_%s, %t, 0},\n", n, n, barrier[n])
	}
	b.WriteString("};\n")
	b.WriteString(`static lsf_kernel* lsf_find(const char* name) {
	for (auto& k : lsf_kernels)
		if (!strcmp(k.name, name)) return &k;
	return 0;
}
`)
	return b.String()
}

// topFunction matches the head of a function definition at file scope:
// its name before the parameter list.
var topFunction = regexp.MustCompile(`(\w+)\s*\([^()]*\)\s*$`)

// FunctionBodies maps each function defined at file scope in src
// (comments removed) to its body, braces included.
func FunctionBodies(src string) map[string]string {
	code := csrc.StripComments(src)
	bodies := map[string]string{}
	depth, start, head := 0, 0, 0
	for i := 0; i < len(code); i++ {
		switch code[i] {
		case ';':
			if depth == 0 {
				head = i + 1
			}
		case '{':
			if depth == 0 {
				start = i
			}
			depth++
		case '}':
			depth--
			if depth == 0 {
				if m := topFunction.FindStringSubmatch(code[head:start]); m != nil {
					bodies[m[1]] = code[start : i+1]
				}
				head = i + 1
			}
		}
	}
	return bodies
}

// BarrierKernels lists the functions of src (kernels and __device__
// helpers) that reach __syncthreads, directly or through the helpers
// they call.
func BarrierKernels(src string) map[string]bool {
	bodies := FunctionBodies(src)
	syncs := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for f, body := range bodies {
			if syncs[f] {
				continue
			}
			reach := strings.Contains(body, "__syncthreads")
			for g := range syncs {
				reach = reach || regexp.MustCompile(`\b`+g+`\s*\(`).MatchString(body)
			}
			if reach {
				syncs[f], changed = true, true
			}
		}
	}
	return syncs
}

// Flags are the g++ flags of the emulator: no FMA contraction (NVRTC contracts by
// default; Go does not on amd64, and the cross-check's 1e-5 allows for
// arm64, where it may), no fortified longjmp (which refuses to jump
// between stacks), no stack protector (fibers).
var Flags = []string{"-std=c++20", "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-w",
	"-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=0", "-fno-stack-protector"}
