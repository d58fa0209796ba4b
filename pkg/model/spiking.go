package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// DefaultSpikingLayers is the number of LIF layers of a spiking encoder
// when SpikingEncoderConfig.Layers is 0.
const DefaultSpikingLayers = 2

// SpikingEncoderConfig configures a stack of Linear→LIF layers run for T
// steps with direct coding.
//
// Widths: one layer maps InputDim → OutputDim; L ≥ 2 layers map
// InputDim → 2·OutputDim → … → 2·OutputDim → OutputDim (the design's
// in → 2·out → out for L = 2).
type SpikingEncoderConfig struct {
	// InputDim is the width of the input x [B, InputDim] (≥ 1).
	InputDim int
	// OutputDim is the number of neurons of the last layer (≥ 1).
	OutputDim int
	// Layers is the number of Linear→LIF layers; 0 means 2.
	Layers int
	// Steps is T, the number of simulation steps (≥ 1; no default).
	Steps int
	// Dropout is the drop probability applied to each layer's spikes before
	// the next layer's Linear (training graphs only); 0 disables it.
	Dropout float64
	// LIF is the neuron configuration shared by every layer; its Units is
	// ignored (set from the widths above).
	LIF LIFConfig
}

// SpikingEncoder is a stack of spiking layers (see SpikingEncoderConfig).
// Layer l (1-based) lives under the scope "lif<l>": its Linear is "fc"
// (weight [N_l, N_{l−1}], bias [N_l]) and its LIF options ("beta",
// "threshold", "graded_spikes") sit beside it.
//
// The first layer's current fc(x) is computed once and fed at every step
// (direct coding); layer l ≥ 2 receives fc(dropout(S^{l−1}_t)) at step t.
type SpikingEncoder struct {
	cfg    SpikingEncoderConfig
	widths []int
	layers []*LIF
}

// NewSpikingEncoder validates cfg and returns the encoder.
func NewSpikingEncoder(cfg SpikingEncoderConfig) (*SpikingEncoder, error) {
	if cfg.InputDim < 1 {
		return nil, fmt.Errorf("spiking encoder: input dim must be ≥ 1, got %d", cfg.InputDim)
	}
	if cfg.OutputDim < 1 {
		return nil, fmt.Errorf("spiking encoder: output dim (spiking_units) must be ≥ 1, got %d", cfg.OutputDim)
	}
	if cfg.Layers == 0 {
		cfg.Layers = DefaultSpikingLayers
	}
	if cfg.Layers < 1 {
		return nil, fmt.Errorf("spiking encoder: layers (spiking_layers) must be ≥ 1, got %d", cfg.Layers)
	}
	if cfg.Steps < 1 {
		return nil, fmt.Errorf("spiking encoder: steps (num_spike_steps) must be ≥ 1, got %d", cfg.Steps)
	}
	if !(cfg.Dropout >= 0 && cfg.Dropout < 1) {
		return nil, fmt.Errorf("spiking encoder: dropout must be in [0, 1), got %g", cfg.Dropout)
	}
	e := &SpikingEncoder{cfg: cfg}
	for l := 0; l < cfg.Layers; l++ {
		w := 2 * cfg.OutputDim
		if l == cfg.Layers-1 {
			w = cfg.OutputDim
		}
		lc := cfg.LIF
		lc.Units = w
		lif, err := NewLIF(lc)
		if err != nil {
			return nil, fmt.Errorf("spiking encoder layer lif%d: %w", l+1, err)
		}
		e.widths = append(e.widths, w)
		e.layers = append(e.layers, lif)
	}
	e.cfg.LIF = e.layers[0].Config()
	e.cfg.LIF.Units = 0
	return e, nil
}

// Config returns the configuration with defaults filled in.
func (e *SpikingEncoder) Config() SpikingEncoderConfig { return e.cfg }

// Widths returns the number of neurons of each layer.
func (e *SpikingEncoder) Widths() []int { return append([]int(nil), e.widths...) }

// SpikingOutput is what a spiking encoder produced, per layer.
type SpikingOutput struct {
	// Spikes[l][t] is layer l's spike vector at step t, [B, N_l].
	Spikes [][]*G.Node
	// Membranes[l][t] is layer l's membrane potential at step t, [B, N_l].
	Membranes [][]*G.Node
	// Rates[l] is layer l's firing rate over the T steps, [B, N_l].
	Rates []*G.Node
	// Layers[l] is the scope path of layer l (e.g. "vision.spiking.lif1"),
	// for telemetry and error messages.
	Layers []string
}

// Last returns the last layer's spikes, T nodes of [B, OutputDim].
func (o *SpikingOutput) Last() []*G.Node { return o.Spikes[len(o.Spikes)-1] }

// Forward runs the encoder on x [B, InputDim] for T steps (direct coding:
// the first layer gets the same current every step).
func (e *SpikingEncoder) Forward(c *nn.Ctx, x *G.Node) (*SpikingOutput, error) {
	s := x.Shape()
	if s.Dims() != 2 || s[1] != e.cfg.InputDim {
		return nil, c.Errorf("spiking encoder expects input [batch, %d], got %v", e.cfg.InputDim, s)
	}
	return e.ForwardSteps(c, []*G.Node{x})
}
