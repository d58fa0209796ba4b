//go:build cudagpu && linux && (amd64 || arm64)

// GPU tests of the graph executor (Machine): bench-small on the GPU
// against vm.Machine on the CPU, and the step time at the performance
// reference's size. scripts/gpu-check.sh runs them with the kernel tests.

package cuda

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/train"
	"github.com/lsfuse/lsfuse/pkg/vm"
)

// gpuSession is a session on the tests' device (gpu).
func gpuSession(t *testing.T) *Session {
	t.Helper()
	d := gpu(t)
	s := newSession(d, nil)
	s.Info = d.Info
	return s
}

// TestGPUDeviceOps runs the ops of deviceOpCases (TemporalResample,
// MaxPool2d, Dropout: lsf_mix_rows, lsf_maxpool2d) on the GPU against
// vm.Machine, every step on the device.
func TestGPUDeviceOps(t *testing.T) {
	sess := gpuSession(t)
	defer sess.Close()
	for _, oc := range deviceOpCases() {
		if host := opMatchesVM(t, sess, oc, 1e-5); len(host) != 0 {
			t.Errorf("%s: host steps %v", oc.what, host)
		}
	}
}

// TestGPUMachineBenchSmall trains bench-small (B=32, T=8, float32) for
// three Adam steps on vm.Machine with train.Adam and on the GPU Machine
// with AdamStep, from the same weights and batches. After the first
// forward/backward (two accumulated runs) every gradient must match to
// 1e-3 of its tensor's largest entry; the losses of all steps to 1e-3
// relative.
func TestGPUMachineBenchSmall(t *testing.T) {
	sess := gpuSession(t)
	defer sess.Close()
	const batch, steps = 32, 8
	ref, got := newBenchSmall(t, batch, steps), newBenchSmall(t, batch, steps)
	cpu, err := vm.New(ref.g, ref.learn)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	m, err := NewMachine(got.g, got.learn, WithSession(sess), Fetch(got.mg.Loss, got.mg.Output))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	t.Logf("GPU %s; host steps %v", sess.Info, m.HostSteps())
	cfg := train.AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	opt, err := train.NewAdam(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rr, rg := rand.New(rand.NewSource(3)), rand.New(rand.NewSource(3))
	const adamSteps = 3
	var noisy [][]bool
	for step := 0; step < adamSteps; step++ {
		for run := 0; run < 2; run++ { // two runs accumulate, as an accumulation window does
			ref.bindBenchSmall(t, rr, 1)
			got.bindBenchSmall(t, rg, 1)
			if err := cpu.RunAll(); err != nil {
				t.Fatal(err)
			}
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			lr, lg := ref.loss(t), got.loss(t)
			t.Logf("step %d run %d: loss GPU %.7g, CPU %.7g", step, run, lg, lr)
			if math.Abs(lr-lg) > 1e-3*math.Abs(lr) {
				t.Errorf("step %d run %d: GPU loss %.7g, CPU %.7g", step, run, lg, lr)
			}
		}
		if err := m.Sync(); err != nil {
			t.Fatal(err)
		}
		gg, gc := gradsOf(t, got.learn), gradsOf(t, ref.learn)
		noisy = markNoisy(noisy, gg, gc)
		if step == 0 {
			worst := closeTo(t, "gradient", ref.learn, gg, gc, 1e-3)
			t.Logf("gradients: worst error %.3g of the allowance (1e-3 of each tensor's largest entry)", worst)
		}
		if err := opt.Step(ref.learn); err != nil {
			t.Fatal(err)
		}
		if err := m.AdamStep(AdamConfig(cfg)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sess.Download(); err != nil {
		t.Fatal(err)
	}
	worst, n := closeToAdam(t, ref.learn, valuesOf(got.learn), valuesOf(ref.learn), noisy, 2*cfg.LR*adamSteps)
	t.Logf("weights after %d Adam steps: worst error %.3g of the allowance; %d elements with rounding-level gradients allowed 2·lr·steps", adamSteps, worst, n)
}

// markNoisy marks (in noisy, allocated on the first call) the gradient
// elements on which got and want disagree by more than 10 % of want's
// value.
func markNoisy(noisy [][]bool, got, want [][]float32) [][]bool {
	if noisy == nil {
		noisy = make([][]bool, len(want))
		for i := range want {
			noisy[i] = make([]bool, len(want[i]))
		}
	}
	for i := range want {
		for j, w := range want[i] {
			if math.Abs(float64(got[i][j]-w)) > 0.1*math.Abs(float64(w)) {
				noisy[i][j] = true
			}
		}
	}
	return noisy
}

// closeToAdam compares weights after Adam steps as closeTo does (1e-3 of
// each tensor's largest entry), allowing drift more on the noisy
// elements: Adam divides each gradient element by its own magnitude, so
// where the gradient is float32 rounding noise — the attention key
// projection's bias has an exactly zero gradient in exact arithmetic,
// softmax ignoring a shift of all of a query's scores — the rounding
// picks the update's sign, up to lr per step either way. It returns the
// worst error as a fraction of its allowance and the noisy element count.
func closeToAdam(t *testing.T, names G.Nodes, got, want [][]float32, noisy [][]bool, drift float64) (float64, int) {
	t.Helper()
	worst, count := 0.0, 0
	for i := range want {
		scale := 0.0
		for _, v := range want[i] {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for j := range want[i] {
			allow := 1e-3*scale + 1e-7
			if noisy[i][j] {
				allow += drift
				count++
			}
			d := math.Abs(float64(got[i][j]) - float64(want[i][j]))
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			worst = math.Max(worst, d/allow)
			if d > allow {
				t.Errorf("weight after Adam of %s[%d]: %g, want %g (allowed error %.3g)", names[i].Name(), j, got[i][j], want[i][j], allow)
			}
		}
	}
	return worst, count
}

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestGPUMachineTiming times full training steps of bench-small (bind a
// batch, forward, backward, AdamStep, read the loss) at BATCH×T (default
// 256×32, the reference's GPU row) and prints the median next to which
// PyTorch's is printed by scripts/gpu-check.sh; then one profiled step
// lists where the time goes. MIXED (off, fp16 or bf16; default off) sets
// the GEMM input format (MixedPrecision).
func TestGPUMachineTiming(t *testing.T) {
	batch, steps, iters := envInt("BATCH", 256), envInt("T", 32), envInt("STEPS", 20)
	prec, err := ParsePrecision(os.Getenv("MIXED"))
	if err != nil {
		t.Fatal(err)
	}
	sess := gpuSession(t)
	defer sess.Close()
	b := newBenchSmall(t, batch, steps)
	m, err := NewMachine(b.g, b.learn, WithSession(sess), Fetch(b.mg.Loss), MixedPrecision(prec))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	rng := rand.New(rand.NewSource(1))
	step := func() time.Duration {
		b.bindBenchSmall(t, rng, 1)
		t0 := time.Now()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		if err := m.AdamStep(cfg); err != nil {
			t.Fatal(err)
		}
		if err := sess.dev.Sync(); err != nil {
			t.Fatal(err)
		}
		return time.Since(t0)
	}
	for range 3 {
		step()
	}
	var times []time.Duration
	for range iters {
		times = append(times, step())
	}
	slices.Sort(times)
	med := times[len(times)/2]
	fmt.Printf("lsfuse-cuda-machine: batch=%d T=%d steps=%d GEMM inputs %s: median %.2f ms/step (min %.2f, loss %.4f) on %s\n",
		batch, steps, iters, prec, float64(med.Microseconds())/1000, float64(times[0].Microseconds())/1000, b.loss(t), sess.Info)
	fmt.Printf("lsfuse-cuda-machine: host steps %v\n", m.HostSteps())

	prof := map[string]time.Duration{}
	m.prof = prof
	step()
	m.prof = nil
	type entry struct {
		fam string
		d   time.Duration
	}
	var es []entry
	var total time.Duration
	for f, d := range prof {
		es = append(es, entry{f, d})
		total += d
	}
	sort.Slice(es, func(i, j int) bool { return es[i].d > es[j].d })
	fmt.Printf("lsfuse-cuda-machine: profile of one synchronised step, %.2f ms in steps:\n", float64(total.Microseconds())/1000)
	for i, e := range es {
		if i == 12 {
			break
		}
		fmt.Printf("lsfuse-cuda-machine:   %-34s %8.2f ms\n", e.fam, float64(e.d.Microseconds())/1000)
	}
}

// TestGPUSeqVariants runs the fused LIF variants (learnable β/θ, graded
// spikes, every reset mode) and CfC variants (every mode and backbone
// activation) on the GPU against vm.Machine: outputs, losses and every
// gradient to 1e-4 of each tensor's largest entry (the GPU's expf, tanhf
// and erff and cuBLAS's summation order differ from Go's in the last
// bits), nothing of those families on the host.
func TestGPUSeqVariants(t *testing.T) {
	sess := gpuSession(t)
	defer sess.Close()
	runSeqCases(t, sess, append(lifSeqCases(), cfcSeqCases()...), 1e-4)
}
