package train

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"
)

// jfloat is a float64 that survives JSON even when it is NaN or ±Inf
// (written as the strings "NaN", "+Inf", "-Inf"; encoding/json rejects
// them as numbers). Finite values round-trip exactly.
type jfloat float64

// MarshalJSON writes a number, or a string for a non-finite value.
func (f jfloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (f *jfloat) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("float %q: %w", s, err)
		}
		*f = jfloat(v)
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*f = jfloat(v)
	return nil
}

// finite reports whether x is neither NaN nor ±Inf.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func jmap(m map[string]float64) map[string]jfloat {
	if m == nil {
		return nil
	}
	out := make(map[string]jfloat, len(m))
	for k, v := range m {
		out[k] = jfloat(v)
	}
	return out
}

func fmap(m map[string]jfloat) map[string]float64 {
	if m == nil {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

// metricsJSON is Metrics as written to metrics.jsonl and checkpoints.
type metricsJSON struct {
	Loss     jfloat `json:"loss"`
	Accuracy jfloat `json:"accuracy"`
	MacroF1  jfloat `json:"macro_f1"`
	Top5     jfloat `json:"top5"`
	MSE      jfloat `json:"mse"`
	MAE      jfloat `json:"mae"`
	N        int    `json:"n"`
}

func toMetricsJSON(m Metrics) metricsJSON {
	return metricsJSON{jfloat(m.Loss), jfloat(m.Accuracy), jfloat(m.MacroF1), jfloat(m.Top5), jfloat(m.MSE), jfloat(m.MAE), m.N}
}

func (m metricsJSON) metrics() Metrics {
	return Metrics{Loss: float64(m.Loss), Accuracy: float64(m.Accuracy), MacroF1: float64(m.MacroF1), Top5: float64(m.Top5),
		MSE: float64(m.MSE), MAE: float64(m.MAE), N: m.N}
}

// epochLine is one epoch line of metrics.jsonl ("type": "epoch"), and the
// form in which a checkpoint keeps the run's history.
type epochLine struct {
	Type               string            `json:"type"`
	Time               string            `json:"time,omitempty"`
	Epoch              int               `json:"epoch"`
	Epochs             int               `json:"epochs"`
	Stage              string            `json:"stage"`
	Step               int               `json:"step"`
	Train              metricsJSON       `json:"train"`
	Val                *metricsJSON      `json:"val,omitempty"`
	LR                 jfloat            `json:"lr"`
	LossScale          jfloat            `json:"loss_scale"`
	SkippedSteps       int               `json:"skipped_steps"`
	SamplesPerSec      jfloat            `json:"samples_per_sec"`
	Seconds            jfloat            `json:"seconds"`
	SpikeRates         map[string]jfloat `json:"spike_rates,omitempty"`
	ModalitySpikeRates map[string]jfloat `json:"modality_spike_rates,omitempty"`
	ModalityWeights    map[string]jfloat `json:"modality_weights,omitempty"`
	Monitor            string            `json:"monitor"`
	MonitorValue       jfloat            `json:"monitor_value"`
	Improved           bool              `json:"improved"`
	Best               jfloat            `json:"best"`
	BestEpoch          int               `json:"best_epoch"`
	Stop               bool              `json:"stop"`
}

func toEpochLine(e EpochInfo) epochLine {
	l := epochLine{Type: "epoch", Epoch: e.Epoch, Epochs: e.Epochs, Stage: e.Stage, Step: e.Step,
		Train: toMetricsJSON(e.Train), LR: jfloat(e.LR), LossScale: jfloat(e.LossScale), SkippedSteps: e.SkippedSteps,
		SamplesPerSec: jfloat(e.SamplesPerSec), Seconds: jfloat(e.Seconds),
		SpikeRates: jmap(e.SpikeRates), ModalitySpikeRates: jmap(e.ModalitySpikeRates), ModalityWeights: jmap(e.ModalityWeights),
		Monitor: e.Monitor, MonitorValue: jfloat(e.MonitorValue), Improved: e.Improved, Best: jfloat(e.Best),
		BestEpoch: e.BestEpoch, Stop: e.Stop}
	if e.Val != nil {
		v := toMetricsJSON(*e.Val)
		l.Val = &v
	}
	return l
}

func (l epochLine) info() EpochInfo {
	e := EpochInfo{Epoch: l.Epoch, Epochs: l.Epochs, Stage: l.Stage, Step: l.Step, Train: l.Train.metrics(),
		LR: float64(l.LR), LossScale: float64(l.LossScale), SkippedSteps: l.SkippedSteps,
		SamplesPerSec: float64(l.SamplesPerSec), Seconds: float64(l.Seconds),
		SpikeRates: fmap(l.SpikeRates), ModalitySpikeRates: fmap(l.ModalitySpikeRates), ModalityWeights: fmap(l.ModalityWeights),
		Monitor: l.Monitor, MonitorValue: float64(l.MonitorValue), Improved: l.Improved, Best: float64(l.Best),
		BestEpoch: l.BestEpoch, Stop: l.Stop}
	if l.Val != nil {
		v := l.Val.metrics()
		e.Val = &v
	}
	return e
}

// stepLine is one step line of metrics.jsonl ("type": "step").
type stepLine struct {
	Type          string `json:"type"`
	Time          string `json:"time"`
	Epoch         int    `json:"epoch"`
	Batch         int    `json:"batch"`
	Batches       int    `json:"batches"`
	Step          int    `json:"step"`
	Stage         string `json:"stage"`
	Samples       int    `json:"samples"`
	Loss          jfloat `json:"loss"`
	Accuracy      jfloat `json:"accuracy"`
	LR            jfloat `json:"lr"`
	LossScale     jfloat `json:"loss_scale"`
	GradNorm      jfloat `json:"grad_norm"`
	SamplesPerSec jfloat `json:"samples_per_sec"`
	Updated       bool   `json:"updated"`
	Skipped       bool   `json:"skipped"`
}

// MetricsFile is the name of the metrics log inside a run directory.
const MetricsFile = "metrics.jsonl"

// metricsLog appends JSON lines to a run's metrics.jsonl: a step line every
// `every` micro-batches (0: none) and a line per epoch. Each line is one
// write, so the file's size is always a whole number of lines and a
// checkpoint can record it (see openMetricsLog).
type metricsLog struct {
	f     *os.File
	every int
	now   func() time.Time
}

// openMetricsLog opens path for appending. With truncateTo ≥ 0 and a longer
// file, the file is first cut to truncateTo bytes: on resume, lines written
// after the checkpoint was taken (by a run that then died) are dropped so
// the log describes the resumed run exactly once.
func openMetricsLog(path string, every int, truncateTo int64) (*metricsLog, error) {
	if truncateTo >= 0 {
		if st, err := os.Stat(path); err == nil && st.Size() > truncateTo {
			if err := os.Truncate(path, truncateTo); err != nil {
				return nil, fmt.Errorf("metrics log: %w", err)
			}
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics log: %w (is the run directory writable?)", err)
	}
	return &metricsLog{f: f, every: every, now: time.Now}, nil
}

func (l *metricsLog) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("metrics log: %w", err)
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("metrics log: %w", err)
	}
	return nil
}

func (l *metricsLog) stamp() string { return l.now().UTC().Format(time.RFC3339Nano) }

// step writes s when its batch number is a multiple of every.
func (l *metricsLog) step(s StepInfo) error {
	if l.every <= 0 || s.Batch%l.every != 0 {
		return nil
	}
	return l.write(stepLine{Type: "step", Time: l.stamp(), Epoch: s.Epoch, Batch: s.Batch, Batches: s.Batches,
		Step: s.Step, Stage: s.Stage, Samples: s.Samples, Loss: jfloat(s.Loss), Accuracy: jfloat(s.Accuracy),
		LR: jfloat(s.LR), LossScale: jfloat(s.LossScale), GradNorm: jfloat(s.GradNorm),
		SamplesPerSec: jfloat(s.SamplesPerSec), Updated: s.Updated, Skipped: s.Skipped})
}

func (l *metricsLog) epoch(e EpochInfo) error {
	line := toEpochLine(e)
	line.Time = l.stamp()
	return l.write(line)
}

// size is the file's current length (the resume point of the log).
func (l *metricsLog) size() (int64, error) {
	st, err := l.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("metrics log: %w", err)
	}
	return st.Size(), nil
}

func (l *metricsLog) close() error { return l.f.Close() }
