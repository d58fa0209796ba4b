package model

import (
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// TestVideoLiquidTemporalGradients builds a network whose video modality
// aggregates frames with the liquid (CfC) cell that NewNetwork installs,
// and checks the whole graph's gradients, the cell's parameters included.
func TestVideoLiquidTemporalGradients(t *testing.T) {
	mods := tinyModalities(1, []int{4})
	mods["v"] = ModalityConfig{
		Preprocessor: modality.Config{Kind: modality.KindVideo, Architecture: "frames", OutputDim: 4, Video: modality.VideoConfig{
			Frames: 3, Frame: modality.VisionConfig{InChannels: 1, Height: 4, Width: 4, Channels: []int{2}},
			FrameDim: 3, Temporal: "liquid"}},
		Encoder: tinyEncoder(4),
	}
	net, err := NewNetwork(NetworkConfig{Modalities: mods, OutputDim: 3, Fusion: fusion.Config{Strategy: fusion.Early, Dim: 3}})
	if err != nil {
		t.Fatal(err)
	}
	var cellParams int
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		g, err := net.Build(c, 2)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range c.Learnables() {
			if nn.HasPathPrefix(n.Name(), "v.pre.temporal.cfc") {
				cellParams++
			}
		}
		if err := g.Bind(tinyFeed(net, 2, 3)); err != nil {
			return nil, nil, err
		}
		return g.Loss, nil, nil
	}, nntest.Options{Seed: 3, Entries: 2, MinChecked: 10})
	// backbone, ff1, ff2, time_a, time_b: weight and bias each.
	if cellParams != 10 {
		t.Errorf("liquid temporal cell has %d parameter tensors under v.pre.temporal.cfc, want 10", cellParams)
	}
}
