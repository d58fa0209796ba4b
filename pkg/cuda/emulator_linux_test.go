//go:build linux && (amd64 || arm64)

package cuda

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/lsfuse/lsfuse/internal/fakecuda"
)

// cppEmulator runs the kernel sources compiled by the host C++ compiler
// (fakecuda.Emulator): the sourceRunner of the fake device's C++ mode.
type cppEmulator struct {
	mu  sync.Mutex // the emulator's state is global: one launch at a time
	api struct {
		lsf_emu_launch   func(name string, gx, gy, gz, bx, by, bz uint32, params unsafe.Pointer) int32
		lsf_emu_launches func(name string) int64
	}
	// barrier lists the kernels run as fibers.
	barrier map[string]bool
}

var (
	emuOnce sync.Once
	emuLib  *cppEmulator
	emuErr  error
)

// loadEmulator compiles the kernel sources as fakecuda.Emulator into a
// shared library (once per test process) and
// loads it with purego. The library file is deleted once loaded.
func loadEmulator(gxx string) (*cppEmulator, error) {
	emuOnce.Do(func() {
		emuLib, emuErr = buildEmulator(gxx)
	})
	return emuLib, emuErr
}

func buildEmulator(gxx string) (*cppEmulator, error) {
	src, err := Source()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lsf-emu-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	lib := filepath.Join(dir, "libemu.so")
	code, barrier := fakecuda.Emulator(src, KernelParams)
	e := &cppEmulator{barrier: barrier}
	cmd := exec.Command(gxx, append(slices.Clone(fakecuda.Flags), "-x", "c++", "-o", lib, "-")...)
	cmd.Stdin = bytes.NewBufferString(code)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("kernels/*.cu do not build as the C++ emulator: %v\n%s", err, out)
	}
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, err
	}
	if err := bind(&e.api, h, nil); err != nil {
		return nil, err
	}
	return e, nil
}

// emulatorFor is the process's emulator, the test skipped without g++.
func emulatorFor(t testing.TB) *cppEmulator {
	t.Helper()
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("g++ not installed: the kernel sources cannot run on the C++ emulator")
	}
	e, err := loadEmulator(gxx)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// run launches kernel name on the emulator; slots are packArgs' slots
// with host addresses in the pointer arguments.
func (e *cppEmulator) run(name string, grid, block [3]uint32, slots []uint64) error {
	params, unpin := emuParams(slots)
	defer unpin()
	e.mu.Lock()
	rc := e.api.lsf_emu_launch(name, grid[0], grid[1], grid[2], block[0], block[1], block[2], params)
	e.mu.Unlock()
	switch rc {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("emulator: unknown kernel %s", name)
	case 2:
		return fmt.Errorf("emulator: %s reached __syncthreads but was run without fibers", name)
	case 3:
		return fmt.Errorf("emulator: %s launched with grid %v, block %v", name, grid, block)
	}
	return fmt.Errorf("emulator: %s failed (%d)", name, rc)
}

// launches is how many times the emulator ran kernel name.
func (e *cppEmulator) launches(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return int(e.api.lsf_emu_launches(name))
}

// withSourceKernels puts the fake device in C++ mode for the rest of the
// test: every fakeDevice made by newFakeDevice runs its launches on e.
func withSourceKernels(t *testing.T, e *cppEmulator) {
	prev := fakeSource
	fakeSource = e
	t.Cleanup(func() { fakeSource = prev })
}

// sourceModeTests are the fake-device tests that also run in C++ mode
// (TestKernelSourcesMatchVM): the whole-graph comparisons with vm.Machine,
// two trainer runs against the CPU trainer, and the kernel checks whose
// expectations hold for any correct kernel. The others stay
// Go-transcription only: the host fallback's (bit for bit, lsf_accum
// only), the plan and error tests (no kernel values), and the slower
// trainer runs (the quickstart one takes 13 s in C++ mode; its graph is
// among the configurations compared here).
var sourceModeTests = []struct {
	name string
	test func(*testing.T)
}{
	{"TestMachineLoweredMatchesVM", TestMachineLoweredMatchesVM},
	{"TestMachineLoweredMatchesVMOnConfigs", TestMachineLoweredMatchesVMOnConfigs},
	{"TestMachineEvalMatchesVMOnConfigs", TestMachineEvalMatchesVMOnConfigs},
	{"TestMachineMatchesVMOnModelGraphs", TestMachineMatchesVMOnModelGraphs},
	{"TestMachineLIFVariants", TestMachineLIFVariants},
	{"TestMachineCfCVariants", TestMachineCfCVariants},
	{"TestMachineGradientControls", TestMachineGradientControls},
	{"TestAdamStepMatchesTrainAdam", TestAdamStepMatchesTrainAdam},
	{"TestDeviceOpsMatchVM", TestDeviceOpsMatchVM},
	{"TestConvLoweredMatchesVM", TestConvLoweredMatchesVM},
	{"TestConv3dMixedPrecision", TestConv3dMixedPrecision},
	{"TestConv3dColumnKernels", TestConv3dColumnKernels},
	{"TestMixedPrecisionBenchSmall", TestMixedPrecisionBenchSmall},
	{"TestGemmExOnFake", TestGemmExOnFake},
	{"TestTrainerOnDeviceMatchesCPU", TestTrainerOnDeviceMatchesCPU},
	{"TestTrainerOnDeviceFP16", TestTrainerOnDeviceFP16},
	{"TestMachineLTCMatchesVM", TestMachineLTCMatchesVM},
	{"TestMachineTextMaxPoolingMatchesVM", TestMachineTextMaxPoolingMatchesVM},
}

// TestKernelSourcesMatchVM runs sourceModeTests in C++ mode: every
// kernel launch executes the CUDA C of kernels/*.cu, compiled by the host
// C++ compiler (fakecuda.Emulator), with the executor's launch geometry and its
// parameters passed as cuLaunchKernel receives them, so a wrong index or
// term in a .cu file fails here even when its Go transcription is right.
// Every launch is also compared with its Go transcription, run on a copy
// of its arguments (crossCheck: 1e-5 of each buffer's largest entry), so
// a mismatch names the kernel, and the graphs' comparison with vm.Machine
// tells which side is wrong. sourceDirectCases then launch the kernels no
// graph reaches; in the end every kernel of KernelParams must have run on
// the emulator and been compared. Skipped without g++.
func TestKernelSourcesMatchVM(t *testing.T) {
	e := emulatorFor(t)
	withSourceKernels(t, e)
	cross := newCrossCheck(1e-5)
	fakeCross = cross
	t.Cleanup(func() { fakeCross = nil })
	for _, c := range sourceModeTests {
		t.Run(c.name, c.test)
	}
	for _, c := range sourceDirectCases() {
		t.Run("direct/"+c.name, func(t *testing.T) { checkSourceKernel(t, c) })
	}
	var never, unchecked []string
	for name := range KernelParams {
		if e.launches(name) <= 0 {
			never = append(never, name)
		}
		if cross.launches[name] == 0 {
			unchecked = append(unchecked, name)
		}
	}
	slices.Sort(never)
	slices.Sort(unchecked)
	if len(never)+len(unchecked) > 0 {
		t.Errorf("kernels never run on the emulator: %v; never compared with their Go transcription: %v", never, unchecked)
	}
	for _, name := range slices.Sorted(maps.Keys(cross.first)) {
		t.Errorf("%s: the source and its Go transcription differ in %d of %d launches; first: %s", name, cross.mismatches[name], cross.launches[name], cross.first[name])
	}
	t.Logf("launches compared with their Go transcription: %v", cross.launches)
}

// sourceDirectCase is one kernel launch compared between the C++
// emulator and the Go transcription: args allocates and fills its
// buffers on a fake device (the same values for the same rng), and the
// launch covers threads elements (launch1D) or rows blocks (launchRows).
type sourceDirectCase struct {
	name          string
	threads, rows int
	args          func(d *fakeDevice, rng *rand.Rand) []any
}

// devRand allocates n values on d: normal ones, or uniform in [lo, hi)
// when a range is given.
func devRand(d *fakeDevice, rng *rand.Rand, n int, lohi ...float32) Buffer {
	v := make([]float32, n)
	for i := range v {
		if len(lohi) == 2 {
			v[i] = lohi[0] + (lohi[1]-lohi[0])*rng.Float32()
		} else {
			v[i] = float32(rng.NormFloat64())
		}
	}
	b, err := d.Alloc(n)
	if err != nil {
		panic(err)
	}
	d.upload(b, v)
	return b
}

// devInts allocates vals on d.
func devInts(d *fakeDevice, vals ...int32) Buffer {
	b, err := d.Alloc(len(vals))
	if err != nil {
		panic(err)
	}
	d.uploadInts(b, vals)
	return b
}

// sourceDirectCases launch the kernels no graph of sourceModeTests
// reaches (TestKernelSourcesMatchVM's coverage check lists them), and a
// few barrier kernels over more than one block of columns or rows.
func sourceDirectCases() []sourceDirectCase {
	const n = 700 // three blocks, the last one partial
	unary := func(name string, lohi ...float32) sourceDirectCase {
		return sourceDirectCase{name: name, threads: n, args: func(d *fakeDevice, rng *rand.Rand) []any {
			return []any{devRand(d, rng, n, lohi...), devRand(d, rng, n), n}
		}}
	}
	binary := func(name string, lohi ...float32) sourceDirectCase {
		return sourceDirectCase{name: name, threads: n, args: func(d *fakeDevice, rng *rand.Rand) []any {
			return []any{devRand(d, rng, n), devRand(d, rng, n, lohi...), devRand(d, rng, n), n}
		}}
	}
	const rows, cols2 = 5, 300 // rows longer than a block
	return []sourceDirectCase{
		unary("lsf_exp"), unary("lsf_gelu"), binary("lsf_gelu_grad"), binary("lsf_div", 0.5, 2),
		{name: "lsf_sum_all", rows: 1, args: func(d *fakeDevice, rng *rand.Rand) []any {
			return []any{devRand(d, rng, n), devRand(d, rng, 1), n}
		}},
		{name: "lsf_layernorm", rows: rows, args: func(d *fakeDevice, rng *rand.Rand) []any {
			return []any{devRand(d, rng, rows*cols2), devRand(d, rng, cols2), devRand(d, rng, cols2),
				devRand(d, rng, rows*cols2), devRand(d, rng, rows), devRand(d, rng, rows), rows, cols2, float32(1e-5)}
		}},
		{name: "lsf_softmax_grad", rows: rows, args: func(d *fakeDevice, rng *rand.Rand) []any {
			return []any{devRand(d, rng, rows*cols2, 0, 1), devRand(d, rng, rows*cols2), devRand(d, rng, rows*cols2), rows, cols2}
		}},
	}
}

// checkSourceKernel launches c on a fake device in C++ mode with its
// launches compared with the Go transcriptions (TestKernelSourcesMatchVM
// sets both).
func checkSourceKernel(t *testing.T, c sourceDirectCase) {
	t.Helper()
	d := newFakeDevice()
	if d.source == nil || d.cross == nil {
		t.Fatal("checkSourceKernel needs C++ mode with cross-checks")
	}
	before, bad := d.cross.launches[c.name], d.cross.mismatches[c.name]
	args := c.args(d, rand.New(rand.NewSource(int64(len(c.name)))))
	var err error
	if c.rows > 0 {
		err = launchRows(d, c.name, c.rows, args...)
	} else {
		err = launch1D(d, c.name, c.threads, args...)
	}
	if n := d.cross.launches[c.name] - before; err != nil || n != 1 || d.cross.mismatches[c.name] != bad {
		t.Errorf("%s: %v (%d launches compared): %s", c.name, err, n, d.cross.first[c.name])
	}
}

// TestEmulatorBarrierKernels checks the emulator's plumbing: the kernels
// run as fibers (fakecuda.BarrierKernels) are exactly those with shared memory
// (every reduction of kernels/*.cu), a plain elementwise one is not among
// them, and an unknown kernel is refused. Skipped without g++.
func TestEmulatorBarrierKernels(t *testing.T) {
	e := emulatorFor(t)
	src, err := Source()
	if err != nil {
		t.Fatal(err)
	}
	var shared, fibers []string
	bodies := fakecuda.FunctionBodies(src)
	for name := range KernelParams {
		if strings.Contains(bodies[name], "__shared__") {
			shared = append(shared, name)
		}
	}
	for name := range KernelParams {
		if e.barrier[name] {
			fibers = append(fibers, name)
		}
	}
	slices.Sort(shared)
	slices.Sort(fibers)
	if !slices.Equal(shared, fibers) || len(fibers) < 10 || e.barrier["lsf_add"] {
		t.Errorf("kernels run as fibers %v, kernels with shared memory %v", fibers, shared)
	}
	if err := e.run("lsf_no_such_kernel", [3]uint32{1, 1, 1}, block256, nil); err == nil || !strings.Contains(err.Error(), "unknown kernel") {
		t.Errorf("unknown kernel: %v", err)
	}
}

// emuParams is cuLaunchKernel's kernelParams for the slots of
// packArgs: an array of pointers to each slot, both pinned until unpin
// is called (nil when there are no arguments).
func emuParams(vals []uint64) (params unsafe.Pointer, unpin func()) {
	var pin runtime.Pinner
	if len(vals) == 0 {
		return nil, pin.Unpin
	}
	ptrs := make([]unsafe.Pointer, len(vals))
	for i := range vals {
		ptrs[i] = unsafe.Pointer(&vals[i])
	}
	pin.Pin(&vals[0])
	pin.Pin(&ptrs[0])
	return unsafe.Pointer(&ptrs[0]), pin.Unpin
}
