package cuda

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
)

// AdamConfig holds Adam's hyper-parameters with the fields of
// train.AdamConfig in the same order, so the trainer converts its own with
// cuda.AdamConfig(cfg). Values are used as given: pass the configuration
// after train.NewAdam filled the defaults, with the learning rate of the
// step (schedules, per-group multipliers).
type AdamConfig struct {
	LR, Beta1, Beta2, Eps float64
	// WeightDecay adds WeightDecay·w to the gradient (L2); with Decoupled
	// it is AdamW's w -= LR·WeightDecay·w.
	WeightDecay float64
	Decoupled   bool
}

// adamArgs turns one step t (from 1) of cfg into the scalar arguments of
// lsf_adam: the bias corrections are folded into the step size and eps,
// lr·(m/bc1)/(√(v/bc2)+eps) = (lr·√bc2/bc1)·m/(√v+eps·√bc2), exactly
// train.Adam's update.
func adamArgs(cfg AdamConfig, t int) (lr, eps, wd, keep float32) {
	bc1 := 1 - math.Pow(cfg.Beta1, float64(t))
	bc2 := 1 - math.Pow(cfg.Beta2, float64(t))
	lr = float32(cfg.LR * math.Sqrt(bc2) / bc1)
	eps = float32(cfg.Eps * math.Sqrt(bc2))
	keep = 1
	if cfg.Decoupled {
		keep = float32(1 - cfg.LR*cfg.WeightDecay)
	} else {
		wd = float32(cfg.WeightDecay)
	}
	return lr, eps, wd, keep
}

// AdamStep applies one Adam update on the device to each of nodes (all of
// the machine's learnables when empty) from its accumulated gradient, and
// zeroes the gradient, as train.Adam.Step does on the host. Moments and
// step counts live in the Session, per parameter, so machines of one
// session (batch sizes) share them. Host parameter values are stale until
// Session.Download.
func (m *Machine) AdamStep(cfg AdamConfig, nodes ...*G.Node) error {
	if cfg.Beta1 < 0 || cfg.Beta1 >= 1 || cfg.Beta2 < 0 || cfg.Beta2 >= 1 {
		return fmt.Errorf("cuda: adam: betas %g, %g outside [0, 1)", cfg.Beta1, cfg.Beta2)
	}
	return m.eachGrad(nodes, func(a *gradAcc) error {
		p := a.p
		if err := m.moments(p); err != nil {
			return err
		}
		p.t++
		lr, eps, wd, keep := adamArgs(cfg, p.t)
		n := p.buf.N
		if err := launch1D(m.dev, "lsf_adam", n, p.buf, a.acc, p.m, p.v, n, lr, float32(cfg.Beta1), float32(cfg.Beta2), eps, wd, keep); err != nil {
			return fmt.Errorf("cuda: adam step of %s: %w", a.of.Name(), err)
		}
		return nil
	})
}

// moments allocates p's zeroed Adam moments on first use.
func (m *Machine) moments(p *param) error {
	if p.m.N > 0 {
		return nil
	}
	var err error
	if p.m, err = m.dev.Alloc(p.buf.N); err != nil {
		return err
	}
	p.v, err = m.dev.Alloc(p.buf.N)
	return err
}

// paramOf returns the resident parameter of a node of the machine's graph.
func (m *Machine) paramOf(w *G.Node) (*param, error) {
	s := m.slots[w]
	if s == nil || s.param == nil {
		return nil, fmt.Errorf("cuda: %s is not a device-resident parameter of this machine", w.Name())
	}
	return s.param, nil
}

// AdamState returns w's Adam moments and step count as the device holds
// them (zeros and 0 before the first step), for checkpoints: train.Adam
// saves the same three per parameter name.
func (m *Machine) AdamState(w *G.Node) (mom, vel []float32, step int, err error) {
	p, err := m.paramOf(w)
	if err != nil {
		return nil, nil, 0, err
	}
	mom, vel = make([]float32, p.buf.N), make([]float32, p.buf.N)
	if p.m.N > 0 {
		if err := m.dev.downloadAsync(mom, p.m); err != nil {
			return nil, nil, 0, err
		}
		if err := download(m.dev, vel, p.v); err != nil {
			return nil, nil, 0, err
		}
	}
	return mom, vel, p.t, nil
}

// SetAdamState restores w's Adam moments and step count (a resumed run).
func (m *Machine) SetAdamState(w *G.Node, mom, vel []float32, step int) error {
	p, err := m.paramOf(w)
	if err != nil {
		return err
	}
	if len(mom) != p.buf.N || len(vel) != p.buf.N || step < 0 {
		return fmt.Errorf("cuda: adam state of %s: %d and %d moments at step %d for %d values", w.Name(), len(mom), len(vel), step, p.buf.N)
	}
	if err := m.moments(p); err != nil {
		return err
	}
	if err := m.dev.upload(p.m, mom); err != nil {
		return err
	}
	if err := m.dev.upload(p.v, vel); err != nil {
		return err
	}
	p.t = step
	return nil
}
