package main

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/train"
	"github.com/lsfuse/lsfuse/pkg/vm"
)

// benchOptions are `lsfuse bench`'s inputs.
type benchOptions struct {
	IO     *IOStreams
	Config configFlags
	// Mode is train (forward, backward, Adam step) or infer (forward in
	// evaluation mode).
	Mode string
	// Batch is the batch size B; SpikeSteps, when positive, sets every
	// modality's num_spike_steps T.
	Batch, SpikeSteps int
	// Warmup steps run before Steps timed ones.
	Warmup, Steps int
	// Threads, when positive, caps the cores used (GOMAXPROCS), like
	// ref_torch.py's --threads.
	Threads int
}

func newBenchCmd(ios *IOStreams, runF func(context.Context, *benchOptions) error) *cobra.Command {
	opts := &benchOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Time training or inference steps of an experiment's model",
		Long: `Bench builds the experiment's model for one batch size, binds one batch of
random inputs and labels of the right shapes (no data is read), runs warm-up
steps, then times each step: in train mode a forward and backward pass and an
Adam update (train.lr) of every parameter, in infer mode a forward pass in
evaluation mode. It reports the median milliseconds per step, steps per
second, the peak resident memory (VmHWM), and bytes and allocations per step
(Go's runtime counters), and ends with one line in the format of
../shared/bench/ref_torch.py's, to compare the two in one run.`,
		Example: `  lsfuse bench --config configs/bench-small.yaml --mode train --batch 32 --spike-steps 8
  lsfuse bench -c configs/bench-small.yaml --mode infer --batch 128 --spike-steps 32 --steps 20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Config.Environ = environ()
			if opts.Mode != "train" && opts.Mode != "infer" {
				return usagef("--mode %q: want train or infer", opts.Mode)
			}
			if opts.Batch < 1 || opts.Steps < 1 || opts.Warmup < 0 || opts.SpikeSteps < 0 {
				return usagef("--batch and --steps must be ≥ 1, --warmup and --spike-steps ≥ 0")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runBench(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	opts.Config.register(f, false)
	f.StringVar(&opts.Mode, "mode", "train", "train or infer")
	f.IntVar(&opts.Batch, "batch", 32, "batch size")
	f.IntVar(&opts.SpikeSteps, "spike-steps", 0, "spike steps T of every modality (default: the config's)")
	f.IntVar(&opts.Warmup, "warmup", 5, "untimed warm-up steps")
	f.IntVar(&opts.Steps, "steps", 50, "timed steps")
	f.IntVar(&opts.Threads, "threads", 0, "cores to use (GOMAXPROCS; default: all)")
	return cmd
}

// benchResult is one bench run's measurements.
type benchResult struct {
	Mode              string
	Batch, T, Params  int
	MedianMS, StepsPS float64
	MinMS, MaxMS      float64
	PeakRSSMB         float64
	BytesPerStep      float64
	AllocsPerStep     float64
	Steps             int
	LastLoss          float64
	// Device is where the steps ran (runDevice.Name); HostSteps lists the
	// op families a GPU machine ran as host fallbacks.
	Device    string
	HostSteps []string
}

func runBench(ctx context.Context, opts *benchOptions) (err error) {
	if opts.Threads < 0 {
		return usagef("--threads %d: want a positive number of cores", opts.Threads)
	}
	if opts.Threads > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(opts.Threads))
	}
	cfg, err := opts.Config.load()
	if err != nil {
		return err
	}
	dev, err := openDevice(cfg)
	if err != nil {
		return err
	}
	defer dev.closeInto(&err)
	if opts.SpikeSteps > 0 {
		for name, mc := range cfg.Model.Modalities {
			mc.NumSpikeSteps = opts.SpikeSteps
			cfg.Model.Modalities[name] = mc
		}
	}
	res, err := config.Resolve(cfg)
	if err != nil {
		return err
	}
	net, err := model.NewNetwork(res.Network)
	if err != nil {
		return usagef("model: %v", err)
	}
	r, err := bench(ctx, net, res, opts, dev)
	if err != nil {
		return err
	}
	out := opts.IO.Out
	if r.Device != "cpu" {
		fmt.Fprintf(out, "device: %s\n", r.Device)
	}
	if dev.Train != nil {
		hs := "none"
		if len(r.HostSteps) > 0 {
			hs = strings.Join(r.HostSteps, ", ")
		}
		fmt.Fprintf(out, "host steps: %s\n", hs)
	}
	fmt.Fprintf(out, "model: %d parameters, modalities %s, fusion %s\n", r.Params, strings.Join(net.Names(), ", "), res.Network.Fusion.Strategy)
	fmt.Fprintf(out, "timing: steps=%d median_ms=%.3f min_ms=%.3f max_ms=%.3f samples_per_s=%.1f bytes_per_step=%.0f allocs_per_step=%.0f peak_rss_mib=%.1f last_loss=%.4f\n",
		r.Steps, r.MedianMS, r.MinMS, r.MaxMS, float64(r.Batch)*r.StepsPS, r.BytesPerStep, r.AllocsPerStep, r.PeakRSSMB, r.LastLoss)
	_, err = fmt.Fprintf(out, "lsfuse-bench: mode=%s batch=%d T=%d median_ms_per_step=%.3f steps_per_s=%.2f peak_rss_mb=%.1f allocs_per_step=%.0f params=%d threads=%d\n",
		r.Mode, r.Batch, r.T, r.MedianMS, r.StepsPS, r.PeakRSSMB, r.AllocsPerStep, r.Params, runtime.GOMAXPROCS(0))
	return err
}

// bench builds the graph and times its steps on dev: vm.Machine and the
// host Adam on the CPU, the device's executor and its Adam step
// otherwise.
func bench(ctx context.Context, net *model.Network, res *config.Resolved, opts *benchOptions, dev *runDevice) (*benchResult, error) {
	store, err := nn.NewStore(res.Dtype, res.Run.Seed)
	if err != nil {
		return nil, err
	}
	training := opts.Mode == "train"
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{Train: training, NoiseSeed: res.Run.Seed})
	mg, err := net.Build(c, opts.Batch)
	if err != nil {
		return nil, err
	}
	var learn G.Nodes
	var opt *train.Adam
	if training {
		learn = c.Learnables()
		if err := nn.Catch("bench gradient", func() error { _, err := G.Grad(mg.Loss, learn...); return err }); err != nil {
			return nil, err
		}
		if opt, err = train.NewAdam(train.AdamConfig{LR: res.Train.LR}); err != nil {
			return nil, err
		}
	}
	m, x, err := benchMachine(g, mg, learn, training, dev.Train)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	feed, err := randomFeed(mg, res.Network, uint64(res.Run.Seed))
	if err != nil {
		return nil, err
	}
	step := func() error {
		if err := mg.Bind(feed); err != nil {
			return err
		}
		defer m.Reset()
		if err := m.RunAll(); err != nil {
			return err
		}
		switch {
		case !training:
			return nil
		case x != nil:
			return x.AdamStep(opt.Config(), learn...)
		}
		return opt.Step(learn)
	}
	for i := 0; i < opts.Warmup; i++ {
		if err := step(); err != nil {
			return nil, fmt.Errorf("warm-up step %d: %w", i+1, err)
		}
	}
	times := make([]float64, 0, opts.Steps)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < opts.Steps; i++ {
		if ctx != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		t0 := time.Now()
		if err := step(); err != nil {
			return nil, fmt.Errorf("step %d: %w", i+1, err)
		}
		times = append(times, float64(time.Since(t0).Nanoseconds())/1e6)
	}
	runtime.ReadMemStats(&after)
	slices.Sort(times)
	med := times[len(times)/2]
	if len(times)%2 == 0 {
		med = (times[len(times)/2-1] + times[len(times)/2]) / 2
	}
	params, err := net.NumParams()
	if err != nil {
		return nil, err
	}
	T := 0
	for _, m := range res.Network.Modalities {
		T = max(T, m.Encoder.NumSpikeSteps)
	}
	loss, _ := nn.ScalarValue(mg.Loss)
	n := float64(opts.Steps)
	return &benchResult{
		Mode: opts.Mode, Batch: opts.Batch, T: T, Params: params, Steps: opts.Steps,
		MedianMS: med, StepsPS: 1000 / med, MinMS: times[0], MaxMS: times[len(times)-1],
		PeakRSSMB:     peakRSSMB(),
		BytesPerStep:  float64(after.TotalAlloc-before.TotalAlloc) / n,
		AllocsPerStep: float64(after.Mallocs-before.Mallocs) / n,
		LastLoss:      loss,
		Device:        dev.Name,
		HostSteps:     hostSteps(x),
	}, nil
}

// benchMachine returns the executor of the bench graph: vm.Machine on the
// CPU (x nil), else the device's (x is the same machine), fetching the
// loss.
func benchMachine(g *G.ExprGraph, mg *model.Graph, learn G.Nodes, training bool, dev train.Device) (G.VM, train.Executor, error) {
	if dev == nil {
		if training {
			m, err := vm.New(g, learn)
			return m, nil, err
		}
		m, err := vm.New(g, nil, vm.EvalMode())
		return m, nil, err
	}
	x, err := dev.NewExecutor(g, learn, G.Nodes{mg.Loss}, !training)
	if err != nil {
		return nil, nil, fmt.Errorf("device: %w", err)
	}
	return x, x, nil
}

// hostSteps is the executor's list of host-fallback op families, for
// executors that report one (the CUDA Machine's HostSteps).
func hostSteps(x train.Executor) []string {
	if h, ok := x.(interface{ HostSteps() []string }); ok {
		return h.HostSteps()
	}
	return nil
}

// randomFeed draws one batch of inputs and labels of the graph's shapes:
// standard normal floats, token ids in [0, vocab), class labels in
// [0, output_dim).
func randomFeed(mg *model.Graph, nc model.NetworkConfig, seed uint64) (model.Feed, error) {
	rng := rand.New(rand.NewPCG(seed, 0x6c7366757365))
	f := model.Feed{Inputs: map[string]*tensor.Dense{}}
	fill := func(n *G.Node, hi int) *tensor.Dense {
		shape := []int(n.Shape())
		size := 1
		for _, s := range shape {
			size *= s
		}
		switch n.Dtype() {
		case tensor.Int:
			v := make([]int, size)
			for i := range v {
				v[i] = rng.IntN(hi)
			}
			return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
		case tensor.Float32:
			v := make([]float32, size)
			for i := range v {
				v[i] = float32(rng.NormFloat64())
			}
			return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
		default:
			v := make([]float64, size)
			for i := range v {
				v[i] = rng.NormFloat64()
			}
			return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
		}
	}
	// In name order: ranging over the map would draw the inputs in a
	// different order in every process, and the timed loss with them.
	for _, name := range slices.Sorted(maps.Keys(mg.Inputs)) {
		f.Inputs[name] = fill(mg.Inputs[name], max(1, nc.Modalities[name].Preprocessor.Text.VocabSize))
	}
	f.Labels = fill(mg.Labels, nc.OutputDim)
	return f, nil
}

// peakRSSMB is the process's peak resident set (VmHWM) in MiB, 0 where
// /proc is not available.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
