package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/safetensors"
)

// stateful is an optimiser whose moments can be saved in a checkpoint.
type stateful interface {
	// State returns the optimiser's per-parameter state as tensors named
	// "<kind>/<what>/<parameter>".
	State() map[string]safetensors.Tensor
	// LoadState replaces the state with one State returned.
	LoadState(map[string]safetensors.Tensor) error
}

var _ stateful = (*Adam)(nil)
var _ stateful = (*SGD)(nil)

// State returns Adam's moments and step counts: "adam/m/<param>",
// "adam/v/<param>" (float64, the parameter's length) and "adam/t/<param>"
// (the parameter's step count, one float64).
func (a *Adam) State() map[string]safetensors.Tensor {
	out := map[string]safetensors.Tensor{}
	for name, m := range a.m {
		out["adam/m/"+name] = f64Tensor(m)
		out["adam/v/"+name] = f64Tensor(a.v[name])
		out["adam/t/"+name] = f64Tensor([]float64{float64(a.step[name])})
	}
	return out
}

// LoadState restores what State returned (other keys are ignored). The
// step counts and moments continue exactly.
func (a *Adam) LoadState(state map[string]safetensors.Tensor) error {
	m, v, step := map[string][]float64{}, map[string][]float64{}, map[string]int{}
	for key, t := range state {
		name, ok := strings.CutPrefix(key, "adam/m/")
		if !ok {
			continue
		}
		vt, okv := state["adam/v/"+name]
		tt, okt := state["adam/t/"+name]
		if !okv || !okt || t.F64 == nil || vt.F64 == nil || len(t.F64) != len(vt.F64) || len(tt.F64) != 1 {
			return fmt.Errorf("adam state of %s is incomplete or malformed", name)
		}
		m[name] = append([]float64(nil), t.F64...)
		v[name] = append([]float64(nil), vt.F64...)
		step[name] = int(tt.F64[0])
	}
	a.m, a.v, a.step = m, v, step
	return nil
}

// State returns SGD's momentum buffers as "sgd/buf/<param>" (float64).
func (s *SGD) State() map[string]safetensors.Tensor {
	out := map[string]safetensors.Tensor{}
	for name, b := range s.buf {
		out["sgd/buf/"+name] = f64Tensor(b)
	}
	return out
}

// LoadState restores what State returned (other keys are ignored).
func (s *SGD) LoadState(state map[string]safetensors.Tensor) error {
	buf := map[string][]float64{}
	for key, t := range state {
		if name, ok := strings.CutPrefix(key, "sgd/buf/"); ok {
			if t.F64 == nil {
				return fmt.Errorf("sgd state of %s is not float64", name)
			}
			buf[name] = append([]float64(nil), t.F64...)
		}
	}
	s.buf = buf
	return nil
}

func f64Tensor(v []float64) safetensors.Tensor {
	return safetensors.Tensor{Shape: []int{len(v)}, F64: append([]float64(nil), v...)}
}

// Checkpoint metadata keys written by the trainer.
const (
	metaState     = "train.state"
	metaOptimizer = "train.optimizer"
	accumPrefix   = "accum/"
)

// runState is everything a checkpoint must hold, besides weights and
// optimiser moments, to continue a run exactly; it is stored as JSON in
// the checkpoint's metadata ("train.state").
type runState struct {
	// Seed, BatchSize, AccumSteps, DropLast and Optimizer must match on
	// resume (they define the batches and the update); Seed is taken from
	// the checkpoint.
	Seed       int64  `json:"seed"`
	BatchSize  int    `json:"batch_size"`
	AccumSteps int    `json:"accum_steps"`
	DropLast   bool   `json:"drop_last"`
	Optimizer  string `json:"optimizer"`
	// Epoch is the 0-based epoch in progress (the next to start when
	// Batch is 0), Batch the number of its batches done, Step the number of
	// optimiser steps (windows) done.
	Epoch int `json:"epoch"`
	Batch int `json:"batch"`
	Step  int `json:"step"`
	// Scale and Good are the loss scaler's scale and good-step count.
	Scale jfloat `json:"scale"`
	Good  int    `json:"good"`
	// The open accumulation window: summed weights Σn/B, micro-batches,
	// and whether a batch had a non-finite loss. Its summed gradients are
	// tensors "accum/<param>".
	WindowWeight  jfloat `json:"window_weight"`
	WindowBatches int    `json:"window_batches"`
	WindowBad     bool   `json:"window_bad"`
	// The epoch in progress: training metrics, skipped steps, and the
	// sample-weighted sums of spike rates (modality → layer → Σ rate·n).
	Train       *metricAcc                   `json:"train,omitempty"`
	Skipped     int                          `json:"skipped"`
	Spikes      map[string]map[string]jfloat `json:"spikes,omitempty"`
	SpikeWeight jfloat                       `json:"spike_weight"`
	// Stop is the early-stopping state; Done is set once it ended the run.
	Stop earlyStop `json:"early_stop"`
	Done bool      `json:"done"`
	// MetricsOffset is metrics.jsonl's length when the checkpoint was
	// written; History the finished epochs.
	MetricsOffset int64       `json:"metrics_offset"`
	History       []epochLine `json:"history"`
}

// spikeMeans turns the epoch's sums into mean rates per layer and per
// modality (the mean over its layers).
func (s *runState) spikeMeans() (layers, modalities map[string]float64) {
	if s.SpikeWeight == 0 || len(s.Spikes) == 0 {
		return nil, nil
	}
	layers, modalities = map[string]float64{}, map[string]float64{}
	for mod, ls := range s.Spikes {
		sum := 0.0
		for l, v := range ls {
			r := float64(v / s.SpikeWeight)
			layers[l] = r
			sum += r
		}
		if len(ls) > 0 {
			modalities[mod] = sum / float64(len(ls))
		}
	}
	return layers, modalities
}

// save writes the run's state to name inside the run directory,
// atomically (model.SaveCheckpoint: temporary file, fsync, rename).
func (t *Trainer) save(name string) (string, error) {
	if err := t.syncHost(); err != nil {
		return "", fmt.Errorf("checkpoint: device: %w", err)
	}
	state := t.opt.State()
	if t.st.WindowBatches > 0 {
		for n, a := range t.acc {
			state[accumPrefix+n] = f64Tensor(a)
		}
	}
	rs := t.st
	rs.Scale, rs.Good = jfloat(t.scaler.Scale), t.scaler.good
	rs.History = make([]epochLine, len(t.history))
	for i, e := range t.history {
		rs.History[i] = toEpochLine(e)
	}
	if t.mlog != nil {
		size, err := t.mlog.size()
		if err != nil {
			return "", err
		}
		rs.MetricsOffset = size
	}
	js, err := json.Marshal(rs)
	if err != nil {
		return "", fmt.Errorf("checkpoint state: %w", err)
	}
	meta := map[string]string{metaState: string(js), metaOptimizer: t.cfg.Optimizer}
	for k, v := range t.opts.Meta {
		meta[k] = v
	}
	path := filepath.Join(t.opts.RunDir, name)
	if err := model.SaveCheckpoint(path, t.store, state, meta); err != nil {
		return "", fmt.Errorf("writing checkpoint: %w", err)
	}
	t.written[name] = path
	return path, nil
}

// ResolveCheckpoint turns a --resume value into a path: "last" and "best"
// name last.ckpt and best.ckpt in runDir; anything else is a path. The
// file must exist.
func ResolveCheckpoint(runDir, spec string) (string, error) {
	path := spec
	switch spec {
	case "":
		return "", fmt.Errorf("resume: no checkpoint given (use last, best or a path)")
	case "last", "best":
		if runDir == "" {
			return "", fmt.Errorf("resume %s: no run directory to look in (give the checkpoint's path instead)", spec)
		}
		path = filepath.Join(runDir, spec+".ckpt")
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("resume: checkpoint %s: %w (start without --resume for a fresh run)", path, err)
	}
	return path, nil
}

// Resume loads a checkpoint written by a previous run into the trainer's
// store and state, so Fit continues where that run stopped: same epoch and
// batch, optimiser moments, accumulation window, loss scale, early-stopping
// state, history and seed. spec is "last", "best" (in Options.RunDir) or a
// path. The checkpoint must come from the same network (else the error
// lists the mismatched parameters) and a run with the same batch_size,
// accum_steps, drop_last and optimizer; epochs may grow. Lines of
// metrics.jsonl written after the checkpoint are dropped when Fit opens
// the log. On error the store may hold the checkpoint's weights.
func (t *Trainer) Resume(spec string) error {
	if t.fitted {
		return fmt.Errorf("resume: Fit already ran on this trainer")
	}
	path, err := ResolveCheckpoint(t.opts.RunDir, spec)
	if err != nil {
		return err
	}
	state, meta, err := model.LoadCheckpoint(path, t.store)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	js, ok := meta[metaState]
	if !ok {
		return fmt.Errorf("resume: %s holds no training state (weights only): it can be evaluated or exported, not resumed", path)
	}
	var rs runState
	if err := json.Unmarshal([]byte(js), &rs); err != nil {
		return fmt.Errorf("resume: %s: training state: %w", path, err)
	}
	cfg := t.cfg
	for _, c := range []struct {
		key       string
		was, want string
	}{
		{"batch_size", strconv.Itoa(rs.BatchSize), strconv.Itoa(cfg.BatchSize)},
		{"accum_steps", strconv.Itoa(rs.AccumSteps), strconv.Itoa(cfg.AccumSteps)},
		{"drop_last", strconv.FormatBool(rs.DropLast), strconv.FormatBool(cfg.DropLast)},
		{"optimizer", rs.Optimizer, cfg.Optimizer},
	} {
		if c.was != c.want {
			return fmt.Errorf("resume: %s was trained with train.%s %s; resuming with %s would not continue the same run (set train.%s %s)",
				path, c.key, c.was, c.want, c.key, c.was)
		}
	}
	if err := t.opt.LoadState(state); err != nil {
		return fmt.Errorf("resume: %s: %w", path, err)
	}
	if t.opts.Device != nil {
		// Weights the device already holds get the checkpoint's; the
		// moments go to it as the graphs are built (pushAdam).
		if err := t.opts.Device.Upload(); err != nil {
			return fmt.Errorf("resume: device: %w", err)
		}
		t.pushed = nil
	}
	t.acc = nil
	for key, ten := range state {
		if name, ok := strings.CutPrefix(key, accumPrefix); ok {
			if t.acc == nil {
				t.acc = map[string][]float64{}
			}
			t.acc[name] = append([]float64(nil), ten.F64...)
		}
	}
	if rs.WindowBatches > 0 && len(t.acc) == 0 {
		return fmt.Errorf("resume: %s: an accumulation window is open but its gradients are missing", path)
	}
	t.scaler.Scale, t.scaler.good = float64(rs.Scale), rs.Good
	// Keep this run's early-stopping settings, continue the tracked best.
	es := t.st.Stop
	es.Best, es.HasBest, es.BestEpoch, es.Bad = rs.Stop.Best, rs.Stop.HasBest, rs.Stop.BestEpoch, rs.Stop.Bad
	if rs.Stop.Monitor != es.Monitor {
		return fmt.Errorf("resume: %s monitored %s, this run monitors %s (set train.early_stop.monitor %s)", path, rs.Stop.Monitor, es.Monitor, rs.Stop.Monitor)
	}
	rs.Stop = es
	t.history = make([]EpochInfo, len(rs.History))
	for i, l := range rs.History {
		t.history[i] = l.info()
	}
	rs.History = nil
	t.st = rs
	t.cfg.Seed = rs.Seed
	t.metricsOffset = rs.MetricsOffset
	t.replay = rs.Batch
	t.resumed = true
	return nil
}

// epochCheckpoint is the file name of the checkpoint after 1-based epoch n.
func epochCheckpoint(n int) string { return fmt.Sprintf("epoch-%d.ckpt", n) }

// rotateEpochCheckpoints deletes all but the keep newest epoch-N.ckpt
// files of dir (keep 0: keep all).
func rotateEpochCheckpoints(dir string, keep int) error {
	if keep <= 0 {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var epochs []int
	for _, e := range entries {
		s, ok := strings.CutPrefix(e.Name(), "epoch-")
		if !ok {
			continue
		}
		s, ok = strings.CutSuffix(s, ".ckpt")
		if n, err := strconv.Atoi(s); ok && err == nil {
			epochs = append(epochs, n)
		}
	}
	sort.Ints(epochs)
	for len(epochs) > keep {
		if err := os.Remove(filepath.Join(dir, epochCheckpoint(epochs[0]))); err != nil {
			return fmt.Errorf("checkpoint rotation: %w", err)
		}
		epochs = epochs[1:]
	}
	return nil
}
