package model

import (
	"fmt"
	"strings"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Liquid cell backbones (EncoderConfig.Backbone).
const (
	BackboneCfC = "cfc"
	BackboneLTC = "ltc"
)

// EncoderConfig configures one modality's liquid-spiking encoder (the
// seed's modality config). Field comments give the experiment-file key.
//
// With InputDim 128, EncoderDim 128, SpikingUnits 64, LiquidUnits 64,
// SpikingLayers 1, BackboneUnits 64, BackboneLayers 1 and the zero values
// elsewhere (β 0.95, θ 1, subtract reset, fast-sigmoid 25, CfC default
// mode, ts 1) it is exactly bench-small's per-modality encoder
// (../shared/bench/ref_torch.py ModalityEncoder): 57,984 parameters.
type EncoderConfig struct {
	// Name is the modality's name ("vision", "text", …); it prefixes every
	// configuration error. Required.
	Name string
	// InputDim (input_dim) is the width of the preprocessed input x (≥ 1).
	InputDim int
	// EncoderDim (encoder_dim) is the width of the projection and of the
	// output feature (≥ 1).
	EncoderDim int
	// LiquidUnits (liquid_units) is the liquid cell's state width (≥ 1).
	LiquidUnits int
	// SpikingUnits (spiking_units) is the width of the last spiking layer
	// (≥ 1).
	SpikingUnits int
	// NumSpikeSteps (num_spike_steps) is T, the number of simulation steps
	// (≥ 1; there is no default: 0 is an error).
	NumSpikeSteps int
	// SpikingLayers (spiking_layers) is the number of Linear→LIF layers;
	// 0 means 2 (in → 2·out → out). bench-small uses 1.
	SpikingLayers int
	// Beta (beta) is the membrane decay in [0, 1]; 0 means 0.95.
	Beta float64
	// Threshold (threshold) is the firing threshold > 0; 0 means 1.
	Threshold float64
	// Reset (reset): "subtract" (default), "zero" or "none".
	Reset string
	// LearnBeta, LearnThreshold, GradedSpikes (learn_beta, learn_threshold,
	// graded_spikes): per-neuron trainable β, θ and spike factor (LIFConfig).
	LearnBeta, LearnThreshold, GradedSpikes bool
	// Surrogate (surrogate) selects the spike backward; zero value
	// fast_sigmoid with slope 25.
	Surrogate nn.Surrogate
	// Dropout (dropout) is applied to spikes between spiking layers in
	// training graphs, in [0, 1).
	Dropout float64
	// Backbone (backbone) is the liquid cell: "cfc" (default) or "ltc".
	Backbone string
	// CfCMode (cfc_mode): "default", "no_gate" or "pure" (CfC only).
	CfCMode string
	// BackboneUnits, BackboneLayers, BackboneActivation, BackboneDropout
	// (backbone_units 0 → 128, backbone_layers 0 → 1, backbone_activation
	// "" → lecun_tanh, backbone_dropout): the CfC backbone (CfCConfig).
	BackboneUnits, BackboneLayers int
	BackboneActivation            string
	BackboneDropout               float64
	// ElapsedTime (elapsed_time) is the liquid cell's ts between spike
	// steps; 0 means 1.
	ElapsedTime float64
	// ODEUnfolds (ode_unfolds) is the LTC solver's steps per update; 0
	// means 6 (LTC only).
	ODEUnfolds int
	// Fused (fused_ops) builds each spiking layer's T steps and the CfC
	// sequence as single fused graph nodes (LIF.ForwardFused,
	// CfC.ForwardFused) instead of per-step nodes: the same function and
	// parameters, several times fewer nodes and allocations per step.
	// Outputs then carry SpikeSeqs instead of per-step Spikes, and no
	// Liquid states when the CfC is fused. LTC, and CfC backbone dropout
	// in training graphs, keep the unrolled cell. In training graphs the
	// dropout between spiking layers draws one mask per layer instead of
	// one per step.
	Fused bool
}

// liquidCell is what the encoder needs from a CfC or LTC cell.
type liquidCell interface {
	Forward(c *nn.Ctx, xs []*G.Node) ([]*G.Node, error)
	OutputSize() int
}

// ModalityEncoder turns one modality's preprocessed input into its
// feature:
//
//	x [B, InputDim] → proj: Linear(InputDim → EncoderDim)
//	  → spiking encoder (EncoderDim → … → SpikingUnits) over T steps
//	  → liquid cell (SpikingUnits → LiquidUnits) over the T spike vectors, h0 = 0
//	  → out: Linear(LiquidUnits → EncoderDim) of the last state
//
// Parameters live under the build scope as "proj", "spiking.lif<l>",
// "cfc" or "ltc", and "out". Dropout (spiking and backbone) is active only
// in training graphs; everything else is the same in training and
// evaluation.
type ModalityEncoder struct {
	cfg     EncoderConfig
	spiking *SpikingEncoder
	liquid  liquidCell
}

// NewModalityEncoder validates cfg and returns the encoder. Errors name the
// modality and the offending key, e.g.
// `modality "vision": num_spike_steps must be ≥ 1, got 0`.
func NewModalityEncoder(cfg EncoderConfig) (*ModalityEncoder, error) {
	if strings.TrimSpace(cfg.Name) == "" {
		return nil, fmt.Errorf("modality encoder: name must not be empty")
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("modality %q: %s", cfg.Name, fmt.Sprintf(format, args...))
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"input_dim", cfg.InputDim}, {"encoder_dim", cfg.EncoderDim}, {"spiking_units", cfg.SpikingUnits},
		{"liquid_units", cfg.LiquidUnits}, {"num_spike_steps", cfg.NumSpikeSteps}} {
		if f.v < 1 {
			return nil, fail("%s must be ≥ 1, got %d", f.key, f.v)
		}
	}
	if cfg.SpikingLayers < 0 {
		return nil, fail("spiking_layers must be ≥ 1 (0 for the default 2), got %d", cfg.SpikingLayers)
	}
	if cfg.Backbone == "" {
		cfg.Backbone = BackboneCfC
	}
	spk, err := NewSpikingEncoder(SpikingEncoderConfig{
		InputDim: cfg.EncoderDim, OutputDim: cfg.SpikingUnits, Layers: cfg.SpikingLayers,
		Steps: cfg.NumSpikeSteps, Dropout: cfg.Dropout,
		LIF: LIFConfig{Beta: cfg.Beta, Threshold: cfg.Threshold, Reset: cfg.Reset, LearnBeta: cfg.LearnBeta,
			LearnThreshold: cfg.LearnThreshold, GradedSpikes: cfg.GradedSpikes, Surrogate: cfg.Surrogate},
	})
	if err != nil {
		return nil, fail("%v", err)
	}
	e := &ModalityEncoder{spiking: spk}
	sc := spk.Config()
	cfg.SpikingLayers, cfg.Beta, cfg.Threshold, cfg.Reset, cfg.Surrogate = sc.Layers, sc.LIF.Beta, sc.LIF.Threshold, sc.LIF.Reset, sc.LIF.Surrogate
	switch cfg.Backbone {
	case BackboneCfC:
		cell, err := NewCfC(cfg.CfCConfig())
		if err != nil {
			return nil, fail("%v", err)
		}
		cc := cell.Config()
		cfg.CfCMode, cfg.BackboneUnits, cfg.BackboneLayers, cfg.BackboneActivation, cfg.ElapsedTime = cc.Mode, cc.BackboneUnits, cc.BackboneLayers, cc.BackboneActivation, cc.ElapsedTime
		e.liquid = cell
	case BackboneLTC:
		if cfg.CfCMode != "" {
			return nil, fail("cfc_mode %q is set but backbone is ltc", cfg.CfCMode)
		}
		cell, err := NewLTC(cfg.LTCConfig())
		if err != nil {
			return nil, fail("%v", err)
		}
		lc := cell.Config()
		cfg.ODEUnfolds, cfg.ElapsedTime = lc.ODEUnfolds, lc.ElapsedTime
		e.liquid = cell
	default:
		return nil, fail("backbone must be cfc or ltc, got %q", cfg.Backbone)
	}
	e.cfg = cfg
	return e, nil
}

// Config returns the configuration with defaults filled in.
func (e *ModalityEncoder) Config() EncoderConfig { return e.cfg }

// CfCConfig is the liquid cell the encoder runs when Backbone is cfc: input
// SpikingUnits, state LiquidUnits, and the cfc_*/backbone_* fields.
func (cfg EncoderConfig) CfCConfig() CfCConfig {
	return CfCConfig{InputSize: cfg.SpikingUnits, Units: cfg.LiquidUnits, Mode: cfg.CfCMode,
		BackboneUnits: cfg.BackboneUnits, BackboneLayers: cfg.BackboneLayers, BackboneActivation: cfg.BackboneActivation,
		BackboneDropout: cfg.BackboneDropout, ElapsedTime: cfg.ElapsedTime}
}

// LTCConfig is the liquid cell the encoder runs when Backbone is ltc.
func (cfg EncoderConfig) LTCConfig() LTCConfig {
	return LTCConfig{InputSize: cfg.SpikingUnits, Units: cfg.LiquidUnits, ODEUnfolds: cfg.ODEUnfolds, ElapsedTime: cfg.ElapsedTime}
}

// EncoderOutput is what one ModalityEncoder build produced.
type EncoderOutput struct {
	// Feature is the modality feature, [B, EncoderDim].
	Feature *G.Node
	// Spikes[l][t] is spiking layer l's output at step t, [B, N_l].
	Spikes [][]*G.Node
	// Rates[l] is spiking layer l's firing rate over the T steps, [B, N_l]
	// (differentiable: usable in rate regularisers).
	Rates []*G.Node
	// Liquid holds the liquid cell's T outputs, [B, LiquidUnits]; the last
	// one feeds the output layer.
	Liquid []*G.Node
	// Layers[l] is the scope path of spiking layer l ("vision.spiking.lif1").
	Layers []string
	// Stats[l] is spiking layer l's telemetry node [3, N_l] (see
	// SpikeTelemetry); a graph root, so its value survives the run.
	Stats []*G.Node
	// SpikeSeqs[l] is spiking layer l's output over the T steps, T-major
	// [T, B, N_l]; set instead of Spikes by fused builds
	// (EncoderConfig.Fused).
	SpikeSeqs []*G.Node
}

// Forward builds the encoder on x [B, InputDim] under scope c (scope it to
// the modality, e.g. c.Sub("encoders").Sub(name), so parameter names and
// errors carry the modality).
func (e *ModalityEncoder) Forward(c *nn.Ctx, x *G.Node) (*EncoderOutput, error) {
	var out *EncoderOutput
	err := nn.Catch(fmt.Sprintf("modality %q encoder (%s)", e.cfg.Name, c.Path()), func() error {
		var err error
		out, err = e.forward(c, x)
		return err
	})
	return out, err
}

func (e *ModalityEncoder) forward(c *nn.Ctx, x *G.Node) (*EncoderOutput, error) {
	cfg := e.cfg
	if x == nil {
		return nil, c.Errorf("modality %q: missing input", cfg.Name)
	}
	if s := x.Shape(); s.Dims() != 2 || s[1] != cfg.InputDim {
		return nil, c.Errorf("modality %q: encoder input has shape %v, want [batch, %d] (input_dim)", cfg.Name, s, cfg.InputDim)
	}
	p, err := nn.Linear{In: cfg.InputDim, Out: cfg.EncoderDim}.Forward(c.Sub("proj"), x)
	if err != nil {
		return nil, err
	}
	if cfg.Fused {
		return e.forwardFused(c, p)
	}
	spk, err := e.spiking.Forward(c.Sub("spiking"), p)
	if err != nil {
		return nil, err
	}
	return e.liquidOut(c, spk)
}

// liquidOut runs the liquid cell over the spiking layers' last output,
// reads its final state through "out", and attaches spike telemetry: the
// unrolled encoder after its spiking layers.
func (e *ModalityEncoder) liquidOut(c *nn.Ctx, spk *SpikingOutput) (*EncoderOutput, error) {
	liquid, err := e.liquid.Forward(c.Sub(e.cfg.Backbone), spk.Last())
	if err != nil {
		return nil, err
	}
	feat, err := nn.Linear{In: e.liquid.OutputSize(), Out: e.cfg.EncoderDim}.Forward(c.Sub("out"), liquid[len(liquid)-1])
	if err != nil {
		return nil, err
	}
	out := &EncoderOutput{Feature: feat, Spikes: spk.Spikes, Rates: spk.Rates, Liquid: liquid, Layers: spk.Layers}
	for l, s := range spk.Spikes {
		st, err := spikeStats(s)
		if err != nil {
			return nil, c.Errorf("telemetry of %s: %v", spk.Layers[l], err)
		}
		out.Stats = append(out.Stats, st)
	}
	return out, nil
}
