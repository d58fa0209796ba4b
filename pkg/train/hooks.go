package train

import "errors"

// Metrics are the aggregate metrics of one pass over a set of samples
// (a training epoch or an evaluation). Which fields are meaningful depends
// on the network's head: classification fills Accuracy, MacroF1 and Top5;
// regression fills MSE and MAE; tokens fills Accuracy over the positions
// that are not the ignore index. The others stay 0.
type Metrics struct {
	// Loss is the sample-weighted mean of the batches' mean losses (the
	// unscaled loss the network reports).
	Loss float64 `json:"loss"`
	// Accuracy is the fraction of correct argmax predictions, in [0, 1].
	Accuracy float64 `json:"accuracy"`
	// MacroF1 is the unweighted mean of per-class F1 (sklearn's
	// average="macro", zero_division=0), in [0, 1].
	MacroF1 float64 `json:"macro_f1"`
	// Top5 is the fraction of samples whose label is among the 5 highest
	// scores (among all of them with fewer than 5 classes).
	Top5 float64 `json:"top5"`
	// MSE and MAE compare regression outputs with targets element-wise.
	MSE float64 `json:"mse"`
	MAE float64 `json:"mae"`
	// N is the number of samples seen.
	N int `json:"n"`
	// BLEU4 is the corpus BLEU-4 of generated captions against the label
	// captions, in [0, 1] (caption heads, Evaluate only; see BLEU).
	BLEU4 float64 `json:"bleu4,omitempty"`
}

// StartInfo tells hooks what a run is about to do.
type StartInfo struct {
	// Epochs is the run's total number of epochs.
	Epochs int
	// StartEpoch is the 1-based epoch the run begins in, and StartBatch the
	// number of its batches already done (both past the first only when
	// resuming).
	StartEpoch, StartBatch int
	// BatchesPerEpoch is the number of training micro-batches per epoch and
	// StepsPerEpoch the number of optimiser steps (accumulation windows).
	BatchesPerEpoch, StepsPerEpoch int
	// TotalSteps is the run's number of optimiser steps; Step the number
	// already taken.
	TotalSteps, Step int
	// TrainSamples and ValSamples are the sizes of the two sets (0: no
	// validation set).
	TrainSamples, ValSamples int
	// NumParams is the number of trainable parameters.
	NumParams int
	// Resumed reports whether the run continues a checkpoint.
	Resumed bool
	// RunDir is the run directory ("" when nothing is written).
	RunDir string
}

// StepInfo reports one training micro-batch.
type StepInfo struct {
	// Epoch is 1-based; Batch is the 1-based number of this micro-batch in
	// its epoch, of Batches.
	Epoch, Batch, Batches int
	// Step is the number of optimiser steps (accumulation windows, skipped
	// ones included) completed after this batch.
	Step int
	// Stage is the name of the current stage.
	Stage string
	// Samples is the batch's number of samples.
	Samples int
	// Loss is the batch's mean loss before scaling; Accuracy its accuracy
	// (classification and tokens heads, else 0).
	Loss, Accuracy float64
	// LR is the base learning rate of the step this batch belongs to
	// (schedule × stage scale, before per-modality multipliers).
	LR float64
	// LossScale is the loss scale S this batch was run with (1 when loss
	// scaling is off).
	LossScale float64
	// GradNorm is the global gradient norm before clipping; set when
	// Updated, else 0.
	GradNorm float64
	// SamplesPerSec is the training throughput of this batch (wall clock).
	SamplesPerSec float64
	// Updated reports whether this batch closed an accumulation window and
	// the optimiser stepped; Skipped whether that step was skipped because
	// the gradients (or the loss) were not finite.
	Updated, Skipped bool
}

// EpochInfo reports a finished epoch.
type EpochInfo struct {
	// Epoch is 1-based, of Epochs.
	Epoch, Epochs int
	// Stage is the name of the epoch's stage.
	Stage string
	// Step is the number of optimiser steps completed.
	Step int
	// Train holds the training metrics of the epoch (computed in training
	// mode, over the batches as they were trained).
	Train Metrics
	// Val holds the validation metrics (evaluation mode, every validation
	// sample once); nil without a validation set.
	Val *Metrics
	// LR and LossScale are the values at the end of the epoch.
	LR, LossScale float64
	// SkippedSteps counts the epoch's optimiser steps skipped for
	// non-finite gradients or loss.
	SkippedSteps int
	// SamplesPerSec is the epoch's training throughput.
	SamplesPerSec float64
	// Seconds is the epoch's wall-clock duration (training and validation).
	Seconds float64
	// SpikeRates is the mean firing rate of every spiking layer over the
	// epoch's training batches, keyed by the layer's scope path;
	// ModalitySpikeRates the mean over each modality's layers.
	SpikeRates, ModalitySpikeRates map[string]float64
	// ModalityWeights are the learned, normalised modality weights (1/M
	// each when the fusion has none).
	ModalityWeights map[string]float64
	// Monitor is the monitored metric's name and MonitorValue its value
	// this epoch.
	Monitor      string
	MonitorValue float64
	// Improved reports whether this epoch is the new best; Best and
	// BestEpoch describe the best so far.
	Improved  bool
	Best      float64
	BestEpoch int
	// Stop reports that early stopping ends the run after this epoch.
	Stop bool
}

// FinishInfo reports the end of a run: its result, and the error that
// ended it (nil on success).
type FinishInfo struct {
	Result Result
	Err    error
}

// Result summarises a run.
type Result struct {
	// Epochs is the number of epochs completed (resumed ones included) and
	// Steps the number of optimiser steps.
	Epochs, Steps int
	// Monitor names the monitored metric; Best is its best value, reached
	// in the 1-based BestEpoch (0 if no epoch finished).
	Monitor   string
	Best      float64
	BestEpoch int
	// EarlyStopped reports that early stopping ended the run.
	EarlyStopped bool
	// Last is the report of the last finished epoch.
	Last EpochInfo
	// History holds every finished epoch's report, resumed ones included.
	History []EpochInfo
	// LastCheckpoint and BestCheckpoint are the paths written ("" without a
	// run directory).
	LastCheckpoint, BestCheckpoint string
}

// Hook observes a run; the trainer itself prints nothing. The command line
// attaches progress bars and log lines as hooks. A hook error ends the run
// with that error (after a last.ckpt is written, so it can be resumed);
// cancelling the context passed to Fit from a hook interrupts the run the
// same way. Hooks run on the training goroutine, one at a time, in the
// order given.
type Hook interface {
	// OnStart is called once before the first batch.
	OnStart(StartInfo) error
	// OnStep is called after every training micro-batch.
	OnStep(StepInfo) error
	// OnEpochEnd is called after every epoch's validation and checkpoints.
	OnEpochEnd(EpochInfo) error
	// OnFinish is called once at the end (after OnStart), whatever ended
	// the run.
	OnFinish(FinishInfo) error
}

// HookFuncs is a Hook made of optional functions: a nil field does nothing.
type HookFuncs struct {
	Start    func(StartInfo) error
	Step     func(StepInfo) error
	EpochEnd func(EpochInfo) error
	Finish   func(FinishInfo) error
}

// OnStart calls Start when set.
func (h HookFuncs) OnStart(i StartInfo) error {
	if h.Start == nil {
		return nil
	}
	return h.Start(i)
}

// OnStep calls Step when set.
func (h HookFuncs) OnStep(i StepInfo) error {
	if h.Step == nil {
		return nil
	}
	return h.Step(i)
}

// OnEpochEnd calls EpochEnd when set.
func (h HookFuncs) OnEpochEnd(i EpochInfo) error {
	if h.EpochEnd == nil {
		return nil
	}
	return h.EpochEnd(i)
}

// OnFinish calls Finish when set.
func (h HookFuncs) OnFinish(i FinishInfo) error {
	if h.Finish == nil {
		return nil
	}
	return h.Finish(i)
}

// hooks runs a list of hooks in order and stops at the first error.
type hooks []Hook

func (hs hooks) start(i StartInfo) error {
	for _, h := range hs {
		if err := h.OnStart(i); err != nil {
			return err
		}
	}
	return nil
}

func (hs hooks) step(i StepInfo) error {
	for _, h := range hs {
		if err := h.OnStep(i); err != nil {
			return err
		}
	}
	return nil
}

func (hs hooks) epochEnd(i EpochInfo) error {
	for _, h := range hs {
		if err := h.OnEpochEnd(i); err != nil {
			return err
		}
	}
	return nil
}

// finish calls every hook's OnFinish, even after one fails, and joins
// their errors.
func (hs hooks) finish(i FinishInfo) error {
	var errs []error
	for _, h := range hs {
		errs = append(errs, h.OnFinish(i))
	}
	return errors.Join(errs...)
}
