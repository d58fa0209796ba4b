package train

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Optimiser names (Config.Optimizer).
const (
	OptAdam  = "adam"
	OptAdamW = "adamw"
	OptSGD   = "sgd"
)

// Monitor names (EarlyStopConfig.Monitor): a metric of the training or the
// validation pass of an epoch.
const (
	MonitorValLoss       = "val_loss"
	MonitorValAccuracy   = "val_accuracy"
	MonitorValMacroF1    = "val_macro_f1"
	MonitorValMSE        = "val_mse"
	MonitorValMAE        = "val_mae"
	MonitorTrainLoss     = "train_loss"
	MonitorTrainAccuracy = "train_accuracy"
)

// monitorModes maps every valid monitor to the mode that improves it.
var monitorModes = map[string]string{
	MonitorValLoss: "min", MonitorValAccuracy: "max", MonitorValMacroF1: "max",
	MonitorValMSE: "min", MonitorValMAE: "min",
	MonitorTrainLoss: "min", MonitorTrainAccuracy: "max",
}

// Config is the training run: optimiser, schedule, accumulation, loss
// scaling, stages, early stopping, data loading and checkpointing. Zero
// values are usable where stated; DefaultConfig returns the values the
// command line starts from. Validate reports every problem with the
// config-file key (train.<key>) it comes from.
type Config struct {
	// Epochs (epochs) is the number of passes over the training set, ≥ 0.
	// 0 means the sum of Stages' epochs (an error without stages). With
	// stages, epochs past the last stage stay in the last stage, and a
	// smaller value cuts the stages short.
	Epochs int
	// BatchSize (batch_size) is the number of samples per micro-batch, ≥ 1.
	// Default 32. The training graph is built for this size (and once more
	// for a short last batch unless DropLast).
	BatchSize int
	// Optimizer (optimizer) is "adam" (default when ""), "adamw" (decoupled
	// weight decay) or "sgd" (with Momentum and Nesterov).
	Optimizer string
	// LR (lr) is the base learning rate, > 0. Default 1e-3. The schedule
	// starts from it unless Schedule.Base is set.
	LR float64
	// WeightDecay (weight_decay) is ≥ 0, default 0: L2 added to the
	// gradient for adam and sgd, decoupled w ← w − lr·wd·w for adamw.
	WeightDecay float64
	// Momentum (momentum) is SGD's momentum in [0, 1), default 0 (plain
	// SGD). Ignored by adam/adamw.
	Momentum float64
	// Nesterov (nesterov) selects Nesterov momentum for SGD (needs
	// Momentum > 0). Default false.
	Nesterov bool
	// Schedule (schedule) maps the optimiser step to a learning rate. Zero
	// value: constant at LR. Base 0 means LR; cosine's Total 0 means the
	// run's number of optimiser steps.
	Schedule ScheduleConfig
	// ModalityLR (modality_lr) multiplies the learning rate of every
	// parameter under a name prefix (a modality name such as "vision", or
	// any dotted scope such as "fusion" or "vision.encoder"); the longest
	// matching prefix wins, unmatched parameters use 1. Multipliers must be
	// ≥ 0 (0 freezes the group in effect). Nil: every multiplier is 1.
	ModalityLR map[string]float64
	// ClipNorm (clip_norm) is the global L2 gradient norm limit, ≥ 0
	// (torch clip_grad_norm_). 0 disables clipping. Applied after
	// averaging and unscaling, before the optimiser step.
	ClipNorm float64
	// AccumSteps (accum_steps) is the number of micro-batches whose
	// gradients are summed before one optimiser step, ≥ 0; 0 and 1 mean no
	// accumulation. The window's gradient is the sample-weighted mean, so
	// it equals the gradient of one batch of all its samples; the last
	// window of an epoch may be shorter and is averaged over its true
	// length. Windows never cross an epoch boundary.
	AccumSteps int
	// LossScale (loss_scale) is dynamic loss scaling.
	LossScale LossScaleConfig
	// Stages (stages) are progressive training stages, run in order. Empty:
	// one stage training every parameter for Epochs.
	Stages []StageConfig
	// EarlyStop (early_stop) chooses the monitored metric (also the one
	// best.ckpt is chosen by) and when to stop.
	EarlyStop EarlyStopConfig
	// Seed (seed) names the shuffling order of every epoch and the noise
	// (dropout, modality dropout) of every training graph. Any value, 0
	// included. A resumed run takes the checkpoint's seed.
	Seed int64
	// DropLast (drop_last) drops the training set's last batch of an epoch
	// when it is shorter than BatchSize. False (default) trains on it with
	// a second graph built for its size, so every sample counts exactly
	// once. Validation never drops samples.
	DropLast bool
	// Workers (workers) is the number of goroutines decoding samples, ≥ 0;
	// 0 means 1. The batches do not depend on it.
	Workers int
	// Prefetch (prefetch) is how many batches are decoded ahead, ≥ 0;
	// 0 means none.
	Prefetch int
	// Cache (cache) keeps decoded samples in memory after the first epoch.
	// Default false.
	Cache bool
	// LogEvery (log_every) writes a step line to metrics.jsonl every
	// LogEvery micro-batches, ≥ 0; 0 means only epoch lines. Hooks see every
	// step regardless.
	LogEvery int
	// CheckpointEvery (checkpoint_every) writes epoch-N.ckpt every
	// CheckpointEvery epochs, ≥ 0; 0 writes none. last.ckpt (every epoch
	// and on interruption) and best.ckpt (on improvement) are always
	// written when the run has a directory.
	CheckpointEvery int
	// KeepLast (keep_last) keeps only the newest KeepLast epoch-N.ckpt
	// files, ≥ 0; 0 keeps them all.
	KeepLast int
}

// LossScaleConfig is dynamic loss scaling (torch.cuda.amp.GradScaler's
// policy): the loss is multiplied by the scale S before the backward pass
// and the gradients divided by S; a step whose gradients hold Inf or NaN
// is skipped, its gradients zeroed and S halved; S doubles after
// GrowthInterval good steps in a row.
type LossScaleConfig struct {
	// Enabled (enabled) turns loss scaling on. Default false: S stays 1,
	// and a step with non-finite gradients is never applied (an error or a
	// skip, by EarlyStop.StopOnNonFinite).
	Enabled bool
	// Init (init) is the initial scale S, > 0. 0 means 65536.
	Init float64
	// GrowthInterval (growth_interval) is the number of good steps in a
	// row before S doubles, ≥ 0. 0 means 2000.
	GrowthInterval int
}

// StageConfig is one progressive training stage: a contiguous block of
// epochs with its own set of trainable parameters and learning-rate scale.
// Stage changes rebuild the training graph, so frozen parameters are not
// even differentiated.
type StageConfig struct {
	// Name (name) labels the stage in metrics and hooks. "" means
	// "stage<i>" (1-based).
	Name string
	// Epochs (epochs) is the stage's length in epochs, ≥ 0. 0 is allowed
	// only for the last stage and means "until Config.Epochs".
	Epochs int
	// Freeze (freeze) lists parameter-name prefixes (dotted path segments:
	// "vision" freezes "vision.*", "fusion.attn" freezes that scope) that
	// get no update during the stage.
	Freeze []string
	// Train (train) lists prefixes to train; when non-empty every other
	// parameter is frozen. Freeze applies after Train (it can carve a
	// frozen part out of a trained one). Empty: everything not in Freeze
	// trains.
	Train []string
	// LRScale (lr_scale) multiplies the learning rate during the stage,
	// ≥ 0. 0 means 1.
	LRScale float64
}

// EarlyStopConfig chooses the metric that decides the best epoch and when
// training stops early.
type EarlyStopConfig struct {
	// Monitor (monitor) is one of val_loss, val_accuracy, val_macro_f1,
	// val_mse, val_mae, train_loss, train_accuracy. "" means val_loss with
	// a validation set and train_loss without one. A val_* monitor without
	// a validation set is an error.
	Monitor string
	// Mode (mode) is "min" or "max"; "" takes the monitor's natural
	// direction (min for losses and errors, max for accuracy and F1).
	Mode string
	// Patience (patience) stops training after this many epochs in a row
	// without an improvement of at least MinDelta, ≥ 0. 0 never stops early
	// (the monitor still selects best.ckpt).
	Patience int
	// MinDelta (min_delta) is the smallest change that counts as an
	// improvement, ≥ 0, in the monitored metric's unit. Default 0.
	MinDelta float64
	// StopOnNonFinite (stop_on_non_finite) ends the run with an error when
	// a training batch's loss (before scaling) or the validation loss is
	// NaN or Inf, and, without loss scaling, when a step's gradients are
	// (with loss scaling that is an overflow: the step is skipped). False
	// skips such a step (its gradients are zeroed, it is counted in
	// EpochInfo.SkippedSteps) and carries on. Default (DefaultConfig) true;
	// the zero value false.
	StopOnNonFinite bool
}

// DefaultConfig returns the defaults the command line starts from: 10
// epochs of batch 32, Adam at 1e-3, constant schedule, no accumulation, no
// loss scaling, stop on a non-finite loss, last/best checkpoints, step
// lines every 10 batches.
func DefaultConfig() Config {
	return Config{
		Epochs:    10,
		BatchSize: 32,
		Optimizer: OptAdam,
		LR:        1e-3,
		LogEvery:  10,
		EarlyStop: EarlyStopConfig{StopOnNonFinite: true},
	}
}

// withDefaults returns cfg with the documented zero-value meanings
// resolved (not the monitor: it depends on the validation set).
func (cfg Config) withDefaults() Config {
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 32
	}
	if cfg.Optimizer == "" {
		cfg.Optimizer = OptAdam
	}
	if cfg.LR == 0 {
		cfg.LR = 1e-3
	}
	if cfg.AccumSteps == 0 {
		cfg.AccumSteps = 1
	}
	if cfg.LossScale.Init == 0 {
		cfg.LossScale.Init = 65536
	}
	if cfg.LossScale.GrowthInterval == 0 {
		cfg.LossScale.GrowthInterval = 2000
	}
	if cfg.Schedule.Base == 0 {
		cfg.Schedule.Base = cfg.LR
	}
	if cfg.Epochs == 0 {
		for _, s := range cfg.Stages {
			cfg.Epochs += s.Epochs
		}
	}
	return cfg
}

// Validate checks every field against its documented range and returns
// all problems at once, each naming its key (train.<key>).
func (cfg Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("train.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	finiteNonNeg := func(v float64) bool { return v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }
	if cfg.Epochs < 0 {
		bad("epochs", "must be ≥ 0, got %d", cfg.Epochs)
	}
	if cfg.Epochs == 0 && stageEpochs(cfg.Stages) == 0 {
		bad("epochs", "must be > 0 (or give stages with epochs)")
	}
	if cfg.BatchSize < 0 {
		bad("batch_size", "must be ≥ 1, got %d", cfg.BatchSize)
	}
	switch cfg.Optimizer {
	case "", OptAdam, OptAdamW, OptSGD:
	default:
		bad("optimizer", "unknown optimizer %q (valid: adam, adamw, sgd)", cfg.Optimizer)
	}
	if !finiteNonNeg(cfg.LR) {
		bad("lr", "must be > 0, got %g", cfg.LR)
	}
	if !finiteNonNeg(cfg.WeightDecay) {
		bad("weight_decay", "must be ≥ 0, got %g", cfg.WeightDecay)
	}
	if cfg.Momentum < 0 || cfg.Momentum >= 1 || math.IsNaN(cfg.Momentum) {
		bad("momentum", "must be in [0, 1), got %g", cfg.Momentum)
	}
	if cfg.Nesterov && cfg.Momentum == 0 && cfg.Optimizer == OptSGD {
		bad("nesterov", "needs train.momentum > 0")
	}
	if _, err := NewSchedule(cfg.withDefaults().Schedule.withTotal(1 << 30)); err != nil {
		bad("schedule", "%v", err)
	}
	for _, k := range sortedKeys(cfg.ModalityLR) {
		if v := cfg.ModalityLR[k]; !finiteNonNeg(v) {
			bad("modality_lr."+k, "multiplier must be ≥ 0, got %g", v)
		}
	}
	if !finiteNonNeg(cfg.ClipNorm) {
		bad("clip_norm", "must be ≥ 0 (0 disables clipping), got %g", cfg.ClipNorm)
	}
	if cfg.AccumSteps < 0 {
		bad("accum_steps", "must be ≥ 0 (0 and 1 mean no accumulation), got %d", cfg.AccumSteps)
	}
	if !finiteNonNeg(cfg.LossScale.Init) {
		bad("loss_scale.init", "must be > 0 (0 means 65536), got %g", cfg.LossScale.Init)
	}
	if cfg.LossScale.GrowthInterval < 0 {
		bad("loss_scale.growth_interval", "must be ≥ 0 (0 means 2000), got %d", cfg.LossScale.GrowthInterval)
	}
	for i, s := range cfg.Stages {
		key := fmt.Sprintf("stages[%d]", i)
		if s.Epochs < 0 {
			bad(key+".epochs", "must be ≥ 0, got %d", s.Epochs)
		}
		if s.Epochs == 0 && i != len(cfg.Stages)-1 {
			bad(key+".epochs", "must be > 0 (only the last stage may use 0, meaning until train.epochs)")
		}
		if !finiteNonNeg(s.LRScale) {
			bad(key+".lr_scale", "must be ≥ 0 (0 means 1), got %g", s.LRScale)
		}
		for j, p := range append(append([]string(nil), s.Train...), s.Freeze...) {
			if strings.TrimSpace(p) == "" || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") {
				bad(key, "prefix %d %q is not a dotted parameter path such as \"vision\" or \"fusion.attn\"", j, p)
			}
		}
	}
	es := cfg.EarlyStop
	if es.Monitor != "" {
		if _, ok := monitorModes[es.Monitor]; !ok {
			bad("early_stop.monitor", "unknown metric %q (valid: %s)", es.Monitor, strings.Join(sortedKeys(monitorModes), ", "))
		}
	}
	switch es.Mode {
	case "", "min", "max":
	default:
		bad("early_stop.mode", "must be min or max, got %q", es.Mode)
	}
	if es.Patience < 0 {
		bad("early_stop.patience", "must be ≥ 0 (0 never stops early), got %d", es.Patience)
	}
	if !finiteNonNeg(es.MinDelta) {
		bad("early_stop.min_delta", "must be ≥ 0, got %g", es.MinDelta)
	}
	for key, v := range map[string]int{"workers": cfg.Workers, "prefetch": cfg.Prefetch, "log_every": cfg.LogEvery,
		"checkpoint_every": cfg.CheckpointEvery, "keep_last": cfg.KeepLast} {
		if v < 0 {
			bad(key, "must be ≥ 0, got %d", v)
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

func stageEpochs(stages []StageConfig) int {
	n := 0
	for _, s := range stages {
		n += s.Epochs
	}
	return n
}

// withTotal returns the schedule with a cosine Total filled in when unset.
func (s ScheduleConfig) withTotal(total int) ScheduleConfig {
	if s.Total == 0 {
		s.Total = total
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
