package model

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// CfC modes (CfCConfig.Mode), as ncps.
const (
	CfCDefault = "default"
	CfCNoGate  = "no_gate"
	CfCPure    = "pure"
)

// Defaults of CfCConfig (ncps CfCCell's).
const (
	DefaultBackboneUnits      = 128
	DefaultBackboneLayers     = 1
	DefaultBackboneActivation = "lecun_tanh"
)

// CfCConfig configures a closed-form continuous-time cell, ncps CfCCell
// (Hasani et al. 2022, "Closed-form continuous-time neural networks"). One
// step with input x [B, InputSize] and state h [B, Units]:
//
//	z   = [x; h]
//	b   = act(W_k·…act(W_1·z + c_1)… + c_k)            backbone, k = BackboneLayers
//	f1  = ff1(b), f2 = ff2(b)                           Linear(BackboneUnits → Units)
//	default: σ = sigmoid(time_a(b)·ts + time_b(b));  h' = tanh(f1)·(1 − σ) + σ·tanh(f2)
//	no_gate: h' = tanh(f1) + σ·tanh(f2)
//	pure:    h' = −A·exp(−ts·(|w_τ| + |f1|))·f1 + A      (w_τ, A [1, Units]; no ff2/time_a/time_b)
//
// Dropout(BackboneDropout) follows the activation of backbone layers 2…k
// (training graphs only), exactly where ncps puts it.
type CfCConfig struct {
	// InputSize is the width of x (≥ 1).
	InputSize int
	// Units is the state width (hidden_size) (≥ 1).
	Units int
	// Mode is CfCDefault ("" also), CfCNoGate or CfCPure.
	Mode string
	// BackboneUnits is the backbone width; 0 means 128 (ncps default).
	BackboneUnits int
	// BackboneLayers is the number of backbone Linear layers (≥ 1); 0 means
	// 1. (ncps' backbone_layers = 0, no backbone, is not supported.)
	BackboneLayers int
	// BackboneActivation is an nn.ActivationByName name; "" means
	// "lecun_tanh" (1.7159·tanh(0.666·u)). ncps allows silu, relu, tanh,
	// gelu and lecun_tanh.
	BackboneActivation string
	// BackboneDropout is the drop probability inside the backbone, in [0, 1).
	BackboneDropout float64
	// ElapsedTime is ts, the time between steps; 0 means 1 (ncps' default
	// for regularly sampled sequences). Negative values are errors.
	ElapsedTime float64
}

func (cfg CfCConfig) withDefaults() (CfCConfig, error) {
	if cfg.InputSize < 1 {
		return cfg, fmt.Errorf("input size must be ≥ 1, got %d", cfg.InputSize)
	}
	if cfg.Units < 1 {
		return cfg, fmt.Errorf("units (liquid_units) must be ≥ 1, got %d", cfg.Units)
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = CfCDefault
	case CfCDefault, CfCNoGate, CfCPure:
	default:
		return cfg, fmt.Errorf("mode (cfc_mode) must be default, no_gate or pure, got %q", cfg.Mode)
	}
	if cfg.BackboneUnits == 0 {
		cfg.BackboneUnits = DefaultBackboneUnits
	}
	if cfg.BackboneUnits < 1 {
		return cfg, fmt.Errorf("backbone_units must be ≥ 1, got %d", cfg.BackboneUnits)
	}
	if cfg.BackboneLayers == 0 {
		cfg.BackboneLayers = DefaultBackboneLayers
	}
	if cfg.BackboneLayers < 1 {
		return cfg, fmt.Errorf("backbone_layers must be ≥ 1, got %d", cfg.BackboneLayers)
	}
	if cfg.BackboneActivation == "" {
		cfg.BackboneActivation = DefaultBackboneActivation
	}
	if _, err := nn.ActivationByName(cfg.BackboneActivation); err != nil {
		return cfg, fmt.Errorf("backbone_activation: %w", err)
	}
	if !(cfg.BackboneDropout >= 0 && cfg.BackboneDropout < 1) {
		return cfg, fmt.Errorf("backbone_dropout must be in [0, 1), got %g", cfg.BackboneDropout)
	}
	if cfg.ElapsedTime == 0 {
		cfg.ElapsedTime = 1
	}
	if !(cfg.ElapsedTime > 0) || math.IsInf(cfg.ElapsedTime, 0) {
		return cfg, fmt.Errorf("elapsed_time must be a positive number, got %g", cfg.ElapsedTime)
	}
	return cfg, nil
}

// CfC is the CfC cell of CfCConfig. Parameter names under the build scope
// follow ncps' state_dict: "backbone.<i>" (the Linear modules of ncps'
// nn.Sequential, whose index i counts activations and dropouts too),
// "ff1", "ff2", "time_a", "time_b" (Linear), and "w_tau", "A" [1, Units] in
// pure mode. Every 2-D parameter is Xavier-uniform initialised — as ncps'
// init_weights, which also re-initialises pure mode's w_tau and A (declared
// as zeros and ones) because they are 2-D; biases keep PyTorch's
// U(±1/√fan_in).
type CfC struct {
	cfg CfCConfig
	act func(*G.Node) (*G.Node, error)
}

// NewCfC validates cfg and returns the cell.
func NewCfC(cfg CfCConfig) (*CfC, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("cfc: %w", err)
	}
	act, _ := nn.ActivationByName(c.BackboneActivation)
	return &CfC{cfg: c, act: act}, nil
}

// Config returns the configuration with defaults filled in.
func (m *CfC) Config() CfCConfig { return m.cfg }

// OutputSize is the width of the cell's output (Units).
func (m *CfC) OutputSize() int { return m.cfg.Units }

// Step computes one update h' from x [B, InputSize] and h [B, Units].
func (m *CfC) Step(c *nn.Ctx, x, h *G.Node) (*G.Node, error) {
	cfg := m.cfg
	if s := x.Shape(); s.Dims() != 2 || s[1] != cfg.InputSize {
		return nil, c.Errorf("cfc expects input [batch, %d], got %v", cfg.InputSize, s)
	}
	if s := h.Shape(); s.Dims() != 2 || s[1] != cfg.Units || s[0] != x.Shape()[0] {
		return nil, c.Errorf("cfc expects state [%d, %d], got %v", x.Shape()[0], cfg.Units, s)
	}
	xavier := nn.XavierUniform(1)
	z, err := nn.Concat(1, x, h)
	if err != nil {
		return nil, c.Errorf("cfc concat: %v", err)
	}
	// Backbone: ncps' nn.Sequential [Linear, act, (Linear, act, Dropout?)…].
	b, in, idx := z, cfg.InputSize+cfg.Units, 0
	for l := 0; l < cfg.BackboneLayers; l++ {
		if b, err = (nn.Linear{In: in, Out: cfg.BackboneUnits, WeightInit: xavier}).Forward(c.Sub(fmt.Sprintf("backbone.%d", idx)), b); err != nil {
			return nil, err
		}
		if b, err = m.act(b); err != nil {
			return nil, c.Errorf("cfc backbone activation: %v", err)
		}
		idx += 2
		if l > 0 && cfg.BackboneDropout > 0 {
			if b, err = (nn.Dropout{P: cfg.BackboneDropout}).Forward(c.Sub(fmt.Sprintf("backbone.%d", idx)), b); err != nil {
				return nil, err
			}
			idx++
		}
		in = cfg.BackboneUnits
	}
	head := func(name string) (*G.Node, error) {
		return nn.Linear{In: in, Out: cfg.Units, WeightInit: xavier}.Forward(c.Sub(name), b)
	}
	ts := scalarConst(c.Dtype(), cfg.ElapsedTime)
	f1, err := head("ff1")
	if err != nil {
		return nil, err
	}
	if cfg.Mode == CfCPure {
		return m.pure(c, f1, ts)
	}
	f2, err := head("ff2")
	if err != nil {
		return nil, err
	}
	ta, err := head("time_a")
	if err != nil {
		return nil, err
	}
	tb, err := head("time_b")
	if err != nil {
		return nil, err
	}
	var gate *G.Node
	err = chain(
		func() (err error) { f1, err = nn.Tanh(f1); return },
		func() (err error) { f2, err = nn.Tanh(f2); return },
		func() (err error) { ta, err = G.Mul(ta, ts); return },
		func() (err error) { gate, err = G.Add(ta, tb); return },
		func() (err error) { gate, err = nn.Sigmoid(gate); return },
	)
	if err != nil {
		return nil, c.Errorf("cfc: %v", err)
	}
	gated, err := G.HadamardProd(gate, f2)
	if err != nil {
		return nil, c.Errorf("cfc: %v", err)
	}
	if cfg.Mode == CfCDefault {
		one := scalarConst(c.Dtype(), 1)
		var keep *G.Node
		err = chain(
			func() (err error) { keep, err = G.Sub(one, gate); return },
			func() (err error) { keep, err = G.HadamardProd(f1, keep); return },
		)
		if err != nil {
			return nil, c.Errorf("cfc: %v", err)
		}
		f1 = keep
	}
	out, err := G.Add(f1, gated)
	if err != nil {
		return nil, c.Errorf("cfc: %v", err)
	}
	return out, nil
}

// pure computes h' = −A·exp(−ts·(|w_τ| + |f1|))·f1 + A.
func (m *CfC) pure(c *nn.Ctx, f1, ts *G.Node) (*G.Node, error) {
	units := m.cfg.Units
	xavier := nn.XavierUniform(1)
	wTau, err := c.Param("w_tau", []int{1, units}, xavier)
	if err != nil {
		return nil, err
	}
	a, err := c.Param("A", []int{1, units}, xavier)
	if err != nil {
		return nil, err
	}
	var absF, absW, e, out *G.Node
	err = chain(
		func() (err error) { absW, err = G.Abs(wTau); return },
		func() (err error) { absW, err = nn.Reshape(absW, units); return },
		func() (err error) { a, err = nn.Reshape(a, units); return },
		func() (err error) { absF, err = G.Abs(f1); return },
		func() (err error) { e, err = G.BroadcastAdd(absF, absW, nil, []byte{0}); return },
		func() (err error) { e, err = G.Mul(e, ts); return },
		func() (err error) { e, err = G.Neg(e); return },
		func() (err error) { e, err = G.Exp(e); return },
		func() (err error) { e, err = G.HadamardProd(e, f1); return },
		func() (err error) { e, err = G.BroadcastHadamardProd(e, a, nil, []byte{0}); return },
		func() (err error) { out, err = G.BroadcastSub(e, a, nil, []byte{0}); return },
		func() (err error) { out, err = G.Neg(out); return },
	)
	if err != nil {
		return nil, c.Errorf("cfc pure: %v", err)
	}
	return out, nil
}

// Forward runs the cell over xs (T nodes [B, InputSize]) from h0 = 0 and
// returns the T states h_1…h_T, each [B, Units]; the last is the
// sequence's summary.
func (m *CfC) Forward(c *nn.Ctx, xs []*G.Node) ([]*G.Node, error) {
	return runCell(c, "cfc", xs, m.cfg.Units, m.Step)
}

// runCell runs step over xs from a zero state of width units.
func runCell(c *nn.Ctx, kind string, xs []*G.Node, units int, step func(c *nn.Ctx, x, h *G.Node) (*G.Node, error)) ([]*G.Node, error) {
	if len(xs) == 0 {
		return nil, c.Errorf("%s: empty input sequence (num_spike_steps must be ≥ 1)", kind)
	}
	s := xs[0].Shape()
	if s.Dims() != 2 {
		return nil, c.Errorf("%s expects inputs [batch, features], got %v", kind, s)
	}
	h := zerosNode(c, []int{s[0], units}, c.Path()+".h0")
	out := make([]*G.Node, 0, len(xs))
	for t, x := range xs {
		var err error
		if h, err = step(c, x, h); err != nil {
			return nil, fmt.Errorf("%w (at step %d)", err, t+1)
		}
		out = append(out, h)
	}
	return out, nil
}

// zerosNode returns a non-trainable graph node holding zeros.
func zerosNode(c *nn.Ctx, shape []int, name string) *G.Node {
	return G.NewTensor(c.Graph(), c.Dtype(), len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(nn.ZerosDense(c.Dtype(), shape...)))
}

// chain runs steps in order and stops at the first error.
func chain(steps ...func() error) error {
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}
