package train

import (
	"fmt"
	"math"
)

// earlyStop tracks the monitored metric across epochs (Keras
// EarlyStopping semantics): an epoch improves when its value beats the
// best so far by more than minDelta in the monitor's direction; after
// patience epochs in a row without improvement the run stops (patience 0:
// never). The best value decides best.ckpt. A NaN value never improves.
type earlyStop struct {
	Monitor   string  `json:"monitor"`
	Mode      string  `json:"mode"`
	Patience  int     `json:"patience"`
	MinDelta  float64 `json:"min_delta"`
	Best      jfloat  `json:"best"`
	HasBest   bool    `json:"has_best"`
	BestEpoch int     `json:"best_epoch"`
	Bad       int     `json:"bad"`
}

// newEarlyStop resolves the monitor ("" picks val_loss when there is a
// validation set, else train_loss) and its mode.
func newEarlyStop(cfg EarlyStopConfig, hasVal bool) (*earlyStop, error) {
	m := cfg.Monitor
	if m == "" {
		m = MonitorTrainLoss
		if hasVal {
			m = MonitorValLoss
		}
	}
	natural, ok := monitorModes[m]
	if !ok {
		return nil, fmt.Errorf("train.early_stop.monitor: unknown metric %q", m)
	}
	if !hasVal && m != MonitorTrainLoss && m != MonitorTrainAccuracy {
		return nil, fmt.Errorf("train.early_stop.monitor: %s needs a validation set (give one, or monitor train_loss)", m)
	}
	mode := cfg.Mode
	if mode == "" {
		mode = natural
	}
	return &earlyStop{Monitor: m, Mode: mode, Patience: cfg.Patience, MinDelta: cfg.MinDelta}, nil
}

// value picks the monitored metric out of an epoch's metrics.
func (s *earlyStop) value(train Metrics, val *Metrics) float64 {
	pick := func(m *Metrics, name string) float64 {
		if m == nil {
			return math.NaN()
		}
		switch name {
		case "loss":
			return m.Loss
		case "accuracy":
			return m.Accuracy
		case "macro_f1":
			return m.MacroF1
		case "mse":
			return m.MSE
		case "mae":
			return m.MAE
		}
		return math.NaN()
	}
	switch s.Monitor {
	case MonitorTrainLoss:
		return train.Loss
	case MonitorTrainAccuracy:
		return train.Accuracy
	}
	return pick(val, s.Monitor[len("val_"):])
}

// update records epoch's value (1-based) and reports whether it is the new
// best and whether patience has run out.
func (s *earlyStop) update(v float64, epoch int) (improved, stop bool) {
	if !math.IsNaN(v) {
		switch {
		case !s.HasBest:
			improved = true
		case s.Mode == "max":
			improved = v > float64(s.Best)+s.MinDelta
		default:
			improved = v < float64(s.Best)-s.MinDelta
		}
	}
	if improved {
		s.Best, s.HasBest, s.BestEpoch, s.Bad = jfloat(v), true, epoch, 0
	} else {
		s.Bad++
	}
	return improved, s.Patience > 0 && s.Bad >= s.Patience
}
