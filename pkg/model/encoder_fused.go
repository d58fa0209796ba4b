package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// SpikingSeqOutput is what the fused spiking encoder produced, per layer.
type SpikingSeqOutput struct {
	// Seqs[l] is layer l's spikes over the T steps, T-major [T, B, N_l].
	Seqs []*G.Node
	// Rates[l] is layer l's firing rate over the T steps, [B, N_l].
	Rates []*G.Node
	// Layers[l] is the scope path of layer l ("vision.spiking.lif1").
	Layers []string
}

// Last returns the last layer's spikes, [T, B, OutputDim].
func (o *SpikingSeqOutput) Last() *G.Node { return o.Seqs[len(o.Seqs)-1] }

// ForwardFused runs the encoder on x [B, InputDim] like Forward, with each
// layer's T steps as one fused LIF node (LIF.ForwardFused) and each
// Linear applied once to all T·B spike rows of the layer below. The
// parameters are Forward's. In training graphs the dropout between layers
// draws one mask over [T, B, N] (Forward draws one per step: same
// distribution, different draws). x may also be T-major per-step inputs
// [T, B, InputDim] (temporal alignment): the first layer's current at
// step t is then fc(x_t), as ForwardSteps.
func (e *SpikingEncoder) ForwardFused(c *nn.Ctx, x *G.Node) (*SpikingSeqOutput, error) {
	s := x.Shape()
	steps := e.cfg.Steps
	perStep := s.Dims() == 3 && s[0] == steps && s[2] == e.cfg.InputDim
	if !perStep && (s.Dims() != 2 || s[1] != e.cfg.InputDim) {
		return nil, c.Errorf("spiking encoder expects input [batch, %d] or [%d, batch, %d], got %v", e.cfg.InputDim, steps, e.cfg.InputDim, s)
	}
	batch := s[0]
	if perStep {
		batch = s[1]
	}
	out := &SpikingSeqOutput{}
	in := e.cfg.InputDim
	var prev *G.Node // [T, B, N_{l−1}]
	for l, lif := range e.layers {
		lc := c.Sub(fmt.Sprintf("lif%d", l+1))
		fc := nn.Linear{In: in, Out: e.widths[l]}
		var cur *G.Node
		var err error
		if l == 0 {
			cur, err = fc.Forward(lc.Sub("fc"), x) // rank 3: Linear over the last axis
		} else {
			var d *G.Node
			if d, err = (nn.Dropout{P: e.cfg.Dropout}).Forward(lc.Sub("dropout"), prev); err == nil {
				if d, err = nn.Reshape(d, steps*batch, in); err == nil {
					if cur, err = fc.Forward(lc.Sub("fc"), d); err == nil {
						cur, err = nn.Reshape(cur, steps, batch, e.widths[l])
					}
				}
			}
		}
		if err != nil {
			return nil, c.Errorf("spiking layer %d: %v", l+1, err)
		}
		res, err := lif.ForwardFused(lc, cur, steps)
		if err != nil {
			return nil, err
		}
		out.Seqs = append(out.Seqs, res.Spikes)
		out.Rates = append(out.Rates, res.Rate)
		out.Layers = append(out.Layers, lc.Path())
		prev = res.Spikes
		in = e.widths[l]
	}
	return out, nil
}

// forwardFused is the encoder's fused build (EncoderConfig.Fused) from the
// projection p [B, EncoderDim]: fused spiking layers, then the fused CfC
// sequence op, or — for LTC, and for CfC backbone dropout in training
// graphs — the unrolled cell over per-step slices of the last layer's
// spikes. Parameters are those of the unrolled build.
func (e *ModalityEncoder) forwardFused(c *nn.Ctx, p *G.Node) (*EncoderOutput, error) {
	cfg := e.cfg
	spk, err := e.spiking.ForwardFused(c.Sub("spiking"), p)
	if err != nil {
		return nil, err
	}
	out := &EncoderOutput{SpikeSeqs: spk.Seqs, Rates: spk.Rates, Layers: spk.Layers}
	lc := c.Sub(cfg.Backbone)
	var last *G.Node
	if cell, ok := e.liquid.(*CfC); ok && cell.FusedSupported(c.Train()) == nil {
		res, err := cell.ForwardFused(lc, spk.Last(), false)
		if err != nil {
			return nil, err
		}
		last = res.Last
	} else {
		steps, err := seqSteps(spk.Last())
		if err != nil {
			return nil, c.Errorf("modality %q: %v", cfg.Name, err)
		}
		if out.Liquid, err = e.liquid.Forward(lc, steps); err != nil {
			return nil, err
		}
		last = out.Liquid[len(out.Liquid)-1]
	}
	if out.Feature, err = (nn.Linear{In: e.liquid.OutputSize(), Out: cfg.EncoderDim}).Forward(c.Sub("out"), last); err != nil {
		return nil, err
	}
	for l, seq := range spk.Seqs {
		s := seq.Shape()
		flat, err := nn.Reshape(seq, s[0]*s[1], s[2])
		if err != nil {
			return nil, c.Errorf("telemetry of %s: %v", spk.Layers[l], err)
		}
		// Every (step, sample) row of the flattened sequence counts as one
		// observation, as every (sample) row of every step does unrolled.
		st, err := spikeStats([]*G.Node{flat})
		if err != nil {
			return nil, c.Errorf("telemetry of %s: %v", spk.Layers[l], err)
		}
		out.Stats = append(out.Stats, st)
	}
	return out, nil
}
