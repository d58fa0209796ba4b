package modality

import (
	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// SensorConfig shapes the sensor (multichannel time series) preprocessor
// (Config.Sensor).
type SensorConfig struct {
	// Sensors is the number of input channels (one per sensor reading:
	// IMU axes, LiDAR beams, ...). Required (no default).
	Sensors int `mapstructure:"sensors" yaml:"sensors"`
	// TimeSteps is the series length InputShape returns; Forward accepts
	// any length ≥ 1. 0 means 100.
	TimeSteps int `mapstructure:"time_steps" yaml:"time_steps"`
	// Channels are the widths of the Conv1d → BatchNorm → ReLU →
	// MaxPool1d blocks over time. Empty means [32, 64].
	Channels []int `mapstructure:"channels" yaml:"channels"`
	// Kernel of the convs over time (padding Kernel/2). 0 means 3.
	Kernel int `mapstructure:"kernel" yaml:"kernel"`
	// Pool is the max-pool size and stride after each block (skipped
	// while the series is shorter than Pool). 0 means 1: no pooling.
	Pool int `mapstructure:"pool" yaml:"pool"`
	// Attention adds temporal self-attention after the convs: multi-head
	// attention over the time steps, residual, LayerNorm, then the mean
	// over time (instead of plain average pooling). false by default.
	Attention bool `mapstructure:"attention" yaml:"attention"`
	// Heads of the temporal attention; the last width must be divisible
	// by it. 0 means 4.
	Heads int `mapstructure:"heads" yaml:"heads"`
}

func (s SensorConfig) withDefaults() SensorConfig {
	s.TimeSteps = orInt(s.TimeSteps, 100)
	s.Channels = orInts(s.Channels, []int{32, 64})
	s.Kernel = orInt(s.Kernel, 3)
	s.Pool = orInt(s.Pool, 1)
	s.Heads = orInt(s.Heads, 4)
	return s
}

func (s SensorConfig) validate(v *validator) {
	if s.Sensors <= 0 {
		v.add("sensors", "must be positive (the number of input channels), got %d", s.Sensors)
	}
	v.positive("time_steps", s.TimeSteps)
	v.widths("channels", s.Channels)
	v.positive("kernel", s.Kernel)
	v.positive("pool", s.Pool)
	v.positive("heads", s.Heads)
	if s.Attention && s.Heads > 0 && len(s.Channels) > 0 {
		if last := s.Channels[len(s.Channels)-1]; last%s.Heads != 0 {
			v.add("heads", "the last channel width %d is not divisible by %d heads", last, s.Heads)
		}
	}
}

// Sensor is the time-series preprocessor: [B, sensors, time] →
// [B, OutputDim]. Conv blocks conv<i>/bn<i> (Conv1d → BatchNorm → ReLU →
// MaxPool1d) over time; then either the mean over time, or (Attention)
// h = LayerNorm(a + MHA(a, a)) with a the conv output as [B, time, C]
// (scopes "attention", "norm") followed by the mean over time; then fc
// Linear(C, OutputDim). Batch norms use batch statistics when training.
type Sensor struct {
	cfg SensorConfig
	out int
}

func newSensor(cfg SensorConfig, out int) *Sensor { return &Sensor{cfg: cfg, out: out} }

// Kind returns "sensor".
func (s *Sensor) Kind() string { return KindSensor }

// InputShape returns [batch, Sensors, TimeSteps].
func (s *Sensor) InputShape(batch int) []int { return []int{batch, s.cfg.Sensors, s.cfg.TimeSteps} }

// IntInput returns false.
func (s *Sensor) IntInput() bool { return false }

// OutputDim returns the feature size.
func (s *Sensor) OutputDim() int { return s.out }

// Forward maps series x [B, sensors, time] (any length) to [B, OutputDim].
func (s *Sensor) Forward(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	return guard(c, KindSensor, func() (*G.Node, error) { return s.forward(c, x) })
}

func (s *Sensor) forward(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	if err := checkInput(c, x, KindSensor, false, []int{0, s.cfg.Sensors, 0}, []string{"batch", "sensors", "time"}); err != nil {
		return nil, err
	}
	h, err := conv1dStack(c, x, s.cfg.Channels, s.cfg.Kernel, s.cfg.Pool, 1)
	if err != nil {
		return nil, err
	}
	if !s.cfg.Attention {
		return poolHead(c, h, s.out)
	}
	width := h.Shape()[1]
	a, err := swap12(h) // [B, time, C]
	if err != nil {
		return nil, scopedErr(c, err)
	}
	att, _, err := nn.MultiHeadAttention{Dim: width, Heads: s.cfg.Heads}.Forward(c.Sub("attention"), a, a, nil)
	if err != nil {
		return nil, err
	}
	if a, err = nn.Add(a, att); err != nil {
		return nil, c.Errorf("attention residual: %v", err)
	}
	if a, err = (nn.LayerNorm{Features: width, Eps: 1e-5}).Forward(c.Sub("norm"), a); err != nil {
		return nil, err
	}
	pooled, err := nn.MeanAxis(a, 1)
	if err != nil {
		return nil, scopedErr(c, err)
	}
	return nn.Linear{In: width, Out: s.out}.Forward(c.Sub("fc"), pooled)
}
