package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/train"
)

// trainOptions are `lsfuse train`'s inputs.
type trainOptions struct {
	IO     *IOStreams
	Config configFlags
	// Resume is last, best or a checkpoint path ("" starts a fresh run).
	Resume string
}

func newTrainCmd(ios *IOStreams, runF func(context.Context, *trainOptions) error) *cobra.Command {
	opts := &trainOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a model from a YAML experiment",
		Long: `Train builds the datasets, the model and the trainer an experiment describes,
and writes the run to <run.dir>/<run.name>/: config.yaml (the resolved
experiment), stats.json (the training split's statistics), metrics.jsonl,
last.ckpt, best.ckpt and PNG curves. Progress goes to stderr: a live bar on a
terminal, plain lines otherwise. When the data has a test part, best.ckpt is
evaluated on it at the end.

Configuration precedence: defaults < --config files (in order) < LSFUSE_*
environment variables < --set < the shorthand flags.

Interrupt with Ctrl-C: last.ckpt is written and --resume last continues
exactly where the run stopped.

Data-parallel: a binary built with -tags mpi runs as one rank of an MPI job
(mpirun -np N lsfuse train ...): train.batch_size is the global batch, split
over the ranks; only rank 0 prints progress and writes the run directory.
See docs/DISTRIBUTED.md.`,
		Example: `  lsfuse train --config configs/quickstart.yaml
  lsfuse train -c configs/vision_text.yaml --fusion-strategy hybrid --fusion-dim 512 --epochs 50
  lsfuse train -c configs/trimodal.yaml --multimodal --modalities vision audio text
  lsfuse train -c configs/quickstart.yaml --set train.lr=3e-4 --set model.modalities.vision.dropout=0.3
  LSFUSE_TRAIN_EPOCHS=3 lsfuse train -c configs/quickstart.yaml
  lsfuse train -c configs/quickstart.yaml --resume last
  mpirun -np 4 --hostfile hosts lsfuse train -c configs/quickstart.yaml   # built with -tags mpi`,
		Args: func(cmd *cobra.Command, args []string) error { return opts.Config.positional(cmd, args) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Config.Environ = environ()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runTrain(cmd.Context(), opts)
		},
	}
	opts.Config.register(cmd.Flags(), true)
	cmd.Flags().StringVar(&opts.Resume, "resume", "", "continue a run: last, best (in the run directory) or a checkpoint `PATH`")
	return cmd
}

// runTrain trains one experiment, as one rank of a data-parallel job
// when launched by mpirun (see train_dist.go).
func runTrain(ctx context.Context, opts *trainOptions) (err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	comm, err := initRanks()
	if err != nil {
		return err
	}
	defer func() { err = finishRanks(comm, opts.IO.ErrOut, err, recover()) }()
	lead := comm.Rank() == 0 // rank 0 alone prints and writes
	var ckpt *checkpointInfo
	var docs []config.Doc
	if opts.Resume != "" && opts.Resume != "last" && opts.Resume != "best" {
		var err error
		if ckpt, err = readCheckpoint(opts.Resume); err != nil {
			return err
		}
		if len(opts.Config.Files) == 0 {
			docs = append(docs, ckpt.doc()) // the run's own experiment
		}
	}
	cfg, err := opts.Config.loadWith(docs)
	if err != nil {
		return err
	}
	dev, err := openDevice(cfg)
	if err != nil {
		return err
	}
	defer dev.closeInto(&err)
	runDir := filepath.Join(cfg.Run.Dir, cfg.Run.Name)
	var resumePath string
	if opts.Resume != "" {
		if resumePath, err = train.ResolveCheckpoint(runDir, opts.Resume); err != nil {
			return usagef("--resume: %v", err)
		}
		if ckpt == nil {
			if ckpt, err = readCheckpoint(resumePath); err != nil {
				return err
			}
		}
	}
	var stats *data.Stats
	if ckpt != nil {
		stats = ckpt.Stats // the resumed run keeps its class and vocabulary ids
	}
	ds, err := openDatasets(cfg.DataPlan(), stats)
	if err != nil {
		return err
	}
	cfg.SetDataSizes(ds.Outputs, ds.Vocab)
	if ckpt != nil {
		if err := sameModel(cfg, ckpt); err != nil {
			return err
		}
	}
	res, err := config.Resolve(cfg)
	if err != nil {
		return err
	}
	if err := checkSchedule(res.Train, ds.Train.Len()); err != nil {
		return err
	}
	net, err := model.NewNetwork(res.Network)
	if err != nil {
		return usagef("model: %v", err)
	}
	store, err := nn.NewStore(res.Dtype, cfg.Run.Seed)
	if err != nil {
		return err
	}
	meta, yamlCfg, err := checkpointMeta(cfg, ds.Stats)
	if err != nil {
		return err
	}
	var hooks []train.Hook
	if lead {
		hooks = append(hooks, newProgress(opts.IO.ErrOut, opts.IO.ErrTTY, cfg.Train.LogEvery))
	}
	tr, err := train.New(net, store, ds.Train, ds.Val, res.Train, train.Options{RunDir: runDir, Hooks: hooks, Meta: meta, Comm: comm, Device: dev.Train})
	if err != nil {
		if strings.HasPrefix(err.Error(), "train.") {
			return usageError{err}
		}
		return err
	}
	if resumePath != "" {
		if err := tr.Resume(resumePath); err != nil {
			return usageError{err}
		}
	}
	if lead {
		if err := writeRunFiles(runDir, yamlCfg, ds.Stats); err != nil {
			return err
		}
		if dev.Name != "cpu" {
			fmt.Fprintf(opts.IO.ErrOut, "device: %s\n", dev.Name)
		}
		fmt.Fprintf(opts.IO.ErrOut, "run %s: %s", runDir, ds.summary())
		if comm.Size() > 1 {
			fmt.Fprintf(opts.IO.ErrOut, " (%d ranks share each batch of %d)", comm.Size(), res.Train.BatchSize)
		}
		fmt.Fprintln(opts.IO.ErrOut)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	result, err := tr.Fit(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("training interrupted; %s holds the state: continue with --resume last (%w)", filepath.Join(runDir, train.LastCheckpoint), err)
		}
		return err
	}
	if !lead {
		return nil
	}
	return reportRun(opts.IO, net, res, ds, result, dev.Train)
}

// checkSchedule rejects a warm-up longer than a cosine schedule's run,
// which only the training set's size reveals.
func checkSchedule(tc train.Config, samples int) error {
	s := tc.Schedule
	if s.Kind != "cosine" || s.Total > 0 || s.Warmup == 0 {
		return nil
	}
	batches := (samples + tc.BatchSize - 1) / tc.BatchSize
	if tc.DropLast {
		batches = samples / tc.BatchSize
	}
	accum := max(tc.AccumSteps, 1)
	steps := tc.Epochs * ((batches + accum - 1) / accum)
	if steps <= s.Warmup {
		return usagef("train.schedule.warmup: %d warm-up steps, but the run has only %d optimiser steps (%d epochs of %d batches): lower the warm-up or train longer",
			s.Warmup, steps, tc.Epochs, batches)
	}
	return nil
}

// sameModel checks that the experiment builds the checkpoint's model.
func sameModel(cfg *config.Config, ckpt *checkpointInfo) error {
	was, err := config.Load(config.LoadOptions{Docs: []config.Doc{ckpt.doc()}})
	if err != nil {
		return usagef("checkpoint %s: its embedded config no longer loads: %v", ckpt.Path, err)
	}
	if diff := config.ModelDiff(was, cfg); len(diff) > 0 {
		if len(diff) > 5 {
			diff = append(diff[:5], fmt.Sprintf("and %d more", len(diff)-5))
		}
		return usagef("checkpoint %s was trained with a different model (checkpoint ≠ now):\n  %s\nresume with the run's own config (omit --config) or start a fresh run",
			ckpt.Path, strings.Join(diff, "\n  "))
	}
	return nil
}

// writeRunFiles writes the resolved experiment and the data statistics
// into the run directory.
func writeRunFiles(runDir string, yamlCfg []byte, stats *data.Stats) error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(runDir, "config.yaml"), yamlCfg, 0o644); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	if stats != nil {
		if err := stats.Save(filepath.Join(runDir, "stats.json")); err != nil {
			return fmt.Errorf("run directory: %w", err)
		}
	}
	return nil
}

// reportRun prints the run's outcome on stdout and, when the data has a
// test part, evaluates best.ckpt on it (on dev; nil: the CPU).
func reportRun(ios *IOStreams, net *model.Network, res *config.Resolved, ds *datasets, r train.Result, dev train.Device) error {
	out := ios.Out
	fmt.Fprintf(out, "trained %d epochs (%d steps)", r.Epochs, r.Steps)
	if r.EarlyStopped {
		fmt.Fprint(out, ", stopped early")
	}
	fmt.Fprintln(out)
	if r.BestEpoch > 0 {
		fmt.Fprintf(out, "best %s %.4f at epoch %d\n", r.Monitor, r.Best, r.BestEpoch)
	}
	if v := r.Last.Val; v != nil {
		fmt.Fprintf(out, "last epoch: val loss %.4f, val accuracy %.4f\n", v.Loss, v.Accuracy)
	}
	for _, p := range []string{r.BestCheckpoint, r.LastCheckpoint} {
		if p != "" {
			fmt.Fprintf(out, "checkpoint %s\n", p)
		}
	}
	if ds.Test == nil || r.BestCheckpoint == "" {
		return nil
	}
	store, err := loadWeights(net, res, r.BestCheckpoint)
	if err != nil {
		return err
	}
	ev, err := train.Evaluate(net, store, ds.Test, res.Train.BatchSize, train.EvalOptions{Workers: res.Train.Workers, Device: dev})
	if err != nil {
		return fmt.Errorf("evaluating %s on the test set: %w", r.BestCheckpoint, err)
	}
	fmt.Fprintf(out, "test (%d samples, best.ckpt): %s\n", ev.N, metricLine(res.Network.Head, ev.Metrics))
	return nil
}

// metricLine formats the metrics that matter for a head.
func metricLine(head string, m train.Metrics) string {
	switch head {
	case model.HeadRegression:
		return fmt.Sprintf("loss %.4f, mse %.4f, mae %.4f", m.Loss, m.MSE, m.MAE)
	case model.HeadCaption:
		return fmt.Sprintf("loss %.4f, token accuracy %.4f, BLEU-4 %.4f", m.Loss, m.Accuracy, m.BLEU4)
	}
	return fmt.Sprintf("loss %.4f, accuracy %.4f, macro-F1 %.4f, top-5 %.4f", m.Loss, m.Accuracy, m.MacroF1, m.Top5)
}
