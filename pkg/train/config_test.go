package train

import (
	"strings"
	"testing"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := Config{Epochs: 1}.withDefaults()
	if c.BatchSize != 32 || c.Optimizer != OptAdam || c.LR != 1e-3 || c.AccumSteps != 1 || c.LossScale.Init != 65536 ||
		c.LossScale.GrowthInterval != 2000 || c.Schedule.Base != 1e-3 {
		t.Errorf("zero values resolve to %+v", c)
	}
	if c := (Config{Stages: []StageConfig{{Epochs: 2}, {Epochs: 3}}}).withDefaults(); c.Epochs != 5 {
		t.Errorf("epochs 0 with stages: %d, want 5", c.Epochs)
	}
}

// TestConfigValidate: each bad value is reported with its key.
func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Epochs = 0 }, "train.epochs: must be > 0"},
		{func(c *Config) { c.BatchSize = -1 }, "train.batch_size"},
		{func(c *Config) { c.Optimizer = "adagrad" }, `train.optimizer: unknown optimizer "adagrad"`},
		{func(c *Config) { c.LR = -1 }, "train.lr"},
		{func(c *Config) { c.Momentum = 1 }, "train.momentum"},
		{func(c *Config) { c.Optimizer, c.Nesterov = OptSGD, true }, "train.nesterov: needs train.momentum > 0"},
		{func(c *Config) { c.Schedule.Kind = "exp" }, `train.schedule: schedule: unknown kind "exp"`},
		{func(c *Config) { c.ModalityLR = map[string]float64{"vision": -1} }, "train.modality_lr.vision"},
		{func(c *Config) { c.ClipNorm = -1 }, "train.clip_norm"},
		{func(c *Config) { c.AccumSteps = -2 }, "train.accum_steps"},
		{func(c *Config) { c.LossScale.Init = -1 }, "train.loss_scale.init"},
		{func(c *Config) { c.Stages = []StageConfig{{Epochs: 0}, {Epochs: 1}} }, "train.stages[0].epochs: must be > 0"},
		{func(c *Config) { c.Stages = []StageConfig{{Epochs: 1, Freeze: []string{"vision."}}} }, `train.stages[0]: prefix 0 "vision."`},
		{func(c *Config) { c.EarlyStop.Monitor = "val_acc" }, `train.early_stop.monitor: unknown metric "val_acc"`},
		{func(c *Config) { c.EarlyStop.Mode = "up" }, "train.early_stop.mode"},
		{func(c *Config) { c.EarlyStop.Patience = -1 }, "train.early_stop.patience"},
		{func(c *Config) { c.KeepLast = -1 }, "train.keep_last"},
		{func(c *Config) { c.Workers = -1 }, "train.workers"},
	} {
		cfg := DefaultConfig()
		c.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error containing %q", err, c.want)
		}
	}
	// All problems at once.
	cfg := DefaultConfig()
	cfg.LR, cfg.KeepLast = -1, -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "train.lr") || !strings.Contains(err.Error(), "train.keep_last") {
		t.Errorf("two problems: %v", err)
	}
}
