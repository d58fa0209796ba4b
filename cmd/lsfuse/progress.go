package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/lsfuse/lsfuse/pkg/train"
)

// newProgress returns the hook that reports training progress on w: a
// live bar per epoch (loss, accuracy, learning rate, samples/s, ETA) when
// w is a terminal, else a plain line every logEvery batches (0: epoch lines
// only). Both print one summary line per epoch.
func newProgress(w io.Writer, tty bool, logEvery int) train.Hook {
	p := &progress{w: w, tty: tty, every: logEvery, now: time.Now}
	return train.HookFuncs{Start: p.start, Step: p.step, EpochEnd: p.epochEnd, Finish: p.finish}
}

type progress struct {
	w     io.Writer
	tty   bool
	every int
	now   func() time.Time

	info    train.StartInfo
	started time.Time
	done    int // batches trained by this process
	bar     *progressbar.ProgressBar
	epoch   int
}

func (p *progress) start(i train.StartInfo) error {
	p.info = i
	p.started = p.now()
	verb := "training"
	if i.Resumed {
		verb = fmt.Sprintf("resuming at epoch %d batch %d:", i.StartEpoch, i.StartBatch)
	}
	val := ""
	if i.ValSamples > 0 {
		val = fmt.Sprintf(", validating on %d", i.ValSamples)
	}
	_, err := fmt.Fprintf(p.w, "%s %d parameters on %d samples%s: %d epochs × %d batches\n",
		verb, i.NumParams, i.TrainSamples, val, i.Epochs, i.BatchesPerEpoch)
	return err
}

// eta estimates the time left from this process's mean time per batch.
func (p *progress) eta(s train.StepInfo) time.Duration {
	if p.done == 0 {
		return 0
	}
	left := (p.info.Epochs-s.Epoch)*s.Batches + (s.Batches - s.Batch)
	per := p.now().Sub(p.started) / time.Duration(p.done)
	return (per * time.Duration(left)).Round(time.Second)
}

func (p *progress) step(s train.StepInfo) error {
	p.done++
	stats := fmt.Sprintf("loss %.4f acc %.3f lr %.2e %.0f samples/s", s.Loss, s.Accuracy, s.LR, s.SamplesPerSec)
	if p.tty {
		if p.bar == nil || s.Epoch != p.epoch {
			p.epoch = s.Epoch
			p.bar = progressbar.NewOptions(s.Batches,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetWidth(20),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
				progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", s.Epoch, p.info.Epochs)))
			if s.Batch > 1 {
				_ = p.bar.Set(s.Batch - 1)
			}
		}
		p.bar.Describe(fmt.Sprintf("epoch %d/%d %s", s.Epoch, p.info.Epochs, stats))
		return p.bar.Add(1)
	}
	if p.every > 0 && (s.Batch%p.every == 0 || s.Batch == s.Batches) {
		_, err := fmt.Fprintf(p.w, "epoch %d/%d batch %d/%d %s eta %s\n", s.Epoch, p.info.Epochs, s.Batch, s.Batches, stats, p.eta(s))
		return err
	}
	return nil
}

func (p *progress) epochEnd(e train.EpochInfo) error {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d/%d", e.Epoch, e.Epochs)
	if e.Stage != "" && e.Stage != "all" { // "all": no stages configured
		fmt.Fprintf(&b, " [%s]", e.Stage)
	}
	fmt.Fprintf(&b, ": train loss %.4f acc %.3f", e.Train.Loss, e.Train.Accuracy)
	if e.Val != nil {
		fmt.Fprintf(&b, ", val loss %.4f acc %.3f", e.Val.Loss, e.Val.Accuracy)
	}
	fmt.Fprintf(&b, ", lr %.2e, %.0f samples/s, %.1fs", e.LR, e.SamplesPerSec, e.Seconds)
	if e.SkippedSteps > 0 {
		fmt.Fprintf(&b, ", %d steps skipped (non-finite)", e.SkippedSteps)
	}
	if e.Improved {
		fmt.Fprintf(&b, " *best %s %.4f", e.Monitor, e.MonitorValue)
	}
	if e.Stop {
		b.WriteString(" (early stop)")
	}
	_, err := fmt.Fprintln(p.w, b.String())
	return err
}

func (p *progress) finish(f train.FinishInfo) error {
	if p.bar != nil {
		_ = p.bar.Exit()
		p.bar = nil
	}
	return nil
}
