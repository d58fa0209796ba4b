package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/dist"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Options are a run's surroundings, as opposed to its hyper-parameters.
type Options struct {
	// RunDir is the run directory: metrics.jsonl, last.ckpt, best.ckpt,
	// epoch-N.ckpt and the PNG curves go there. It is created if missing.
	// "" writes nothing (no checkpoints, no log, no plots).
	RunDir string
	// Hooks observe the run (progress bars, log lines), in order.
	Hooks []Hook
	// Meta is string metadata stored in every checkpoint, typically the
	// resolved experiment config ("config" → YAML). Keys starting with
	// "train." and the key "format" are reserved.
	Meta map[string]string
	// Comm is the job of data-parallel processes this one belongs to (nil:
	// a single process). With Size > 1, Config.BatchSize is the global
	// batch, split over the ranks; gradients are summed with one
	// all-reduce per step; only rank 0 writes RunDir (every rank reads it
	// to resume); callers should give hooks that print to rank 0 only. See
	// dist.go.
	Comm dist.Communicator
	// Device, when set, runs the training and validation graphs there
	// (pkg/cuda's TrainDevice; see device.go) instead of vm.Machine, with
	// Adam stepping on the device. Nil trains on the CPU. The store must
	// be float32.
	Device Device
}

// Trainer trains a network on a dataset; see New and Fit.
//
// Execution. One training graph is built per micro-batch size (the
// configured batch and, unless DropLast, the short last batch of an
// epoch), plus evaluation graphs for validation, all bound to the same
// store tensors. A training graph multiplies the network's loss by a
// scalar input before differentiation: S·n/B for a batch of n samples,
// S the loss scale and B the batch size. Gradients of a window of
// AccumSteps micro-batches are summed (in float64) and divided by S·Σn/B,
// which makes the update exactly the gradient of the mean loss over the
// window's samples, whatever its length (a short last window or a short
// last batch included). Then: skip the step if any gradient (or a loss) is
// not finite — zero the gradients and halve S when loss scaling is on —,
// clip to ClipNorm, and update each group of parameters at
// schedule(step) × stage scale × ModalityLR multiplier. Skipped steps still
// advance the schedule, so the learning rate is a function of the step
// number alone.
//
// Reproducibility. Everything random in a run is a pure function of
// Config.Seed (parameter initialisation is the store's seed): the
// shuffling order of epoch e (the loader), and the noise of random ops
// (dropout, modality dropout). A graph's random ops draw from streams
// seeded when the graph is built, so a network with random ops gets fresh
// training graphs at the start of every epoch, seeded from (Seed, epoch,
// batch size); each run then advances every stream by a number of draws
// that does not depend on the data (true of nn.Dropout and the fusion's
// modality keep mask; a new random op must keep it so). Resuming in the
// middle of epoch e rebuilds the graph for e and replays the k batches
// already trained (forward and backward, no update; batch-norm running
// statistics restored afterwards), which puts every stream exactly where
// the interrupted run left it: the resumed run ends with bit-identical
// weights. The replay costs up to one epoch's compute, only on resume and
// only for networks with random ops.
type Trainer struct {
	net      *model.Network
	store    *nn.Store
	trainSet data.Dataset
	valSet   data.Dataset
	cfg      Config
	opts     Options
	hooks    hooks
	opt      optimizer
	scaler   *LossScaler
	plan     stagePlan
	ev       *evaluator
	st       runState
	history  []EpochInfo

	acc     map[string][]float64 // summed gradients of the open window (AccumSteps > 1)
	graphs  map[int]*trainGraph
	gStage  int // stage index the graphs were built for
	gEpoch  int
	noisy   bool
	built   bool // a training graph was built (noisy is known)
	replay  int  // batches to replay for the noise streams after Resume
	resumed bool
	fitted  bool
	dirty   bool // state is mid-update: an error now must not write last.ckpt
	// progressed is set once this process has trained a batch: only then
	// does a failure write last.ckpt (never clobber a previous run's).
	progressed bool

	mlog          *metricsLog
	metricsOffset int64 // length metrics.jsonl is cut to when opened: 0 for a fresh run, the checkpoint's for a resumed one
	written       map[string]string

	// inject, when set (tests), runs after every backward pass with the
	// step number and the learnable nodes: a test can plant an Inf.
	inject func(step int, learn G.Nodes)

	comm dist.Communicator
	flat []float64 // the all-reduce buffer of reduceGrads

	// pushed names the learnables whose host Adam state was sent to the
	// device (Options.Device): from then on the device's is newer.
	pushed map[string]bool
}

// Checkpoint file names inside a run directory.
const (
	LastCheckpoint = "last.ckpt"
	BestCheckpoint = "best.ckpt"
)

// optimizer is what the trainer needs of Adam and SGD.
type optimizer interface {
	SetLR(lr float64)
	Step(nodes G.Nodes) error
	stateful
}

func newOptimizer(cfg Config) (optimizer, error) {
	switch cfg.Optimizer {
	case OptSGD:
		return NewSGD(SGDConfig{LR: cfg.LR, Momentum: cfg.Momentum, Nesterov: cfg.Nesterov, WeightDecay: cfg.WeightDecay})
	case OptAdamW:
		return NewAdam(AdamConfig{LR: cfg.LR, WeightDecay: cfg.WeightDecay, Decoupled: true})
	default:
		return NewAdam(AdamConfig{LR: cfg.LR, WeightDecay: cfg.WeightDecay})
	}
}

// newScaler returns the loss scaler; with scaling off it is fixed at 1
// (no backoff, no growth) and only decides whether a step is finite.
func newScaler(cfg LossScaleConfig) (*LossScaler, error) {
	if !cfg.Enabled {
		s, err := NewLossScaler(1, math.MaxInt)
		if err != nil {
			return nil, err
		}
		s.Growth, s.Backoff = 1, 1
		return s, nil
	}
	return NewLossScaler(cfg.Init, cfg.GrowthInterval)
}

// New validates cfg and prepares a run of net on trainSet, validating on
// valSet every epoch (nil or empty: no validation). It builds the network
// once on a scratch graph so that store holds every parameter (stages and
// checkpoints need them all) and checks the stages' prefixes against
// them. It writes nothing but the run directory itself.
func New(net *model.Network, store *nn.Store, trainSet, valSet data.Dataset, cfg Config, opts Options) (*Trainer, error) {
	if net == nil || store == nil || trainSet == nil {
		return nil, fmt.Errorf("train: nil network, store or training set")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkDeviceDtype(opts.Device, store.Dtype()); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if trainSet.Len() == 0 {
		return nil, fmt.Errorf("train: the training set is empty")
	}
	if valSet != nil && valSet.Len() == 0 {
		valSet = nil
	}
	stop, err := newEarlyStop(cfg.EarlyStop, valSet != nil)
	if err != nil {
		return nil, err
	}
	opt, err := newOptimizer(cfg)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	scaler, err := newScaler(cfg.LossScale)
	if err != nil {
		return nil, fmt.Errorf("train.loss_scale: %w", err)
	}
	if _, err := net.Build(nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}), 1); err != nil {
		return nil, err
	}
	plan := newStagePlan(cfg.Stages)
	for _, s := range plan.stages {
		if err := s.check(store); err != nil {
			return nil, err
		}
	}
	for k := range opts.Meta {
		if k == "format" || len(k) >= 6 && k[:6] == "train." {
			return nil, fmt.Errorf("train: checkpoint metadata key %q is reserved", k)
		}
	}
	comm := opts.Comm
	if comm == nil {
		comm = dist.Single()
	}
	if cfg.BatchSize < comm.Size() {
		return nil, fmt.Errorf("train.batch_size %d is the global batch and must be at least the number of ranks (%d)", cfg.BatchSize, comm.Size())
	}
	if opts.RunDir != "" && comm.Rank() == 0 {
		if err := ensureWritableDir(opts.RunDir); err != nil {
			return nil, err
		}
	}
	t := &Trainer{net: net, store: store, trainSet: trainSet, valSet: valSet, cfg: cfg, opts: opts,
		hooks: hooks(opts.Hooks), opt: opt, scaler: scaler, plan: plan, ev: newEvaluator(net, store, opts.Device),
		gStage: math.MinInt, metricsOffset: 0, written: map[string]string{}, comm: comm}
	t.st = runState{Seed: cfg.Seed, BatchSize: cfg.BatchSize, AccumSteps: cfg.AccumSteps, DropLast: cfg.DropLast,
		Optimizer: cfg.Optimizer, Stop: *stop}
	return t, nil
}

func ensureWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("run directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// Fit trains until the configured epochs are done, early stopping ends the
// run, or an error occurs. Cancelling ctx (or a hook returning an error)
// interrupts the run after the current micro-batch; last.ckpt is then
// written with the exact position, so Resume("last") continues the same
// run. The error returned is ctx's (or the hook's), wrapped. A Trainer
// fits once.
func (t *Trainer) Fit(ctx context.Context) (res Result, err error) {
	if t.fitted {
		return Result{}, errors.New("train: Fit was already called on this trainer (make a new one and Resume to continue)")
	}
	t.fitted = true
	cfg := t.cfg
	if t.resumed {
		t.resetForRank()
	}
	tl, err := newBatchSource(t.trainSet, data.LoaderConfig{BatchSize: cfg.BatchSize, Shuffle: true, Seed: t.st.Seed,
		DropLast: cfg.DropLast, Workers: cfg.Workers, Prefetch: cfg.Prefetch, Cache: cfg.Cache}, t.comm)
	if err != nil {
		return Result{}, fmt.Errorf("training set: %w", err)
	}
	nb := tl.NumBatches()
	if nb == 0 {
		return Result{}, fmt.Errorf("train: the training set (%d samples) has no full batch of %d and drop_last is on: lower train.batch_size", t.trainSet.Len(), cfg.BatchSize)
	}
	var vl *data.Loader
	if t.valSet != nil {
		if vl, err = data.NewLoader(t.valSet, data.LoaderConfig{BatchSize: cfg.BatchSize, Workers: cfg.Workers,
			Prefetch: cfg.Prefetch, Cache: cfg.Cache}); err != nil {
			return Result{}, fmt.Errorf("validation set: %w", err)
		}
	}
	stepsPerEpoch := (nb + cfg.AccumSteps - 1) / cfg.AccumSteps
	sched, err := NewSchedule(cfg.Schedule.withTotal(cfg.Epochs * stepsPerEpoch))
	if err != nil {
		return Result{}, fmt.Errorf("train.schedule: %w", err)
	}
	if t.writes() {
		if t.mlog, err = openMetricsLog(filepath.Join(t.opts.RunDir, MetricsFile), cfg.LogEvery, t.metricsOffset); err != nil {
			return Result{}, err
		}
	}
	defer t.closeAll()
	r := &run{t: t, ctx: ctx, train: tl, val: vl, nb: nb, sched: sched}
	startInfo := StartInfo{Epochs: cfg.Epochs, StartEpoch: t.st.Epoch + 1, StartBatch: t.st.Batch, BatchesPerEpoch: nb,
		StepsPerEpoch: stepsPerEpoch, TotalSteps: cfg.Epochs * stepsPerEpoch, Step: t.st.Step,
		TrainSamples: t.trainSet.Len(), NumParams: t.store.NumParams(), Resumed: t.resumed, RunDir: t.opts.RunDir}
	if vl != nil {
		startInfo.ValSamples = t.valSet.Len()
	}
	if err = t.hooks.start(startInfo); err == nil {
		err = r.loop()
	}
	// The store's tensors get the device's weights back (callers and the
	// checkpoint below read them).
	if serr := t.syncHost(); serr != nil {
		err = errors.Join(err, fmt.Errorf("device: %w", serr))
	}
	// With several ranks, an open accumulation window holds only rank 0's
	// share of the gradients: its state cannot be resumed.
	if err != nil && !t.dirty && t.progressed && t.writes() && (t.comm.Size() == 1 || t.st.WindowBatches == 0) {
		if _, serr := t.save(LastCheckpoint); serr != nil {
			err = errors.Join(err, fmt.Errorf("saving %s after the failure: %w", LastCheckpoint, serr))
		}
	}
	if t.plan.configured() {
		t.store.Unfreeze("")
	}
	res = t.result()
	if t.writes() && len(t.history) > 0 {
		if perr := writeCurves(t.opts.RunDir, t.history, t.net.Config().Head); perr != nil {
			err = errors.Join(err, perr)
		}
	}
	if herr := t.hooks.finish(FinishInfo{Result: res, Err: err}); herr != nil {
		err = errors.Join(err, herr)
	}
	return res, err
}

func (t *Trainer) closeAll() {
	for _, g := range t.graphs {
		g.close()
	}
	t.graphs = nil
	t.ev.close()
	if t.mlog != nil {
		t.mlog.close()
		t.mlog = nil
	}
}

func (t *Trainer) result() Result {
	r := Result{Epochs: t.st.Epoch, Steps: t.st.Step, Monitor: t.st.Stop.Monitor, BestEpoch: t.st.Stop.BestEpoch,
		EarlyStopped: t.st.Done, History: append([]EpochInfo(nil), t.history...),
		LastCheckpoint: t.written[LastCheckpoint], BestCheckpoint: t.written[BestCheckpoint]}
	if t.st.Stop.HasBest {
		r.Best = float64(t.st.Stop.Best)
	}
	if n := len(t.history); n > 0 {
		r.Last = t.history[n-1]
	}
	return r
}

// run is one Fit call's loop state.
type run struct {
	t     *Trainer
	ctx   context.Context
	train batchSource
	val   *data.Loader
	nb    int
	sched Schedule
	// this process's training throughput within the current epoch
	samples int
	busy    time.Duration
}

func (r *run) loop() error {
	t := r.t
	for t.st.Epoch < t.cfg.Epochs && !t.st.Done {
		if err := r.epoch(); err != nil {
			return err
		}
	}
	return nil
}

// epoch trains (the rest of) epoch t.st.Epoch and ends it.
func (r *run) epoch() error {
	t := r.t
	e := t.st.Epoch
	stg := t.plan.at(e)
	if err := t.prepareGraphs(stg, e); err != nil {
		return err
	}
	if t.st.Batch == 0 || t.st.Train == nil {
		t.st.Train = newMetricAcc(t.net.Config())
		t.st.Skipped = 0
		t.st.Spikes, t.st.SpikeWeight = nil, 0
	}
	if t.st.Spikes == nil {
		t.st.Spikes = map[string]map[string]jfloat{}
	}
	if k := t.replay; k > 0 {
		t.replay = 0
		if k < r.nb {
			if err := r.replayNoise(e, k); err != nil {
				return fmt.Errorf("resume: replaying the noise of epoch %d: %w", e+1, err)
			}
		}
	}
	start := time.Now()
	r.samples, r.busy = 0, 0
	for b, err := range r.train.Epoch(r.ctx, e, t.st.Batch) {
		if err != nil {
			return fmt.Errorf("epoch %d: %w", e+1, err)
		}
		info, err := r.batch(b, stg)
		if err != nil {
			return fmt.Errorf("epoch %d, batch %d: %w", e+1, t.st.Batch+1, err)
		}
		if t.mlog != nil {
			if err := t.mlog.step(info); err != nil {
				return err
			}
		}
		if err := t.hooks.step(info); err != nil {
			return err
		}
		if err := r.ctx.Err(); err != nil {
			return fmt.Errorf("interrupted in epoch %d after batch %d: %w", e+1, t.st.Batch, err)
		}
	}
	return r.endEpoch(stg, start)
}

// prepareGraphs applies stg's frozen marks and drops the training graphs
// when they no longer fit: another stage (different learnables), or a new
// epoch for a network with random ops (fresh noise seeds).
func (t *Trainer) prepareGraphs(stg stage, e int) error {
	if t.graphs != nil && stg.index == t.gStage && (len(t.graphs) == 0 || !t.noisy || e == t.gEpoch) {
		t.gEpoch = e // graphs built from now on seed their noise from e
		return nil
	}
	if stg.index != t.gStage {
		if err := stg.apply(t.store); err != nil {
			return err
		}
	}
	for _, g := range t.graphs {
		if err := t.pullAdam(g); err != nil { // the device's moments outlive the graph
			return err
		}
		g.close()
	}
	t.graphs = map[int]*trainGraph{}
	t.gStage, t.gEpoch = stg.index, e
	return nil
}

// graph returns the training graph for micro-batches of size samples.
func (t *Trainer) graph(size int) (*trainGraph, error) {
	if g, ok := t.graphs[size]; ok {
		return g, nil
	}
	g, err := buildTrainGraph(t.net, t.store, size, noiseSeed(t.st.Seed, t.gEpoch, size), t.opts.Device)
	if err != nil {
		return nil, fmt.Errorf("training graph for batch %d (stage %s): %w", size, t.plan.at(t.gEpoch).name, err)
	}
	if err := t.pushAdam(g); err != nil {
		g.close()
		return nil, err
	}
	g.groups = lrGroups(g.learn, t.cfg.ModalityLR)
	_, adam := t.opt.(*Adam)
	g.deviceGrads = g.exec != nil && adam && t.cfg.AccumSteps == 1 && t.comm.Size() == 1 && t.inject == nil
	t.graphs[size] = g
	t.noisy, t.built = g.noisy, true
	return g, nil
}

// replayNoise runs the first k batches of epoch e through their training
// graph without updating anything, to advance the random ops' streams to
// where an uninterrupted run has them (see Trainer). Buffers (batch-norm
// running statistics) are restored afterwards and gradients zeroed.
func (r *run) replayNoise(e, k int) error {
	t := r.t
	g, err := t.graph(t.localBatch())
	if err != nil {
		return err
	}
	if !g.noisy {
		return nil
	}
	if t.opts.Device != nil {
		if err := t.opts.Device.Download(); err != nil { // the resident running statistics
			return err
		}
	}
	saved := map[string][]float64{}
	for _, p := range t.store.Params() {
		if !p.Trainable {
			if saved[p.Name], err = nn.ToFloat64(p.Value); err != nil {
				return err
			}
		}
	}
	done := 0
	for b, err := range r.train.Epoch(r.ctx, e, 0) {
		if err != nil {
			return err
		}
		if done == k {
			break
		}
		if b.Size == 0 { // an empty shard (several ranks)
			done++
			continue
		}
		g, err := t.graph(b.Size)
		if err != nil {
			return err
		}
		feed, err := batchFeed(g.mg, t.net.Config().Head, b, "")
		if err != nil {
			return err
		}
		if _, _, err := g.run(feed, 1); err != nil {
			return err
		}
		if err := g.zeroGrads(); err != nil {
			return err
		}
		done++
	}
	for name, v := range saved {
		if err := nn.SetFromFloat64(t.store.Lookup(name).Value, v); err != nil {
			return err
		}
	}
	if t.opts.Device != nil {
		return t.opts.Device.Upload()
	}
	return nil
}

// lr is the base learning rate of the current step in stage s.
func (r *run) lr(s stage) float64 { return r.sched(r.t.st.Step) * s.lrScale }

// batch trains one micro-batch and, when it closes an accumulation
// window, steps the optimiser.
func (r *run) batch(b data.Batch, stg stage) (StepInfo, error) {
	t := r.t
	cfg := t.cfg
	start := time.Now()
	if b.Size == 0 {
		return r.emptyShard(stg)
	}
	g, err := t.graph(b.Size)
	if err != nil {
		return StepInfo{}, err
	}
	feed, err := batchFeed(g.mg, t.net.Config().Head, b, "")
	if err != nil {
		return StepInfo{}, err
	}
	w := float64(b.Size) / float64(cfg.BatchSize)
	scale := t.scaler.Scale
	loss, out, err := g.run(feed, scale*w)
	if err != nil {
		return StepInfo{}, err
	}
	if t.inject != nil {
		t.inject(t.st.Step, g.learn)
	}
	rates, err := spikeRates(t.net, g.mg)
	if err != nil {
		return StepInfo{}, err
	}
	if !finite(loss) && cfg.EarlyStop.StopOnNonFinite {
		_ = g.zeroGrads()
		return StepInfo{}, fmt.Errorf("training loss is %v at step %d: the run diverged; lower train.lr, set train.clip_norm, or enable train.loss_scale (or set train.early_stop.stop_on_non_finite false to skip such steps)",
			loss, t.st.Step+1)
	}
	lr := r.lr(stg)

	t.dirty = true
	batchAcc, err := t.st.Train.add(loss, b.Size, out, feed.Labels)
	if err != nil {
		return StepInfo{}, err
	}
	for mod, layers := range rates {
		if t.st.Spikes[mod] == nil {
			t.st.Spikes[mod] = map[string]jfloat{}
		}
		for layer, v := range layers {
			t.st.Spikes[mod][layer] += jfloat(v * float64(b.Size))
		}
	}
	t.st.SpikeWeight += jfloat(b.Size)
	if !finite(loss) {
		t.st.WindowBad = true
	}
	info := StepInfo{Epoch: t.st.Epoch + 1, Batches: r.nb, Stage: stg.name, Samples: b.Size,
		Loss: loss, Accuracy: batchAcc, LR: lr, LossScale: scale}
	if err := r.closeBatch(g, w, lr, &info); err != nil {
		return StepInfo{}, err
	}

	took := time.Since(start)
	r.samples += b.Size
	r.busy += took
	if took > 0 {
		info.SamplesPerSec = float64(b.Size) / took.Seconds()
	}
	return info, nil
}

// closeBatch counts a trained micro-batch of weight w into the window
// and, when it closes the window, steps the optimiser.
func (r *run) closeBatch(g *trainGraph, w, lr float64, info *StepInfo) error {
	t := r.t
	if t.cfg.AccumSteps > 1 {
		if err := t.accumulate(g.learn); err != nil {
			return err
		}
	}
	t.st.WindowWeight += jfloat(w)
	t.st.WindowBatches++
	t.st.Batch++
	info.Batch = t.st.Batch
	if t.st.WindowBatches == t.cfg.AccumSteps || t.st.Batch == r.nb {
		info.Updated = true
		var err error
		if info.GradNorm, info.Skipped, err = r.step(g, lr); err != nil {
			return err
		}
	}
	info.Step = t.st.Step
	t.dirty = false
	t.progressed = true
	return nil
}

// emptyShard is batch for a rank whose shard of the last global batch is
// empty: no forward pass, zero gradients, but its part in the step's
// all-reduce.
func (r *run) emptyShard(stg stage) (StepInfo, error) {
	t := r.t
	g, err := t.graph(t.localBatch())
	if err != nil {
		return StepInfo{}, err
	}
	lr := r.lr(stg)
	t.dirty = true
	info := StepInfo{Epoch: t.st.Epoch + 1, Batches: r.nb, Stage: stg.name, LR: lr, LossScale: t.scaler.Scale}
	if err := r.closeBatch(g, 0, lr, &info); err != nil {
		return StepInfo{}, err
	}
	return info, nil
}

// accumulate adds the graph's gradients into the window sums and zeroes
// them (the window may mix graphs of two batch sizes, each with its own
// gradient tensors).
func (t *Trainer) accumulate(learn G.Nodes) error {
	if t.acc == nil {
		t.acc = map[string][]float64{}
	}
	for _, n := range learn {
		_, gr, err := valueAndGrad(n)
		if err != nil {
			return err
		}
		v := asFloat64View(gr.Data())
		a := t.acc[n.Name()]
		if len(a) != v.len() {
			a = make([]float64, v.len())
			t.acc[n.Name()] = a
		}
		for i := range a {
			a[i] += v.get(i)
		}
		gr.Zero()
	}
	return nil
}

// step closes the accumulation window: averages (and unscales) the
// gradients, skips on non-finite values, clips, and updates each learning
// rate group. It returns the gradient norm before clipping.
func (r *run) step(g *trainGraph, lr float64) (norm float64, skipped bool, err error) {
	t := r.t
	if g.deviceGrads {
		return r.stepOnDevice(g, lr)
	}
	if t.cfg.AccumSteps > 1 {
		for _, n := range g.learn {
			_, gr, err := valueAndGrad(n)
			if err != nil {
				return 0, false, err
			}
			a := t.acc[n.Name()]
			v := asFloat64View(gr.Data())
			for i := range a {
				v.set(i, a[i])
				a[i] = 0
			}
		}
	}
	if t.comm.Size() > 1 {
		if err := t.reduceGrads(g.learn); err != nil {
			return 0, false, err
		}
	}
	ok := false
	if t.st.WindowBad {
		err = ZeroGrads(g.learn)
	} else {
		ok, err = t.scaler.Unscale(g.learn, float64(t.st.WindowWeight))
	}
	if err != nil {
		return 0, false, err
	}
	if ok {
		if norm, err = ClipGlobalNorm(g.learn, t.cfg.ClipNorm); err != nil {
			return 0, false, err
		}
		if err = t.update(g, lr); err != nil {
			return 0, false, err
		}
	}
	return norm, !ok, t.closeWindow(ok)
}

// stepOnDevice is step for a window whose gradients stayed on the device
// (trainGraph.deviceGrads: Adam on a device, no accumulation, one
// process): only the per-tensor sums of squares come to the host. The
// gradients are unscaled by 1/(Scale·window weight), checked for
// non-finite values and clipped to ClipNorm by one scaling on the device
// (the CPU path's ScaleGrads, GlobalNorm and ClipGlobalNorm, with the
// squares summed in float32 per tensor), then each learning-rate group
// takes its Adam step there.
func (r *run) stepOnDevice(g *trainGraph, lr float64) (norm float64, skipped bool, err error) {
	t := r.t
	ok := false
	if t.st.WindowBad {
		err = g.exec.ZeroGrads()
	} else {
		w := float64(t.st.WindowWeight)
		if w <= 0 {
			w = 1
		}
		s := 1 / (t.scaler.Scale * w)
		var sq float64
		if sq, err = g.exec.GradSumSquares(s); err != nil {
			return 0, false, err
		}
		if ok = t.scaler.observe(!math.IsNaN(sq) && !math.IsInf(sq, 0)); !ok {
			err = g.exec.ZeroGrads()
		} else {
			norm = math.Sqrt(sq)
			if c := t.cfg.ClipNorm; c > 0 && norm > c {
				s *= c / (norm + 1e-6)
			}
			err = t.updateOnDevice(g, s, lr)
		}
	}
	if err != nil {
		return 0, false, err
	}
	return norm, !ok, t.closeWindow(ok)
}

// closeWindow counts a window's step (skipped unless ok) and starts the
// next window. A non-finite gradient without loss scaling ends the run
// when StopOnNonFinite asks for it.
func (t *Trainer) closeWindow(ok bool) error {
	if !ok {
		t.st.Skipped++
	}
	t.st.Step++
	bad := !t.st.WindowBad && !ok
	t.st.WindowWeight, t.st.WindowBatches, t.st.WindowBad = 0, 0, false
	if bad && !t.cfg.LossScale.Enabled && t.cfg.EarlyStop.StopOnNonFinite {
		// Without loss scaling nothing can overflow: a non-finite gradient
		// with a finite loss is bad input or a numerical fault.
		return fmt.Errorf("gradients are not finite at step %d although the loss is: check the inputs for NaN/Inf, lower train.lr or set train.clip_norm (or set train.early_stop.stop_on_non_finite false to skip such steps)", t.st.Step)
	}
	return nil
}

// spikeRates reads every modality's spiking-layer firing rates from a run
// graph: modality → layer path → rate.
func spikeRates(net *model.Network, mg *model.Graph) (map[string]map[string]float64, error) {
	out := map[string]map[string]float64{}
	for _, name := range net.Names() {
		enc := mg.Encoders[name]
		if enc == nil || len(enc.Stats) == 0 {
			continue
		}
		tel, err := model.SpikeTelemetry(enc)
		if err != nil {
			return nil, fmt.Errorf("modality %q: %w", name, err)
		}
		out[name] = map[string]float64{}
		for _, l := range tel.Layers {
			out[name][l.Layer] = l.Rate
		}
	}
	return out, nil
}

// endEpoch validates, updates early stopping, writes the epoch line and
// checkpoints, and calls the hooks.
func (r *run) endEpoch(stg stage, start time.Time) error {
	t := r.t
	e := t.st.Epoch
	if err := r.reduceEpoch(); err != nil {
		return err
	}
	// Modality weights, caption generation and checkpoints read the
	// store's tensors.
	if err := t.syncHost(); err != nil {
		return fmt.Errorf("device: %w", err)
	}
	trainM := t.st.Train.metrics()
	var val *Metrics
	if r.val != nil {
		acc, err := t.ev.run(r.ctx, r.val, "")
		if err != nil {
			return fmt.Errorf("validation after epoch %d: %w", e+1, err)
		}
		m := acc.metrics()
		val = &m
		if t.cfg.EarlyStop.StopOnNonFinite && !finite(m.Loss) {
			return fmt.Errorf("validation loss is %v after epoch %d: the run diverged; lower train.lr or set train.clip_norm", m.Loss, e+1)
		}
	}
	weights, err := t.net.ModalityWeights(t.store)
	if err != nil {
		return err
	}
	info := EpochInfo{Epoch: e + 1, Epochs: t.cfg.Epochs, Stage: stg.name, Step: t.st.Step, Train: trainM, Val: val,
		LR: r.lr(stg), LossScale: t.scaler.Scale, SkippedSteps: t.st.Skipped, Seconds: time.Since(start).Seconds(),
		ModalityWeights: weights, Monitor: t.st.Stop.Monitor}
	if r.busy > 0 {
		info.SamplesPerSec = float64(r.samples) / r.busy.Seconds()
	}
	info.SpikeRates, info.ModalitySpikeRates = t.st.spikeMeans()

	t.dirty = true
	info.MonitorValue = t.st.Stop.value(trainM, val)
	info.Improved, info.Stop = t.st.Stop.update(info.MonitorValue, e+1)
	info.Best, info.BestEpoch = float64(t.st.Stop.Best), t.st.Stop.BestEpoch
	t.st.Epoch++
	t.st.Batch = 0
	t.st.Train = nil
	t.st.Spikes, t.st.SpikeWeight = nil, 0
	t.st.Done = info.Stop
	t.history = append(t.history, info)
	t.dirty = false

	if t.mlog != nil {
		if err := t.mlog.epoch(info); err != nil {
			return err
		}
	}
	if t.writes() {
		if _, err := t.save(LastCheckpoint); err != nil {
			return err
		}
		if info.Improved {
			if _, err := t.save(BestCheckpoint); err != nil {
				return err
			}
		}
		if n := t.cfg.CheckpointEvery; n > 0 && (e+1)%n == 0 {
			if _, err := t.save(epochCheckpoint(e + 1)); err != nil {
				return err
			}
			if err := rotateEpochCheckpoints(t.opts.RunDir, t.cfg.KeepLast); err != nil {
				return err
			}
		}
	}
	return t.hooks.epochEnd(info)
}
