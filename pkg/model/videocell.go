package model

import (
	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// liquidTemporal is the video preprocessor's `temporal: liquid` aggregator:
// an ncps CfC cell (default mode, lecun_tanh backbone as wide as the frame
// features) run over the per-frame features, whose final state is the clip
// feature. It is a modality.TemporalCell; NewNetwork installs it.
type liquidTemporal struct{}

// Run implements modality.TemporalCell: steps are T nodes [B, D]; the
// result is the final state [B, D]. Parameters live under c's scope "cfc".
func (liquidTemporal) Run(c *nn.Ctx, steps []*G.Node) (*G.Node, error) {
	if len(steps) == 0 {
		return nil, c.Errorf("liquid temporal cell: no frames")
	}
	d := steps[0].Shape()[1]
	cell, err := NewCfC(TemporalCfCConfig(d))
	if err != nil {
		return nil, c.Errorf("liquid temporal cell: %v", err)
	}
	hs, err := cell.Forward(c.Sub("cfc"), steps)
	if err != nil {
		return nil, err
	}
	return hs[len(hs)-1], nil
}

// TemporalCfCConfig is the CfC the liquid temporal cell runs over frame
// features of width d (parameters under "<modality>.pre.temporal.cfc").
func TemporalCfCConfig(d int) CfCConfig {
	return CfCConfig{InputSize: d, Units: d, BackboneUnits: d}
}

// withTemporalCell installs the liquid cell into a video preprocessor
// config that asks for it and has none.
func withTemporalCell(cfg modality.Config) modality.Config {
	if cfg.Kind == modality.KindVideo && cfg.Video.Temporal == "liquid" && cfg.Video.Cell == nil {
		cfg.Video.Cell = liquidTemporal{}
	}
	return cfg
}

var _ modality.TemporalCell = liquidTemporal{}

// String names the cell in error messages and config dumps.
func (liquidTemporal) String() string { return "cfc(default, lecun_tanh)" }
