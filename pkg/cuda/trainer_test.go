package cuda

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/safetensors"
	"github.com/lsfuse/lsfuse/pkg/train"
)

// digits is an in-memory dataset for bench-small: a 28×28 image whose
// mean follows the label and 16 token ids from the label's band of the
// vocabulary. nanAt ≥ 0 makes that sample's image NaN (a diverging batch:
// its step is skipped).
type digits struct {
	samples []data.Sample
	nanAt   int
}

func newDigits(n int, seed int64) *digits {
	r := rand.New(rand.NewSource(seed))
	d := &digits{nanAt: -1}
	for i := 0; i < n; i++ {
		c := r.Intn(10)
		img := make([]float32, 28*28)
		for j := range img {
			img[j] = float32(r.NormFloat64() + 0.2*float64(c-5))
		}
		ids := make([]int, 16)
		for j := range ids {
			ids[j] = c*100 + r.Intn(100)
		}
		d.samples = append(d.samples, data.Sample{Index: i,
			Inputs:  map[string]data.Tensor{"vision": {Shape: []int{1, 28, 28}, Data: img}},
			Tokens:  map[string][]int{"text": ids},
			Present: map[string]bool{"vision": true, "text": true},
			Label:   data.Label{Class: c}})
	}
	return d
}

func (d *digits) Len() int { return len(d.samples) }

func (d *digits) Get(i int) (data.Sample, error) {
	if i < 0 || i >= len(d.samples) {
		return data.Sample{}, fmt.Errorf("index %d out of range", i)
	}
	s := d.samples[i]
	if i == d.nanAt {
		img := s.Inputs["vision"].Clone()
		img.Data[0] = float32(math.NaN())
		s.Inputs = map[string]data.Tensor{"vision": img}
	}
	return s, nil
}

// trainRun is one Fit's outcome: the loss of every micro-batch, the
// skipped steps, the final weights and validation accuracy.
type trainRun struct {
	losses  []float64
	skipped int
	weights map[string][]float64
	res     train.Result
	err     error
}

// trainCase is a small bench-small run (spike steps 2, batches of 4 over
// 10 samples: a short last batch of 2) on the CPU (dev nil) or a device.
type trainCase struct {
	cfg      train.Config
	tr, val  data.Dataset
	dir      string
	resume   string
	stopAt   int // a hook fails after this many micro-batches (0: never)
	failWith error
	net      *model.Network       // nil: bench-small with 2 spike steps
	onStep   func(train.StepInfo) // called after every micro-batch (nil: nothing)
}

func benchSmallNet(t *testing.T) *model.Network {
	t.Helper()
	cfg := model.BenchSmallConfig()
	for name, m := range cfg.Modalities {
		m.Encoder.NumSpikeSteps = 2
		cfg.Modalities[name] = m
	}
	net, err := model.NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// smallTrainConfig trains 2 epochs with Adam at 1e-3. (Adam amplifies
// float32 noise in gradients near zero into ±lr updates: at 3e-3 single
// weights drift by 0.2·lr, at 1e-3 the whole run stays within 2e-5.)
func smallTrainConfig() train.Config {
	return train.Config{Epochs: 2, BatchSize: 4, LR: 1e-3, Seed: 7, AccumSteps: 1, Workers: 1,
		Schedule: train.ScheduleConfig{Kind: "constant"}}
}

// fitOn runs c with dev (nil: the CPU executor).
func (c trainCase) fitOn(t *testing.T, dev train.Device) trainRun {
	t.Helper()
	store, err := nn.NewStore(tensor.Float32, 3)
	if err != nil {
		t.Fatal(err)
	}
	var out trainRun
	seen := 0
	hook := train.HookFuncs{Step: func(i train.StepInfo) error {
		out.losses = append(out.losses, i.Loss)
		if c.onStep != nil {
			c.onStep(i)
		}
		if i.Skipped {
			out.skipped++
		}
		if seen++; seen == c.stopAt {
			return c.failWith
		}
		return nil
	}}
	net := c.net
	if net == nil {
		net = benchSmallNet(t)
	}
	tt, err := train.New(net, store, c.tr, c.val, c.cfg, train.Options{RunDir: c.dir, Hooks: []train.Hook{hook}, Device: dev})
	if err != nil {
		t.Fatal(err)
	}
	if c.resume != "" {
		if err := tt.Resume(c.resume); err != nil {
			t.Fatal(err)
		}
	}
	out.res, out.err = tt.Fit(context.Background())
	if out.err != nil && c.stopAt == 0 {
		t.Fatal(out.err)
	}
	out.weights = map[string][]float64{}
	for _, p := range store.Params() {
		if out.weights[p.Name], err = nn.ToFloat64(p.Value); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// fakeTrainDevice is TrainDevice on a fresh fake device.
func fakeTrainDevice() train.Device { return TrainDevice(newSession(newFakeDevice(), nil)) }

// sameRun fails unless got matches want within float32 tolerance: every
// micro-batch loss (relative tol), the skipped steps, every weight
// (absolute tol) and the last validation loss.
func sameRun(t *testing.T, what string, got, want trainRun, tol float64) {
	t.Helper()
	if len(got.losses) != len(want.losses) || got.skipped != want.skipped {
		t.Fatalf("%s: %d micro-batches, %d skipped; want %d, %d", what, len(got.losses), got.skipped, len(want.losses), want.skipped)
	}
	for i, l := range want.losses {
		g := got.losses[i]
		if math.IsNaN(l) != math.IsNaN(g) || !math.IsNaN(l) && math.Abs(g-l) > tol*math.Max(1, math.Abs(l)) {
			t.Fatalf("%s: loss of micro-batch %d is %.7g, want %.7g", what, i+1, g, l)
		}
	}
	worst, at := 0.0, ""
	for name, w := range want.weights {
		g := got.weights[name]
		if len(g) != len(w) {
			t.Fatalf("%s: %s has %d values, want %d", what, name, len(g), len(w))
		}
		for i := range w {
			if d := math.Abs(g[i] - w[i]); d > worst || math.IsNaN(d) {
				worst, at = d, name
			}
		}
	}
	if worst > tol || math.IsNaN(worst) {
		t.Fatalf("%s: weights differ by %.3g (in %s), tolerance %g", what, worst, at, tol)
	}
	gv, wv := got.res.Last.Val, want.res.Last.Val
	if (gv == nil) != (wv == nil) || gv != nil && math.Abs(gv.Loss-wv.Loss) > tol*math.Max(1, wv.Loss) {
		t.Fatalf("%s: last validation %+v, want %+v", what, gv, wv)
	}
	t.Logf("%s: %d micro-batches, %d skipped, max weight difference %.3g", what, len(got.losses), got.skipped, worst)
}

// TestTrainerOnDeviceMatchesCPU trains bench-small with the trainer on the
// fake device (train.Options.Device = TrainDevice) and on vm.Machine: the
// loss curve, the final weights and the validation loss agree within
// float32 tolerance, and the checkpoint holds the CPU Adam's entries.
func TestTrainerOnDeviceMatchesCPU(t *testing.T) {
	c := trainCase{cfg: smallTrainConfig(), tr: newDigits(10, 1), val: newDigits(6, 2)}
	cpu := c.fitOn(t, nil)
	c.dir = t.TempDir()
	dev := c.fitOn(t, fakeTrainDevice())
	sameRun(t, "device vs cpu", dev, cpu, 1e-4)

	state, _, err := safetensors.ReadFile(filepath.Join(c.dir, train.LastCheckpoint))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"adam/m/", "adam/v/", "adam/t/"} {
		n := 0
		for key, ten := range state {
			if strings.Contains(key, k) {
				n++
				if ten.F64 == nil {
					t.Errorf("%s is not float64", key)
				}
			}
		}
		if n == 0 {
			t.Errorf("the device run's checkpoint has no %s* entries", k)
		}
	}
}

// TestTrainerOnDeviceSGD: SGD with momentum steps on the host between a
// download and an upload of the device's weights, and matches the CPU run
// closely (no Adam normalisation to amplify float32 noise).
func TestTrainerOnDeviceSGD(t *testing.T) {
	cfg := smallTrainConfig()
	cfg.Optimizer, cfg.LR, cfg.Momentum = train.OptSGD, 0.05, 0.9
	c := trainCase{cfg: cfg, tr: newDigits(10, 1), val: newDigits(6, 2)}
	sameRun(t, "sgd device vs cpu", c.fitOn(t, fakeTrainDevice()), c.fitOn(t, nil), 1e-6)
}

// TestTrainerOnDeviceAccumulationAndSkip: gradient accumulation over 2
// micro-batches (a window mixing the graphs of 4 and 2 samples), clipping,
// and a NaN sample whose window is skipped (the device's gradients must be
// dropped with the host's) match the CPU run.
func TestTrainerOnDeviceAccumulationAndSkip(t *testing.T) {
	tr := newDigits(10, 1)
	tr.nanAt = 5
	cfg := smallTrainConfig()
	cfg.AccumSteps = 2
	cfg.ClipNorm = 1
	cfg.EarlyStop.StopOnNonFinite = false
	c := trainCase{cfg: cfg, tr: tr, val: newDigits(6, 2)}
	cpu := c.fitOn(t, nil)
	if cpu.skipped == 0 {
		t.Fatal("the NaN sample skipped no step on the CPU: the skip path is not exercised")
	}
	sameRun(t, "device vs cpu", c.fitOn(t, fakeTrainDevice()), cpu, 2e-4)
}

// TestTrainerOnDeviceGradientsStayOnDevice: with Adam, no accumulation
// and one process, a step's gradients never leave the device: the
// trainer unscales (dynamic loss scaling), checks for non-finite values
// (a NaN sample's step is skipped), clips (clip_norm small enough to
// clip every step) and steps from the per-tensor sums of squares alone
// (Machine.GradSumSquares), and the run matches the CPU's. Each step
// downloads far fewer values than the gradients hold.
func TestTrainerOnDeviceGradientsStayOnDevice(t *testing.T) {
	tr := newDigits(10, 1)
	tr.nanAt = 5
	cfg := smallTrainConfig()
	cfg.ClipNorm = 0.05
	cfg.EarlyStop.StopOnNonFinite = false
	cfg.LossScale = train.LossScaleConfig{Enabled: true, Init: 1024, GrowthInterval: 3}
	c := trainCase{cfg: cfg, tr: tr, val: newDigits(6, 2)}
	cpu := c.fitOn(t, nil)
	if cpu.skipped == 0 {
		t.Fatal("the NaN sample skipped no step on the CPU: the skip path is not exercised")
	}
	dev := newFakeDevice()
	// Values downloaded between two micro-batches of one epoch (no
	// checkpoint or validation between them).
	var marks []int
	c.onStep = func(train.StepInfo) { marks = append(marks, dev.downloaded) }
	got := c.fitOn(t, TrainDevice(newSession(dev, nil)))
	sameRun(t, "device-resident gradients vs cpu", got, cpu, 2e-4)
	params := 0
	for _, w := range got.weights {
		params += len(w)
	}
	if len(marks) < 2 {
		t.Fatalf("%d micro-batches", len(marks))
	}
	if step := marks[1] - marks[0]; step*100 > params {
		t.Errorf("the second micro-batch downloaded %d values for %d parameters: the gradients left the device", step, params)
	} else {
		t.Logf("the second micro-batch downloaded %d values (loss, output, spike statistics, sums of squares) for %d parameters", step, params)
	}
}

// errStop is the error a test hook interrupts a run with.
var errStop = errors.New("stop")

// TestTrainerOnDeviceResume: checkpoints round-trip between the paths. A
// device run interrupted mid-window (accumulation open) and resumed on a
// new device ends like the uninterrupted device run; a device checkpoint
// resumed on the CPU and a CPU checkpoint resumed on the device end like
// the uninterrupted CPU run.
func TestTrainerOnDeviceResume(t *testing.T) {
	cfg := smallTrainConfig()
	cfg.AccumSteps = 2
	base := trainCase{cfg: cfg, tr: newDigits(10, 1), val: newDigits(6, 2)}
	full := base
	full.dir = t.TempDir()
	want := full.fitOn(t, fakeTrainDevice())
	cpuWant := base.fitOn(t, nil)
	stop := errStop

	// Interrupted after 4 micro-batches: epoch 2's first window is open.
	c := base
	c.dir, c.stopAt, c.failWith = t.TempDir(), 4, stop
	if r := c.fitOn(t, fakeTrainDevice()); !errors.Is(r.err, stop) {
		t.Fatalf("interrupted run: %v, want the hook's error", r.err)
	}
	c.stopAt, c.resume = 0, "last"
	got := c.fitOn(t, fakeTrainDevice())
	got.losses = append(want.losses[:4:4], got.losses...)
	sameRun(t, "device resumed on device", got, want, 1e-6)

	for _, first := range []string{"device", "cpu"} {
		c := base
		c.dir, c.stopAt, c.failWith = t.TempDir(), 3, stop
		var firstDev, thenDev train.Device
		if first == "device" {
			firstDev = fakeTrainDevice()
		} else {
			thenDev = fakeTrainDevice()
		}
		if r := c.fitOn(t, firstDev); !errors.Is(r.err, stop) {
			t.Fatalf("%s: interrupted run: %v", first, r.err)
		}
		c.stopAt, c.resume = 0, "last"
		got := c.fitOn(t, thenDev)
		got.losses = append(cpuWant.losses[:3:3], got.losses...)
		sameRun(t, first+" checkpoint resumed on the other path", got, cpuWant, 2e-4)
	}
}

// randomSamples draws n samples of net's input shapes (token ids below
// vocab, classes below classes) with every modality present: a dataset
// for any configuration.
func randomSamples(t *testing.T, net *model.Network, n, vocab, classes int, seed int64) *digits {
	t.Helper()
	store, err := nn.NewStore(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	mg, err := net.Build(nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}), 1)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(seed))
	d := &digits{nanAt: -1}
	for i := 0; i < n; i++ {
		s := data.Sample{Index: i, Inputs: map[string]data.Tensor{}, Tokens: map[string][]int{}, Present: map[string]bool{},
			Label: data.Label{Class: r.Intn(classes)}}
		for _, name := range slices.Sorted(maps.Keys(mg.Inputs)) {
			in := mg.Inputs[name]
			shape := []int(in.Shape())[1:]
			size := 1
			for _, k := range shape {
				size *= k
			}
			s.Present[name] = true
			if in.Dtype() == tensor.Int {
				ids := make([]int, size)
				for j := range ids {
					ids[j] = 1 + r.Intn(vocab-1)
				}
				s.Tokens[name] = ids
				continue
			}
			x := make([]float32, size)
			for j := range x {
				x[j] = float32(r.NormFloat64() + 0.1*float64(s.Label.Class))
			}
			s.Inputs[name] = data.Tensor{Shape: shape, Data: x}
		}
		d.samples = append(d.samples, s)
	}
	return d
}

// TestTrainerOnDeviceQuickstart trains configs/quickstart.yaml's network
// (ResNet batch norm, mel audio, modality dropout: the resident running
// statistics and, on resume, the noise replay) on random data on the fake
// device and the CPU. With SGD the weights agree closely. Adam is
// compared on the losses only: before batch norm the conv weights'
// gradients are tiny, and Adam turns their float32 noise into drifts of
// up to the learning rate per step. An interrupted Adam run resumed on a
// new device ends exactly like the uninterrupted one.
func TestTrainerOnDeviceQuickstart(t *testing.T) {
	net := configNetwork(t, "../../configs/quickstart.yaml")
	cfg := smallTrainConfig()
	cfg.Epochs = 1
	c := trainCase{cfg: cfg, tr: randomSamples(t, net, 10, 50, 10, 1), val: randomSamples(t, net, 4, 50, 10, 2), net: net}

	sgd := c
	sgd.cfg.Optimizer, sgd.cfg.LR, sgd.cfg.Momentum = train.OptSGD, 0.05, 0.9
	sameRun(t, "quickstart sgd device vs cpu", sgd.fitOn(t, fakeTrainDevice()), sgd.fitOn(t, nil), 1e-5)

	cpu := c.fitOn(t, nil)
	c.dir = t.TempDir()
	dev := c.fitOn(t, fakeTrainDevice())
	dev.weights, cpu.weights = nil, nil
	sameRun(t, "quickstart adam device vs cpu (losses)", dev, cpu, 1e-3)

	c.dir, c.stopAt, c.failWith = t.TempDir(), 2, errStop
	if r := c.fitOn(t, fakeTrainDevice()); !errors.Is(r.err, errStop) {
		t.Fatalf("interrupted run: %v", r.err)
	}
	c.stopAt, c.resume = 0, "last"
	got := c.fitOn(t, fakeTrainDevice())
	got.losses = append(dev.losses[:2:2], got.losses...)
	want := c
	want.dir, want.resume = t.TempDir(), ""
	sameRun(t, "quickstart resumed on device", got, want.fitOn(t, fakeTrainDevice()), 0)
}
