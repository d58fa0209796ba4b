package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// LossScaler is dynamic loss scaling ("mixed-precision style", as
// torch.cuda.amp.GradScaler): the loss is multiplied by Scale before the
// backward pass, gradients are divided by it before the optimiser step; a
// step whose gradients hold Inf or NaN is skipped, the gradients are zeroed
// and Scale is halved; after GrowthInterval good steps in a row Scale
// doubles.
type LossScaler struct {
	Scale          float64
	GrowthInterval int
	Growth         float64
	Backoff        float64
	good           int
}

// NewLossScaler returns a scaler starting at init (0: 65536) growing every
// interval good steps (0: 2000), as GradScaler's defaults.
func NewLossScaler(init float64, interval int) (*LossScaler, error) {
	if init == 0 {
		init = 65536
	}
	if interval == 0 {
		interval = 2000
	}
	if init < 0 || interval < 0 {
		return nil, fmt.Errorf("loss scaler: initial scale %g and growth interval %d must be positive", init, interval)
	}
	return &LossScaler{Scale: init, GrowthInterval: interval, Growth: 2, Backoff: 0.5}, nil
}

// Unscale divides the accumulated gradients by Scale·extra (extra lets an
// accumulation window average at the same time: pass the window length)
// and reports whether they are all finite. When they are not, it zeroes
// them, halves Scale and returns false: the caller skips the optimiser step.
// Otherwise it counts a good step and may double Scale.
func (s *LossScaler) Unscale(nodes G.Nodes, extra float64) (bool, error) {
	if extra <= 0 {
		extra = 1
	}
	if err := ScaleGrads(nodes, 1/(s.Scale*extra)); err != nil {
		return false, err
	}
	_, finite, err := GlobalNorm(nodes)
	if err != nil {
		return false, err
	}
	if !s.observe(finite) {
		return false, ZeroGrads(nodes)
	}
	return true, nil
}

// observe counts a step whose unscaled gradients were finite or not: a
// non-finite one halves Scale (and returns false: the step is skipped),
// a run of GrowthInterval good ones doubles it.
func (s *LossScaler) observe(finite bool) bool {
	if !finite {
		s.Scale *= s.Backoff
		s.good = 0
		return false
	}
	s.good++
	if s.good >= s.GrowthInterval {
		s.Scale *= s.Growth
		s.good = 0
	}
	return true
}
