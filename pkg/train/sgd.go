package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// SGDConfig holds SGD's hyper-parameters (torch.optim.SGD semantics).
type SGDConfig struct {
	LR          float64
	Momentum    float64
	Nesterov    bool
	WeightDecay float64
}

// SGD is stochastic gradient descent with optional (Nesterov) momentum,
// updating the store in place.
type SGD struct {
	cfg SGDConfig
	buf map[string][]float64
}

// NewSGD validates cfg and returns the optimiser.
func NewSGD(cfg SGDConfig) (*SGD, error) {
	if cfg.LR <= 0 || cfg.Momentum < 0 || cfg.Momentum >= 1 || cfg.WeightDecay < 0 {
		return nil, fmt.Errorf("sgd: invalid hyper-parameters %+v (need lr > 0, 0 ≤ momentum < 1, weight_decay ≥ 0)", cfg)
	}
	if cfg.Nesterov && cfg.Momentum == 0 {
		return nil, fmt.Errorf("sgd: nesterov needs momentum > 0")
	}
	return &SGD{cfg: cfg, buf: map[string][]float64{}}, nil
}

// SetLR changes the learning rate.
func (s *SGD) SetLR(lr float64) { s.cfg.LR = lr }

// Step updates every node from its gradient and zeroes the gradient.
func (s *SGD) Step(nodes G.Nodes) error {
	for _, n := range nodes {
		w, g, err := valueAndGrad(n)
		if err != nil {
			return err
		}
		ws, gs := asFloat64View(w.Data()), asFloat64View(g.Data())
		b := s.buf[n.Name()]
		if s.cfg.Momentum > 0 && len(b) != ws.len() {
			b = nil
		}
		first := b == nil
		if s.cfg.Momentum > 0 && first {
			b = make([]float64, ws.len())
			s.buf[n.Name()] = b
		}
		for i := 0; i < ws.len(); i++ {
			d := gs.get(i) + s.cfg.WeightDecay*ws.get(i)
			if s.cfg.Momentum > 0 {
				if first {
					b[i] = d
				} else {
					b[i] = s.cfg.Momentum*b[i] + d
				}
				if s.cfg.Nesterov {
					d += s.cfg.Momentum * b[i]
				} else {
					d = b[i]
				}
			}
			ws.set(i, ws.get(i)-s.cfg.LR*d)
		}
		g.Zero()
	}
	return nil
}

// view reads and writes a float32 or float64 slice as float64.
type view struct {
	f32 []float32
	f64 []float64
}

func asFloat64View(data any) view {
	switch d := data.(type) {
	case []float32:
		return view{f32: d}
	case []float64:
		return view{f64: d}
	}
	return view{}
}

func (v view) len() int {
	if v.f32 != nil {
		return len(v.f32)
	}
	return len(v.f64)
}

func (v view) get(i int) float64 {
	if v.f32 != nil {
		return float64(v.f32[i])
	}
	return v.f64[i]
}

func (v view) set(i int, x float64) {
	if v.f32 != nil {
		v.f32[i] = float32(x)
		return
	}
	v.f64[i] = x
}
