package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// trainGraph is the network built in training mode for one batch size,
// with the loss multiplied by a scalar input "loss_scale" (the loss scale
// S times the batch's accumulation weight) before differentiation, and a
// machine that binds gradients to the store's unfrozen parameters.
type trainGraph struct {
	g  *G.ExprGraph
	mg *model.Graph
	vm G.VM
	// exec is vm as a device executor (nil on the CPU); stats are the
	// spike-statistics nodes it must read back after a run.
	exec  Executor
	stats G.Nodes
	learn G.Nodes
	scale *G.Node
	noisy bool // the graph has random ops (dropout, modality dropout)
	// groups partitions learn by learning-rate multiplier (set by the
	// trainer).
	groups []lrGroup
	// deviceGrads keeps the gradients on the device after a run (set by
	// the trainer when the whole step can run there: see
	// Trainer.stepOnDevice); the host's w.Grad() then stays zero.
	deviceGrads bool
}

// buildTrainGraph builds the training graph for batch samples, seeding
// its random ops from noiseSeed, run by dev (nil: vm.Machine on the CPU).
func buildTrainGraph(net *model.Network, store *nn.Store, batch int, noiseSeed int64, dev Device) (*trainGraph, error) {
	g := G.NewGraph()
	opts := nn.CtxOptions{Train: true, NoiseSeed: noiseSeed}
	c := nn.NewCtx(g, store, opts)
	mg, err := net.Build(c, batch)
	if err != nil {
		return nil, err
	}
	// A fresh build's first noise seed equals the next one of c exactly
	// when the build drew none: that tells whether the graph is random.
	probe := nn.NewCtx(G.NewGraph(), store, opts).NoiseSeed()
	tg := &trainGraph{g: g, mg: mg, learn: c.Learnables(), noisy: c.NoiseSeed() != probe}
	if len(tg.learn) == 0 {
		return nil, fmt.Errorf("no trainable parameter left: every parameter is frozen")
	}
	err = nn.Catch("training graph", func() error {
		tg.scale = G.NewScalar(g, store.Dtype(), G.WithName("loss_scale"))
		scaled, err := G.Mul(mg.Loss, tg.scale)
		if err != nil {
			return err
		}
		_, err = G.Grad(scaled, tg.learn...)
		return err
	})
	if err != nil {
		return nil, err
	}
	if tg.vm, tg.exec, err = newExecutor(dev, g, mg, tg.learn, false); err != nil {
		return nil, err
	}
	tg.stats = statNodes(mg)
	return tg, nil
}

// run binds feed, runs forward and backward with the loss multiplied by
// scale (gradients add into the bound ones: DESIGN.md fact 4), and returns
// the unscaled mean loss and the head's output as float64. On a device
// the spike statistics are read back and the gradients moved into the
// host's w.Grad() (the device accumulators zeroed), so everything after
// the run — accumulation windows, unscaling, clipping — is the CPU path's.
func (tg *trainGraph) run(feed model.Feed, scale float64) (loss float64, out []float64, err error) {
	if err := tg.mg.Bind(feed); err != nil {
		return 0, nil, err
	}
	var s any = scale
	if tg.scale.Dtype() == tensor.Float32 {
		s = float32(scale)
	}
	if err := G.Let(tg.scale, s); err != nil {
		return 0, nil, err
	}
	defer tg.vm.Reset()
	if err := tg.vm.RunAll(); err != nil {
		return 0, nil, err
	}
	if err := tg.gradsToHost(); err != nil {
		return 0, nil, err
	}
	return readLossOutput(tg.mg)
}

// gradsToHost reads a device run's spike statistics and, unless they stay
// on the device (deviceGrads), moves its gradients into the host's
// w.Grad(), zeroing the device accumulators (nothing on the CPU). The host gradients are zero before every run (the
// trainer zeroes them after accumulating or stepping), so the download
// equals the CPU's accumulation into them.
func (tg *trainGraph) gradsToHost() error {
	x := tg.exec
	if x == nil {
		return nil
	}
	if err := x.Read(tg.stats...); err != nil {
		return err
	}
	if tg.deviceGrads {
		return nil
	}
	if err := x.DownloadGrads(); err != nil {
		return err
	}
	return x.ZeroGrads()
}

// zeroGrads discards the run's gradients: the host's, and the device's
// when they stay there.
func (tg *trainGraph) zeroGrads() error {
	if tg.deviceGrads {
		if err := tg.exec.ZeroGrads(); err != nil {
			return err
		}
	}
	return ZeroGrads(tg.learn)
}

func (tg *trainGraph) close() {
	if tg != nil && tg.vm != nil {
		tg.vm.Close()
	}
}

// evalGraph is the network built in evaluation mode for one batch size.
type evalGraph struct {
	mg *model.Graph
	vm G.VM
}

func buildEvalGraph(net *model.Network, store *nn.Store, batch int, dev Device) (*evalGraph, error) {
	g := G.NewGraph()
	mg, err := net.Build(nn.NewCtx(g, store, nn.CtxOptions{}), batch)
	if err != nil {
		return nil, err
	}
	m, _, err := newExecutor(dev, g, mg, nil, true)
	if err != nil {
		return nil, err
	}
	return &evalGraph{mg: mg, vm: m}, nil
}

func (eg *evalGraph) run(feed model.Feed) (loss float64, out []float64, err error) {
	if err := eg.mg.Bind(feed); err != nil {
		return 0, nil, err
	}
	defer eg.vm.Reset()
	if err := eg.vm.RunAll(); err != nil {
		return 0, nil, err
	}
	return readLossOutput(eg.mg)
}

func (eg *evalGraph) close() {
	if eg != nil && eg.vm != nil {
		eg.vm.Close()
	}
}

func readLossOutput(mg *model.Graph) (float64, []float64, error) {
	loss, err := nn.ScalarValue(mg.Loss)
	if err != nil {
		return 0, nil, fmt.Errorf("loss: %w", err)
	}
	ov, ok := mg.Output.Value().(tensor.Tensor)
	if !ok {
		return 0, nil, fmt.Errorf("output has no value after the run")
	}
	out, err := nn.ToFloat64(ov)
	if err != nil {
		return 0, nil, fmt.Errorf("output: %w", err)
	}
	return loss, out, nil
}

// noiseSeed derives the noise seed of the training graph for (seed, epoch,
// batch size) with a SplitMix64-style mix, so epochs and graph sizes draw
// independent dropout streams.
func noiseSeed(seed int64, epoch, size int) int64 {
	h := uint64(seed)
	for _, v := range []uint64{uint64(epoch), uint64(size)} {
		h ^= v + 0x9e3779b97f4a7c15 + (h << 6) + (h >> 2)
		h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9
		h = (h ^ (h >> 27)) * 0x94d049bb133111eb
		h ^= h >> 31
	}
	return int64(h >> 1)
}
