package modality

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// MLPConfig shapes the mlp preprocessor for plain feature vectors
// (Config.MLP).
type MLPConfig struct {
	// InputDim is the size of each input vector. Required (no default).
	InputDim int `mapstructure:"input_dim" yaml:"input_dim"`
	// Hidden are the widths of the hidden layers; each is Linear →
	// activation → dropout. Empty means none: a single Linear(input_dim,
	// output_dim).
	Hidden []int `mapstructure:"hidden" yaml:"hidden"`
	// Activation of the hidden layers: relu, gelu, silu, tanh, sigmoid,
	// lecun_tanh, identity. "" means relu.
	Activation string `mapstructure:"activation" yaml:"activation"`
	// Dropout probability after each hidden activation while training,
	// in [0, 1). 0 disables it.
	Dropout float64 `mapstructure:"dropout" yaml:"dropout"`
}

func (m MLPConfig) withDefaults() MLPConfig {
	m.Activation = orString(m.Activation, "relu")
	m.Hidden = append([]int(nil), m.Hidden...)
	return m
}

func (m MLPConfig) validate(v *validator) {
	if m.InputDim <= 0 {
		v.add("input_dim", "must be positive (the length of each feature vector), got %d", m.InputDim)
	}
	for i, h := range m.Hidden {
		if h <= 0 {
			v.add("hidden", "width %d is %d; every width must be positive", i, h)
		}
	}
	v.activation("activation", m.Activation)
	v.probability("dropout", m.Dropout)
}

// MLP is the feature-vector preprocessor: [B, input_dim] → [B, OutputDim]
// through layers fc1..fcN (Linear → activation → dropout for each hidden
// width) and a final Linear "out" without activation. Dropout is active in
// training graphs only.
type MLP struct {
	cfg MLPConfig
	out int
}

func newMLP(cfg MLPConfig, out int) *MLP { return &MLP{cfg: cfg, out: out} }

// Kind returns "mlp".
func (m *MLP) Kind() string { return KindMLP }

// InputShape returns [batch, InputDim].
func (m *MLP) InputShape(batch int) []int { return []int{batch, m.cfg.InputDim} }

// IntInput returns false.
func (m *MLP) IntInput() bool { return false }

// OutputDim returns the feature size.
func (m *MLP) OutputDim() int { return m.out }

// Forward maps x [B, input_dim] to [B, OutputDim].
func (m *MLP) Forward(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	return guard(c, KindMLP, func() (*G.Node, error) { return m.forward(c, x) })
}

func (m *MLP) forward(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	if err := checkInput(c, x, KindMLP, false, []int{0, m.cfg.InputDim}, []string{"batch", "features"}); err != nil {
		return nil, err
	}
	var err error
	in := m.cfg.InputDim
	for i, h := range m.cfg.Hidden {
		name := fmt.Sprintf("fc%d", i+1)
		if x, err = (nn.Linear{In: in, Out: h}).Forward(c.Sub(name), x); err != nil {
			return nil, err
		}
		if x, err = activate(c, m.cfg.Activation, x); err != nil {
			return nil, err
		}
		if x, err = (nn.Dropout{P: m.cfg.Dropout}).Forward(c.Sub(fmt.Sprintf("dropout%d", i+1)), x); err != nil {
			return nil, err
		}
		in = h
	}
	return nn.Linear{In: in, Out: m.out}.Forward(c.Sub("out"), x)
}
