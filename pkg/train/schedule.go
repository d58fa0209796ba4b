package train

import (
	"fmt"
	"math"
)

// ScheduleConfig describes a learning-rate schedule over optimiser steps.
type ScheduleConfig struct {
	// Kind: "constant" (default), "step", "cosine".
	Kind string
	// Base is the peak learning rate.
	Base float64
	// StepSize and Gamma: "step" multiplies the rate by Gamma every StepSize
	// steps (torch StepLR). Gamma 0 means 0.1.
	StepSize int
	Gamma    float64
	// MinLR is the floor "cosine" anneals to at Total steps.
	MinLR float64
	// Total is the number of optimiser steps of the run ("cosine").
	Total int
	// Warmup ramps linearly from Base/Warmup to Base over the first Warmup
	// steps, then hands over to Kind (shifted by Warmup).
	Warmup int
}

// Schedule returns the learning rate of optimiser step t (0-based).
type Schedule func(t int) float64

// NewSchedule validates cfg and returns its schedule.
func NewSchedule(cfg ScheduleConfig) (Schedule, error) {
	if cfg.Base <= 0 {
		return nil, fmt.Errorf("schedule: learning rate must be positive, got %g", cfg.Base)
	}
	if cfg.Warmup < 0 {
		return nil, fmt.Errorf("schedule: warmup must be ≥ 0, got %d", cfg.Warmup)
	}
	var after Schedule
	switch cfg.Kind {
	case "", "constant":
		after = func(int) float64 { return cfg.Base }
	case "step":
		if cfg.StepSize <= 0 {
			return nil, fmt.Errorf("schedule: step needs step_size > 0, got %d", cfg.StepSize)
		}
		gamma := cfg.Gamma
		if gamma == 0 {
			gamma = 0.1
		}
		after = func(t int) float64 { return cfg.Base * math.Pow(gamma, float64(t/cfg.StepSize)) }
	case "cosine":
		n := cfg.Total - cfg.Warmup
		if n <= 0 {
			return nil, fmt.Errorf("schedule: cosine needs total steps (%d) > warmup (%d)", cfg.Total, cfg.Warmup)
		}
		after = func(t int) float64 {
			if t >= n {
				return cfg.MinLR
			}
			return cfg.MinLR + 0.5*(cfg.Base-cfg.MinLR)*(1+math.Cos(math.Pi*float64(t)/float64(n)))
		}
	default:
		return nil, fmt.Errorf("schedule: unknown kind %q (valid: constant, step, cosine)", cfg.Kind)
	}
	if cfg.Warmup == 0 {
		return after, nil
	}
	return func(t int) float64 {
		if t < cfg.Warmup {
			return cfg.Base * float64(t+1) / float64(cfg.Warmup)
		}
		return after(t - cfg.Warmup)
	}, nil
}
