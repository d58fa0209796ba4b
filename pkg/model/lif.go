package model

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Reset mechanisms of a LIF neuron (LIFConfig.Reset).
const (
	// ResetSubtract: U_t = β·U_{t−1} + I_t − r_t·θ (snnTorch "subtract").
	ResetSubtract = "subtract"
	// ResetZero: U_t = β·(1 − r_t)·U_{t−1} + I_t (snnTorch "zero").
	ResetZero = "zero"
	// ResetNone: U_t = β·U_{t−1} + I_t.
	ResetNone = "none"
)

// Defaults of LIFConfig.
const (
	DefaultBeta      = 0.95
	DefaultThreshold = 1.0
)

// LIFConfig configures a layer of leaky integrate-and-fire neurons with
// snnTorch Leaky semantics (reset_delay=True). Per neuron, over steps
// t = 1..T with U_0 = 0:
//
//	r_t = H(U_{t−1} − θ)                       reset signal, detached (no gradient)
//	U_t = β·U_{t−1} + I_t − r_t·θ              subtract
//	U_t = β·(1 − r_t)·U_{t−1} + I_t            zero
//	U_t = β·U_{t−1} + I_t                      none
//	S_t = g·H(U_t − θ)                         H(x) = 1 if x > 0 else 0
//
// where g is 1, or a learnable per-neuron factor with GradedSpikes. The
// backward of H in S_t is the surrogate derivative (nn.Spike). The layer
// behaves identically in training and evaluation.
type LIFConfig struct {
	// Units is the number of neurons N (≥ 1).
	Units int
	// Beta is the membrane decay β in [0, 1]; 0 means DefaultBeta (0.95).
	// (A memoryless neuron is any tiny positive β.)
	Beta float64
	// Threshold is the firing threshold θ > 0; 0 means DefaultThreshold (1).
	Threshold float64
	// Reset is ResetSubtract (the default, ""), ResetZero or ResetNone.
	Reset string
	// LearnBeta makes β a trainable per-neuron parameter "beta" [N],
	// initialised to Beta and clamped to [0, 1] in the forward (the clamp
	// passes no gradient outside [0, 1], as torch.clamp).
	LearnBeta bool
	// LearnThreshold makes θ a trainable per-neuron parameter "threshold"
	// [N], initialised to Threshold. It receives gradient through U_t − θ and
	// the subtract reset term, never through the detached reset signal.
	LearnThreshold bool
	// GradedSpikes multiplies output spikes by a trainable per-neuron factor
	// "graded_spikes" [N] initialised to 1 (snnTorch graded_spikes_factor).
	// The reset signal stays binary.
	GradedSpikes bool
	// Surrogate selects the spike backward (zero value: fast_sigmoid, 25).
	Surrogate nn.Surrogate
}

// withDefaults returns the config with zero fields set to their defaults,
// or an error naming the bad field.
func (cfg LIFConfig) withDefaults() (LIFConfig, error) {
	if cfg.Units < 1 {
		return cfg, fmt.Errorf("units must be ≥ 1, got %d", cfg.Units)
	}
	if cfg.Beta == 0 {
		cfg.Beta = DefaultBeta
	}
	if !(cfg.Beta >= 0 && cfg.Beta <= 1) {
		return cfg, fmt.Errorf("beta must be in [0, 1], got %g", cfg.Beta)
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultThreshold
	}
	if !(cfg.Threshold > 0) || math.IsInf(cfg.Threshold, 0) {
		return cfg, fmt.Errorf("threshold must be a positive number, got %g", cfg.Threshold)
	}
	switch cfg.Reset {
	case "":
		cfg.Reset = ResetSubtract
	case ResetSubtract, ResetZero, ResetNone:
	default:
		return cfg, fmt.Errorf("reset must be subtract, zero or none, got %q", cfg.Reset)
	}
	s, err := cfg.Surrogate.Resolved()
	if err != nil {
		return cfg, err
	}
	cfg.Surrogate = s
	return cfg, nil
}

// LIF is a layer of leaky integrate-and-fire neurons (see LIFConfig).
type LIF struct {
	cfg LIFConfig
}

// NewLIF validates cfg and returns the layer.
func NewLIF(cfg LIFConfig) (*LIF, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("lif: %w", err)
	}
	return &LIF{cfg: c}, nil
}

// Config returns the layer's configuration with defaults filled in.
func (l *LIF) Config() LIFConfig { return l.cfg }

// LIFOutput holds what a LIF layer produced over T steps.
type LIFOutput struct {
	// Spikes are the output spikes S_t, T nodes of shape [B, N] (values 0/1,
	// or 0/g with graded spikes).
	Spikes []*G.Node
	// Membranes are the membrane potentials U_t, T nodes of shape [B, N].
	Membranes []*G.Node
	// Rate is the firing rate (1/T)·Σ_t S_t, shape [B, N]; differentiable.
	Rate *G.Node
}

// Forward runs the layer for steps ≥ 1 steps. currents holds the input
// current I_t, shape [B, N]: either one node, fed at every step (direct
// coding), or exactly steps nodes. Parameters (with the Learn*/Graded
// options) live under c's scope: "beta", "threshold", "graded_spikes".
func (l *LIF) Forward(c *nn.Ctx, currents []*G.Node, steps int) (*LIFOutput, error) {
	cfg := l.cfg
	if steps < 1 {
		return nil, c.Errorf("lif: steps (num_spike_steps) must be ≥ 1, got %d", steps)
	}
	if len(currents) != 1 && len(currents) != steps {
		return nil, c.Errorf("lif: got %d input currents for %d steps (want 1 or %d)", len(currents), steps, steps)
	}
	for i, cur := range currents {
		s := cur.Shape()
		if s.Dims() != 2 || s[1] != cfg.Units {
			return nil, c.Errorf("lif: input current %d has shape %v, want [batch, %d]", i, s, cfg.Units)
		}
		if !s.Eq(currents[0].Shape()) {
			return nil, c.Errorf("lif: input current %d has shape %v, current 0 has %v", i, s, currents[0].Shape())
		}
	}
	dt := c.Dtype()
	beta := neuronValue{val: cfg.Beta, dt: dt}
	if cfg.LearnBeta {
		p, err := c.Param("beta", []int{cfg.Units}, nn.Constant(cfg.Beta))
		if err != nil {
			return nil, err
		}
		if beta.node, err = clampUnit(p); err != nil {
			return nil, c.Errorf("lif: beta clamp: %v", err)
		}
	}
	theta := neuronValue{val: cfg.Threshold, dt: dt}
	if cfg.LearnThreshold {
		p, err := c.Param("threshold", []int{cfg.Units}, nn.Constant(cfg.Threshold))
		if err != nil {
			return nil, err
		}
		theta.node = p
	}
	var graded *G.Node
	if cfg.GradedSpikes {
		p, err := c.Param("graded_spikes", []int{cfg.Units}, nn.Ones())
		if err != nil {
			return nil, err
		}
		graded = p
	}

	out := &LIFOutput{}
	var mem, shift *G.Node // U_{t−1} and U_{t−1} − θ; nil before the first step (U_0 = 0)
	if theta.node != nil {
		// With a learnable θ, r_1 = H(0 − θ) is not known to be 0: build U_0.
		shape := currents[0].Shape()
		mem = G.NewTensor(c.Graph(), dt, 2, G.WithShape(shape...), G.WithName(c.Path()+".u0"), G.WithValue(nn.ZerosDense(dt, shape...)))
		var err error
		if shift, err = theta.subFrom(mem); err != nil {
			return nil, c.Errorf("lif: %v", err)
		}
	}
	var rateSum *G.Node
	for t := 0; t < steps; t++ {
		cur := currents[0]
		if len(currents) > 1 {
			cur = currents[t]
		}
		u, err := l.step(mem, shift, cur, beta, theta)
		if err != nil {
			return nil, c.Errorf("lif step %d: %v", t+1, err)
		}
		if shift, err = theta.subFrom(u); err != nil {
			return nil, c.Errorf("lif step %d: %v", t+1, err)
		}
		spk, err := nn.Spike(shift, cfg.Surrogate)
		if err != nil {
			return nil, c.Errorf("lif step %d: %v", t+1, err)
		}
		if graded != nil {
			if spk, err = G.BroadcastHadamardProd(spk, graded, nil, []byte{0}); err != nil {
				return nil, c.Errorf("lif step %d graded spikes: %v", t+1, err)
			}
		}
		mem = u
		out.Membranes = append(out.Membranes, u)
		out.Spikes = append(out.Spikes, spk)
		if rateSum == nil {
			rateSum = spk
		} else if rateSum, err = G.Add(rateSum, spk); err != nil {
			return nil, c.Errorf("lif rate: %v", err)
		}
	}
	rate, err := G.Mul(rateSum, scalarConst(dt, 1/float64(steps)))
	if err != nil {
		return nil, c.Errorf("lif rate: %v", err)
	}
	out.Rate = rate
	return out, nil
}

// step returns U_t from U_{t−1} (mem, nil meaning 0), U_{t−1} − θ (shift)
// and the current.
func (l *LIF) step(mem, shift, cur *G.Node, beta, theta neuronValue) (*G.Node, error) {
	if mem == nil {
		// U_0 = 0 and θ > 0 is fixed: r_1 = 0 and U_1 = I_1 in every mode.
		return cur, nil
	}
	switch l.cfg.Reset {
	case ResetZero:
		keep, err := nn.Pointwise(shift, "LIFKeep", func(v float64) float64 {
			if v > 0 {
				return 0
			}
			return 1
		}, nil)
		if err != nil {
			return nil, err
		}
		kept, err := G.HadamardProd(keep, mem)
		if err != nil {
			return nil, err
		}
		decayed, err := beta.mul(kept)
		if err != nil {
			return nil, err
		}
		return G.Add(decayed, cur)
	case ResetSubtract:
		decayed, err := beta.mul(mem)
		if err != nil {
			return nil, err
		}
		u, err := G.Add(decayed, cur)
		if err != nil {
			return nil, err
		}
		reset, err := nn.Heaviside(shift)
		if err != nil {
			return nil, err
		}
		sub, err := theta.mul(reset)
		if err != nil {
			return nil, err
		}
		return G.Sub(u, sub)
	default: // ResetNone
		decayed, err := beta.mul(mem)
		if err != nil {
			return nil, err
		}
		return G.Add(decayed, cur)
	}
}

// neuronValue is a per-neuron quantity that is either a fixed scalar val
// or a node of shape [N] (learnable options).
type neuronValue struct {
	node *G.Node
	val  float64
	dt   tensor.Dtype
}

// mul returns x·v for x [B, N].
func (v neuronValue) mul(x *G.Node) (*G.Node, error) {
	if v.node != nil {
		return G.BroadcastHadamardProd(x, v.node, nil, []byte{0})
	}
	return G.Mul(x, scalarConst(v.dt, v.val))
}

// subFrom returns x − v for x [B, N].
func (v neuronValue) subFrom(x *G.Node) (*G.Node, error) {
	if v.node != nil {
		return G.BroadcastSub(x, v.node, nil, []byte{0})
	}
	return G.Sub(x, scalarConst(v.dt, v.val))
}

// scalarConst returns a scalar constant node of dtype dt.
func scalarConst(dt tensor.Dtype, v float64) *G.Node {
	if dt == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}

// clampUnit returns min(max(x, 0), 1) elementwise; its gradient is 1 on
// [0, 1] (inclusive, as torch.clamp) and 0 outside.
func clampUnit(x *G.Node) (*G.Node, error) {
	return nn.Pointwise(x, "Clamp[0,1]", func(v float64) float64 {
		return math.Min(math.Max(v, 0), 1)
	}, func(v float64) float64 {
		if v >= 0 && v <= 1 {
			return 1
		}
		return 0
	})
}
