package model

import (
	"fmt"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// encoderParityGraph builds the encoder on x [3, InputDim] and returns a
// probe loss over the feature and the rates; outputs: feature, rates and
// the telemetry of every layer.
func encoderParityGraph(cfg EncoderConfig, scale float64) parityBuild {
	return func(c *nn.Ctx) (*G.Node, []*G.Node, G.Nodes, error) {
		enc, err := NewModalityEncoder(cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		x := G.NewTensor(c.Graph(), c.Dtype(), 2, G.WithShape(3, cfg.InputDim), G.WithName("x"), G.WithValue(nntest.RandInput(5, scale, 3, cfg.InputDim)))
		out, err := enc.Forward(c.Sub(cfg.Name), x)
		if err != nil {
			return nil, nil, nil, err
		}
		if cfg.Fused != (out.SpikeSeqs != nil) || cfg.Fused == (out.Spikes != nil) {
			return nil, nil, nil, fmt.Errorf("fused=%t: got %d spike sequences and %d per-step layers", cfg.Fused, len(out.SpikeSeqs), len(out.Spikes))
		}
		probes := append([]*G.Node{out.Feature}, out.Rates...)
		loss, err := sumProbes(probes, 8)
		return loss, append(probes, out.Stats...), G.Nodes{x}, err
	}
}

func TestEncoderFusedMatchesUnrolled(t *testing.T) {
	// Whole encoders (projection, spiking layers, liquid cell, output
	// layer) built fused and unrolled over the same parameters: feature,
	// rates, telemetry and every gradient agree. Training graphs without
	// dropout, or evaluation graphs with it (identity there).
	bench := EncoderConfig{Name: "vision", InputDim: 6, EncoderDim: 8, SpikingUnits: 7, SpikingLayers: 1, LiquidUnits: 5,
		NumSpikeSteps: 8, Threshold: 0.5, BackboneUnits: 6, BackboneLayers: 1}
	deep := smallEncoderConfig(BackboneCfC, CfCDefault)
	deep.Surrogate = nn.Surrogate{Kind: "atan"}
	pure := smallEncoderConfig(BackboneCfC, CfCPure)
	pure.Reset, pure.Dropout, pure.BackboneDropout = ResetZero, 0, 0
	ltc := smallEncoderConfig(BackboneLTC, "")
	ltc.Dropout, ltc.BackboneDropout = 0, 0
	cases := []struct {
		name  string
		cfg   EncoderConfig
		train bool
	}{
		{"bench-like", bench, true},
		{"two-layers-dropout-eval", deep, false},
		{"pure-zero-reset", pure, true},
		{"ltc", ltc, true},
	}
	for _, tc := range cases {
		store, err := nn.NewStore(tensor.Float64, 9)
		if err != nil {
			t.Fatal(err)
		}
		ref := runParity(t, store, tc.train, encoderParityGraph(tc.cfg, 2))
		tc.cfg.Fused = true
		fused := runParity(t, store, tc.train, encoderParityGraph(tc.cfg, 2))
		assertParity(t, tc.name, fused, ref, 1e-9)
	}
}

func TestEncoderFusedGradcheck(t *testing.T) {
	// The fused encoder with every learnable option against finite
	// differences (Smooth surrogate), two spiking layers, two-layer CfC.
	cfg := smallEncoderConfig(BackboneCfC, CfCNoGate)
	cfg.Dropout, cfg.BackboneDropout, cfg.Fused = 0, 0, true
	build := encoderParityGraph(cfg, 2)
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		loss, _, in, err := build(c)
		return loss, in, err
	}, nntest.Options{Train: true, Entries: 3, MinChecked: 14})
}

func TestEncoderFusedTrainingDropout(t *testing.T) {
	// Training graphs with dropout everywhere still build: the fused LIF
	// layers with one dropout mask per layer, and the CfC (backbone
	// dropout) unrolled over per-step slices.
	cfg := smallEncoderConfig(BackboneCfC, CfCDefault)
	cfg.Fused = true
	c := newTestCtx(t, true)
	enc, err := NewModalityEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	x := G.NewTensor(c.Graph(), c.Dtype(), 2, G.WithShape(3, cfg.InputDim), G.WithName("x"), G.WithValue(nntest.RandInput(5, 2, 3, cfg.InputDim)))
	out, err := enc.Forward(c.Sub("toy"), x)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Liquid) != cfg.NumSpikeSteps || len(out.SpikeSeqs) != 2 {
		t.Fatalf("got %d liquid states and %d spike sequences, want %d and 2", len(out.Liquid), len(out.SpikeSeqs), cfg.NumSpikeSteps)
	}
	runGraph(t, c.Graph())
	if got := values(t, out.Feature); len(got) != 3*cfg.EncoderDim {
		t.Errorf("feature has %d values", len(got))
	}
}
