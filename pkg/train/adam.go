package train

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// AdamConfig holds Adam's hyper-parameters. Zero values take the defaults
// of Kingma & Ba (2015) and torch.optim.Adam: LR 1e-3, Beta1 0.9,
// Beta2 0.999, Eps 1e-8, no weight decay.
type AdamConfig struct {
	LR, Beta1, Beta2, Eps float64
	// WeightDecay adds WeightDecay·w to the gradient (L2, torch.optim.Adam);
	// with Decoupled it is AdamW's decoupled decay w -= LR·WeightDecay·w.
	WeightDecay float64
	Decoupled   bool
}

// Adam updates parameters in place: no tensor is allocated after the first
// step of each parameter (Gorgonia's own Adam clones every step: DESIGN.md
// fact 7). Moments are keyed by parameter name, so one Adam serves every
// graph built on the same store.
type Adam struct {
	cfg  AdamConfig
	step map[string]int
	m, v map[string][]float64
}

// NewAdam returns an Adam optimiser; invalid hyper-parameters are errors.
func NewAdam(cfg AdamConfig) (*Adam, error) {
	if cfg.LR == 0 {
		cfg.LR = 1e-3
	}
	if cfg.Beta1 == 0 {
		cfg.Beta1 = 0.9
	}
	if cfg.Beta2 == 0 {
		cfg.Beta2 = 0.999
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-8
	}
	if cfg.LR < 0 || cfg.Beta1 < 0 || cfg.Beta1 >= 1 || cfg.Beta2 < 0 || cfg.Beta2 >= 1 || cfg.Eps < 0 || cfg.WeightDecay < 0 {
		return nil, fmt.Errorf("adam: invalid hyper-parameters %+v (need lr ≥ 0, 0 ≤ beta < 1, eps ≥ 0, weight_decay ≥ 0)", cfg)
	}
	return &Adam{cfg: cfg, step: map[string]int{}, m: map[string][]float64{}, v: map[string][]float64{}}, nil
}

// Config returns the hyper-parameters with the defaults filled (what a
// device's Adam step needs to update exactly as this one).
func (a *Adam) Config() AdamConfig { return a.cfg }

// SetLR changes the learning rate (schedules call it before each step).
func (a *Adam) SetLR(lr float64) { a.cfg.LR = lr }

// Step applies one update to every node from its accumulated gradient and
// zeroes the gradient (Gorgonia adds into bound gradients on every run:
// DESIGN.md fact 4).
func (a *Adam) Step(nodes G.Nodes) error {
	for _, n := range nodes {
		w, g, err := valueAndGrad(n)
		if err != nil {
			return err
		}
		switch w.Dtype() {
		case tensor.Float32:
			update(a, n.Name(), nn.Slice[float32](w), nn.Slice[float32](g))
		case tensor.Float64:
			update(a, n.Name(), nn.Slice[float64](w), nn.Slice[float64](g))
		default:
			return fmt.Errorf("adam: %s has unsupported dtype %v", n.Name(), w.Dtype())
		}
		g.Zero()
	}
	return nil
}

func (a *Adam) moments(name string, n int) (m, v []float64, t int) {
	m, ok := a.m[name]
	if !ok || len(m) != n {
		m = make([]float64, n)
		a.m[name] = m
		a.v[name] = make([]float64, n)
		a.step[name] = 0
	}
	a.step[name]++
	return m, a.v[name], a.step[name]
}

// update applies one Adam step to w from g with its moments, in float64
// arithmetic whatever w's dtype, split over the cores for large tensors.
// The update is torch.optim.Adam's: w −= (lr/bc₁)·m / (√v/√bc₂ + ε).
func update[T nn.Float](a *Adam, name string, w, g []T) {
	m, v, t := a.moments(name, len(w))
	c := a.cfg
	k := adamConsts{
		b1: c.Beta1, b2: c.Beta2, eps: c.Eps,
		step:  c.LR / (1 - math.Pow(c.Beta1, float64(t))),
		isbc2: 1 / math.Sqrt(1-math.Pow(c.Beta2, float64(t))),
	}
	switch {
	case c.WeightDecay == 0:
	case c.Decoupled:
		k.shrink = 1 - c.LR*c.WeightDecay
	default:
		k.l2 = c.WeightDecay
	}
	nn.ParallelRange(len(w), func(lo, hi int) { adamRange(k, w[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]) })
}

// adamConsts are one step's per-tensor constants: the bias-corrected step
// size, 1/√bc₂, and weight decay as a decoupled shrink factor (AdamW; 0 if
// none) or an L2 term added to the gradient.
type adamConsts struct {
	b1, b2, eps, step, isbc2 float64
	shrink, l2               float64
}

func adamRange[T nn.Float](k adamConsts, w, g []T, m, v []float64) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	for i := range w {
		wi, gi := float64(w[i]), float64(g[i])
		if k.shrink != 0 {
			wi *= k.shrink
		}
		gi += k.l2 * wi
		mi := k.b1*m[i] + (1-k.b1)*gi
		vi := k.b2*v[i] + (1-k.b2)*gi*gi
		m[i], v[i] = mi, vi
		w[i] = T(wi - k.step*mi/(math.Sqrt(vi)*k.isbc2+k.eps))
	}
}

// valueAndGrad returns a parameter node's value and gradient tensors.
func valueAndGrad(n *G.Node) (w, g *tensor.Dense, err error) {
	w, ok := n.Value().(*tensor.Dense)
	if !ok {
		return nil, nil, fmt.Errorf("%s: value is %T, want a dense tensor", n.Name(), n.Value())
	}
	gv, err := n.Grad()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: no gradient (was it bound with BindDualValues?): %w", n.Name(), err)
	}
	g, ok = gv.(*tensor.Dense)
	if !ok {
		return nil, nil, fmt.Errorf("%s: gradient is %T, want a dense tensor", n.Name(), gv)
	}
	return w, g, nil
}

// ZeroGrads zeroes the accumulated gradients of nodes (a skipped step, or
// the start of an accumulation window).
func ZeroGrads(nodes G.Nodes) error {
	for _, n := range nodes {
		_, g, err := valueAndGrad(n)
		if err != nil {
			return err
		}
		g.Zero()
	}
	return nil
}
