package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/vm"
)

// Device runs the trainer's graphs on an accelerator instead of the CPU
// executor (vm.Machine). pkg/train knows it only through this interface,
// so the default binary links no GPU code; pkg/cuda's TrainDevice
// implements it on a CUDA session.
//
// A device keeps the parameters (and batch-norm running statistics)
// resident, shared by every executor it built over the same store
// tensors: their host tensors are stale while it trains them. The trainer
// calls Download before the host reads weights (checkpoints, the end of
// an epoch, the end of Fit) and Upload after it changed them (a restored
// checkpoint, a host optimiser step).
type Device interface {
	// NewExecutor builds the executor of g. learn are the learnables whose
	// gradients accumulate (G.Grad already added the gradient nodes);
	// fetch are the nodes whose values the host reads after every run (the
	// loss and the model output); eval selects evaluation mode (learn is
	// then empty).
	NewExecutor(g *G.ExprGraph, learn, fetch G.Nodes, eval bool) (Executor, error)
	// Download copies the resident parameters into their host tensors.
	Download() error
	// Upload copies the host tensors of the resident parameters to the
	// device.
	Upload() error
}

// Executor is a device's graph executor: G.VM, plus the gradient and
// optimiser operations the trainer needs. Gradients accumulate on the
// device after every RunAll; w.Grad() holds them after DownloadGrads.
type Executor interface {
	G.VM
	// Read downloads the current values of nodes and binds them on the
	// host (spike statistics, attention maps).
	Read(nodes ...*G.Node) error
	// DownloadGrads copies the accumulated gradients into w.Grad().
	DownloadGrads() error
	// UploadGrads sends w.Grad() back to the device accumulators.
	UploadGrads() error
	// ZeroGrads and ScaleGrads act on the device accumulators of nodes
	// (all learnables when empty).
	ZeroGrads(nodes ...*G.Node) error
	ScaleGrads(s float64, nodes ...*G.Node) error
	// GradSumSquares returns Σ (s·g)² over every element of every
	// learnable's device gradient (the squared global norm after scaling
	// by s; non-finite when a gradient is), without downloading them.
	GradSumSquares(s float64) (float64, error)
	// AdamStep applies one Adam update (cfg as given, defaults filled) to
	// nodes from their device gradients and zeroes those gradients.
	AdamStep(cfg AdamConfig, nodes ...*G.Node) error
	// AdamState and SetAdamState read and restore a learnable's Adam
	// moments and step count (zeros and 0 before its first step).
	AdamState(w *G.Node) (m, v []float32, step int, err error)
	SetAdamState(w *G.Node, m, v []float32, step int) error
}

// newExecutor returns dev's executor for g, or vm.Machine exactly as the
// CPU path always built it when dev is nil (exec is then nil).
func newExecutor(dev Device, g *G.ExprGraph, mg *model.Graph, learn G.Nodes, eval bool) (G.VM, Executor, error) {
	if dev == nil {
		var m *vm.Machine
		var err error
		if eval {
			m, err = vm.New(g, nil, vm.EvalMode())
		} else {
			m, err = vm.New(g, learn)
		}
		if err != nil {
			return nil, nil, err
		}
		return m, nil, nil
	}
	x, err := dev.NewExecutor(g, learn, G.Nodes{mg.Loss, mg.Output}, eval)
	if err != nil {
		return nil, nil, fmt.Errorf("device: %w", err)
	}
	return x, x, nil
}

// statNodes are the spike-statistics nodes of mg's encoders (read from a
// device after a run, before model.SpikeTelemetry).
func statNodes(mg *model.Graph) G.Nodes {
	var out G.Nodes
	for _, enc := range mg.Encoders {
		if enc != nil {
			out = append(out, enc.Stats...)
		}
	}
	return out
}

// syncHost brings the host up to date with the device: weights into the
// store's tensors and the device's Adam moments into the host optimiser
// (whose State a checkpoint writes). Nothing without a device.
func (t *Trainer) syncHost() error {
	if t.opts.Device == nil {
		return nil
	}
	if err := t.opts.Device.Download(); err != nil {
		return err
	}
	for _, g := range t.graphs {
		if err := t.pullAdam(g); err != nil {
			return err
		}
	}
	return nil
}

// pullAdam copies the device's Adam moments of g's learnables into the
// host Adam, in the entries its State writes ("adam/m/<param>", …), so
// checkpoints of both paths load in either.
func (t *Trainer) pullAdam(g *trainGraph) error {
	a, ok := t.opt.(*Adam)
	if !ok || g.exec == nil {
		return nil
	}
	for _, w := range g.learn {
		m, v, step, err := g.exec.AdamState(w)
		if err != nil {
			return err
		}
		if step == 0 {
			continue // never stepped: the host Adam has no entry either
		}
		name := w.Name()
		a.m[name], a.v[name], a.step[name] = widen(m), widen(v), step
	}
	return nil
}

// pushAdam sends the host Adam's moments (a resumed run's) to the device
// for the learnables of g not sent yet; later the device's are newer.
func (t *Trainer) pushAdam(g *trainGraph) error {
	a, ok := t.opt.(*Adam)
	if !ok || g.exec == nil {
		return nil
	}
	if t.pushed == nil {
		t.pushed = map[string]bool{}
	}
	for _, w := range g.learn {
		name := w.Name()
		if t.pushed[name] {
			continue
		}
		t.pushed[name] = true
		m, okm := a.m[name]
		if !okm {
			continue
		}
		if err := g.exec.SetAdamState(w, narrow(m), narrow(a.v[name]), a.step[name]); err != nil {
			return fmt.Errorf("device: restoring the adam state of %s: %w", name, err)
		}
	}
	return nil
}

// updateOnDevice scales g's device gradients by s (unscaling and
// clipping) and steps each learning-rate group with Adam on the device at
// lr × its multiplier; a group with multiplier 0 (frozen) has its
// gradients zeroed instead. Every device gradient is zero afterwards.
func (t *Trainer) updateOnDevice(g *trainGraph, s, lr float64) error {
	adam := t.opt.(*Adam)
	if err := g.exec.ScaleGrads(s); err != nil {
		return err
	}
	for _, grp := range g.groups {
		if grp.mult == 0 {
			if err := g.exec.ZeroGrads(grp.nodes...); err != nil {
				return err
			}
			continue
		}
		cfg := adam.cfg
		cfg.LR = lr * grp.mult
		if err := g.exec.AdamStep(cfg, grp.nodes...); err != nil {
			return err
		}
	}
	return nil
}

// update steps each learning-rate group of g at lr × its multiplier from
// the host gradients (already unscaled and clipped), and leaves every
// gradient zero. On the CPU it is the host optimiser. With a device, Adam
// steps there (the host gradients uploaded first); another optimiser
// (SGD) steps on the host between a download and an upload of the
// weights.
func (t *Trainer) update(g *trainGraph, lr float64) error {
	adam, isAdam := t.opt.(*Adam)
	onDevice := g.exec != nil && isAdam
	hostRoundTrip := g.exec != nil && !isAdam
	if hostRoundTrip {
		if err := t.opts.Device.Download(); err != nil {
			return err
		}
	}
	for _, grp := range g.groups {
		if grp.mult == 0 {
			if err := ZeroGrads(grp.nodes); err != nil {
				return err
			}
		}
	}
	if onDevice {
		if err := g.exec.UploadGrads(); err != nil {
			return err
		}
	}
	for _, grp := range g.groups {
		if grp.mult == 0 {
			continue
		}
		if onDevice {
			cfg := adam.cfg
			cfg.LR = lr * grp.mult
			if err := g.exec.AdamStep(cfg, grp.nodes...); err != nil {
				return err
			}
			if err := ZeroGrads(grp.nodes); err != nil {
				return err
			}
			continue
		}
		t.opt.SetLR(lr * grp.mult)
		if err := t.opt.Step(grp.nodes); err != nil {
			return err
		}
	}
	if hostRoundTrip {
		return t.opts.Device.Upload()
	}
	return nil
}

// widen and narrow convert moments between the host Adam's float64 and
// the device's float32.
func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func narrow(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// checkDeviceDtype rejects a device run of a store that is not float32
// (the CUDA executor runs float32 graphs only) before anything is built.
func checkDeviceDtype(dev Device, dt tensor.Dtype) error {
	if dev != nil && dt != tensor.Float32 {
		return fmt.Errorf("train: the device runs float32 graphs only, the store is %v (set run.dtype float32 or use --device cpu)", dt)
	}
	return nil
}
