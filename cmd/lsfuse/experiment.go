package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/experiment"
)

// tableOptions are `lsfuse experiment table`'s inputs.
type tableOptions struct {
	IO *IOStreams
	// Files are the experiment's YAML files and Sets its --set overrides,
	// shared by every run.
	Files []string
	Sets  []string
	// Epochs overrides train.epochs (0: the config's).
	Epochs int
	// Seeds is the number of seeds; runs use seeds 1..Seeds.
	Seeds int
	// Out is the markdown file written (default <WorkDir>/TABLE.md).
	Out string
	// WorkDir holds the run directories (runs/), the generated test set
	// (data/) and results.json.
	WorkDir string
	// TestRows > 0 generates (once, cached under WorkDir/data) an avdigits
	// test set of that many rows with TestSeed and evaluates every run on
	// it; 0 evaluates on the experiment's own test part.
	TestRows int
	TestSeed int64
	// TestManifest, when set, is evaluated instead (any manifest with the
	// training manifest's columns).
	TestManifest string
	// RenderOnly redraws the table from WorkDir's results.json without
	// training.
	RenderOnly bool
	// Command is the command line, as shown in the table.
	Command string
	// Environ is the environment (os.Environ() outside tests).
	Environ []string
	// Argv runs lsfuse for each training and evaluation (default: this
	// executable); Env is the children's environment (nil: inherited).
	Argv []string
	Env  []string
}

func newExperimentCmd(ios *IOStreams, runF func(context.Context, *tableOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "experiment",
		Short: "Run measured comparisons (the fusion-strategy table)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newTableCmd(ios, runF))
	return cmd
}

func newTableCmd(ios *IOStreams, runF func(context.Context, *tableOptions) error) *cobra.Command {
	opts := &tableOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "table --config FILE",
		Short: "Train every modality alone and every fusion strategy over several seeds; write a markdown table",
		Long: `Table trains the experiment once per seed for each row:

  <m> alone          each modality alone (early fusion of one feature, no
                     modality dropout)
  early, late,       every modality fused by that strategy, with the
  hybrid,            experiment's model.modality_dropout rates
  hierarchical
  hybrid, modality   hybrid with every modality-dropout rate set to 0: the
  dropout off        "off" half of the modality-dropout pair

Each run is a separate "lsfuse train" process in <work-dir>/runs/<row>-seed<N>
(runs are sequential, so throughput is measured alone), then "lsfuse eval
--json" of its best.ckpt on the test data, with each modality removed in turn
for the fused rows. The table reports test accuracy and macro-F1 (mean ±
sample standard deviation and range over seeds), training throughput and the
training process's peak resident memory, both as medians over seeds relative
to early fusion, the per-modality ablation, and in plain words whether fusion
beats the best single modality and whether the strategies' order matches the
seed's claim (hierarchical > hybrid > late > early).

By default every run is evaluated on an avdigits test set of --test-rows rows
generated once (needs espeak-ng) and cached in <work-dir>/data; --test-rows 0
uses the experiment's own test part, --test-manifest any manifest with the
training columns. The table is printed and written to --out; results.json in
the work directory keeps every run's numbers, and --render-only redraws the
table from it without training.`,
		Example: `  lsfuse experiment table --config configs/quickstart.yaml
  lsfuse experiment table -c configs/quickstart.yaml --seeds 3 --out docs/TABLE.md
  lsfuse experiment table -c configs/quickstart.yaml --seeds 1 --epochs 1 --test-rows 0 --work-dir /tmp/t`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Environ = environ()
			opts.Command = commandLine(cmd)
			if len(opts.Files) == 0 && !opts.RenderOnly {
				return usagef("experiment table: --config is required (e.g. --config configs/quickstart.yaml)")
			}
			if opts.Seeds < 1 {
				return usagef("--seeds %d: want at least 1", opts.Seeds)
			}
			if opts.Epochs < 0 || opts.TestRows < 0 {
				return usagef("--epochs %d and --test-rows %d must be ≥ 0", opts.Epochs, opts.TestRows)
			}
			if opts.Out == "" {
				opts.Out = filepath.Join(opts.WorkDir, "TABLE.md")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runTable(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Files, "config", "c", nil, "experiment YAML `file` (repeatable; later files override earlier ones)")
	f.StringArrayVar(&opts.Sets, "set", nil, "override one key in every run, e.g. --set train.lr=3e-4 (repeatable)")
	f.IntVar(&opts.Epochs, "epochs", 0, "training epochs of every run (default: the config's train.epochs)")
	f.IntVar(&opts.Seeds, "seeds", 3, "number of seeds; runs use seeds 1..N")
	f.StringVar(&opts.Out, "out", "", "markdown `file` to write (default <work-dir>/TABLE.md)")
	f.StringVar(&opts.WorkDir, "work-dir", filepath.Join("runs", "table"), "`dir` for the run directories, the generated test set and results.json")
	f.IntVar(&opts.TestRows, "test-rows", 1000, "generate an avdigits test set of this many rows (once, cached) and evaluate on it; 0: the experiment's test part")
	f.Int64Var(&opts.TestSeed, "test-seed", 2, "seed of the generated test set")
	f.StringVar(&opts.TestManifest, "test-manifest", "", "evaluate on this `manifest` (the training manifest's columns) instead")
	f.BoolVar(&opts.RenderOnly, "render-only", false, "redraw the table from <work-dir>/results.json without training")
	return cmd
}

// commandLine is the command as typed, with the flags given (not the
// defaults), for the table's "reproduce with" line.
func commandLine(cmd *cobra.Command) string {
	parts := []string{cmd.CommandPath()}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				parts = append(parts, "--"+f.Name, shellQuote(v))
			}
			return
		}
		parts = append(parts, "--"+f.Name, shellQuote(f.Value.String()))
	})
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// resultsFile is the work directory's record of a table.
const resultsFile = "results.json"

// tableResults is results.json: every run of the table and what the
// report shows besides the rows (the rows are recomputed from the runs,
// so --render-only can redraw the table; their NaNs for missing runs are
// not JSON).
type tableResults struct {
	Command  string               `json:"command"`
	Variants []experiment.Variant `json:"variants"`
	Seeds    []int64              `json:"seeds"`
	Runs     []experiment.Run     `json:"runs"`
	// Settings, Machine, Load and WallSeconds are the report's header
	// (experiment.Report).
	Settings    []string `json:"settings"`
	Machine     string   `json:"machine"`
	Load        string   `json:"load,omitempty"`
	WallSeconds float64  `json:"wall_seconds"`
}

// runTable trains and evaluates every run, writes results.json and the
// table (or, with RenderOnly, only redraws the table).
func runTable(ctx context.Context, opts *tableOptions) error {
	if opts.RenderOnly {
		return renderTable(opts)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// Ctrl-C stops the table (the running child is killed), not just the
	// current run.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	start := time.Now()
	load0 := loadAverage()
	sets := append([]string(nil), opts.Sets...)
	if opts.Epochs > 0 {
		sets = append(sets, "train.epochs="+strconv.Itoa(opts.Epochs))
	}
	cfg, err := config.Load(config.LoadOptions{Files: opts.Files, Sets: sets, Environ: opts.Environ})
	if err != nil {
		return usageError{err}
	}
	mods := modalityNames(cfg)
	variants, err := experiment.Variants(mods, cfg.Model.ModalityDropout)
	if err != nil {
		return usagef("experiment table: %v", err)
	}
	// Refuse a row the experiment cannot build before training anything.
	for _, v := range variants {
		lo := config.LoadOptions{Files: opts.Files, Sets: append(append([]string(nil), sets...), v.Sets...), Environ: opts.Environ,
			Flags: []config.Override{{Flag: "--fusion-strategy", Key: "model.fusion_strategy", Value: v.Strategy}}}
		if !v.Fused() {
			lo.Modalities = v.Modalities
		}
		if _, err := config.Load(lo); err != nil {
			return usagef("experiment table: row %q: %v", v.Label, err)
		}
	}
	evalArgs, testDesc, err := tableTestData(ctx, opts, cfg)
	if err != nil {
		return err
	}
	argv := opts.Argv
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the lsfuse executable for the runs: %w", err)
		}
		argv = []string{exe}
	}
	var shared []string
	for _, f := range opts.Files {
		shared = append(shared, "--config", f)
	}
	for _, s := range sets {
		shared = append(shared, "--set", s)
	}
	runner := &experiment.Runner{Argv: argv, Env: opts.Env, Shared: shared, RunDir: filepath.Join(opts.WorkDir, "runs"), Eval: evalArgs}
	seeds := make([]int64, opts.Seeds)
	for i := range seeds {
		seeds[i] = int64(i + 1)
	}
	w := opts.IO.ErrOut
	fmt.Fprintf(w, "table: %d rows × %d seeds = %d runs, sequential, in %s\n", len(variants), len(seeds), len(variants)*len(seeds), runner.RunDir)
	runStart := time.Now()
	runs, err := runner.RunAll(ctx, variants, seeds, func(i, n int, r experiment.Run) {
		el := time.Since(runStart)
		left := time.Duration(float64(el) / float64(i) * float64(n-i))
		if r.OK() {
			fmt.Fprintf(w, "[%d/%d] %s seed %d: test accuracy %.4f, macro-F1 %.4f, %.0f samples/s, peak %.0f MB, %.0fs (elapsed %s, about %s left)\n",
				i, n, r.Variant, r.Seed, r.Accuracy, r.MacroF1, r.SamplesPerSec, float64(r.PeakRSS)/(1<<20), r.TrainSeconds+r.EvalSeconds,
				el.Round(time.Second), left.Round(time.Second))
		} else {
			fmt.Fprintf(w, "[%d/%d] %s seed %d FAILED: %s (log: %s)\n", i, n, r.Variant, r.Seed, r.Err, filepath.Join(r.Dir, experiment.TableLog))
		}
	})
	if err != nil {
		return fmt.Errorf("experiment table interrupted after %d runs: %w", len(runs), err)
	}
	res := tableResults{Command: opts.Command, Variants: variants, Seeds: seeds, Runs: runs,
		Settings: tableSettings(cfg, seeds, runs, testDesc), Machine: machine(), WallSeconds: time.Since(start).Seconds()}
	if load0 != "" {
		res.Load = fmt.Sprintf("%s at the start, %s at the end (1-minute, %d CPUs)", load0, loadAverage(), runtime.NumCPU())
	}
	if err := writeJSON(filepath.Join(opts.WorkDir, resultsFile), res); err != nil {
		return err
	}
	return writeTable(opts, res)
}

// renderTable rewrites the table from the work directory's results.json,
// without training.
func renderTable(opts *tableOptions) error {
	path := filepath.Join(opts.WorkDir, resultsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return usagef("--render-only: %v (run the table first)", err)
	}
	var res tableResults
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("--render-only: %s: %w", path, err)
	}
	if len(res.Variants) == 0 || len(res.Seeds) == 0 {
		return fmt.Errorf("--render-only: %s has no variants or seeds", path)
	}
	return writeTable(opts, res)
}

// writeTable aggregates the runs, prints the markdown table and writes it
// to opts.Out; it fails when a run failed (after writing).
func writeTable(opts *tableOptions, res tableResults) error {
	var mods []string // the fused rows train every modality
	for _, v := range res.Variants {
		if v.Fused() {
			mods = v.Modalities
			break
		}
	}
	rep := experiment.Report{
		Title:      "Fusion strategy comparison (measured)",
		Command:    res.Command,
		Settings:   res.Settings,
		Machine:    res.Machine,
		Load:       res.Load,
		Wall:       time.Duration(res.WallSeconds * float64(time.Second)),
		CPU:        runsCPU(res.Runs),
		Modalities: mods,
		Rows:       experiment.Aggregate(res.Variants, len(res.Seeds), res.Runs),
	}
	md := experiment.Markdown(rep)
	if _, err := fmt.Fprint(opts.IO.Out, md); err != nil {
		return err
	}
	if dir := filepath.Dir(opts.Out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	if err := os.WriteFile(opts.Out, []byte(md), 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(opts.IO.ErrOut, "wrote %s (runs in %s)\n", opts.Out, filepath.Join(opts.WorkDir, resultsFile))
	failed := 0
	for _, r := range res.Runs {
		if !r.OK() {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d runs failed (see the table's list and each run's %s)", failed, len(res.Runs), experiment.TableLog)
	}
	return nil
}

// runsCPU is the CPU time of all runs' processes.
func runsCPU(runs []experiment.Run) time.Duration {
	var s float64
	for _, r := range runs {
		s += r.CPUSeconds
	}
	return time.Duration(s * float64(time.Second))
}

// tableTestData returns the eval arguments that choose the test data and
// a description of it, generating the avdigits test set when asked.
func tableTestData(ctx context.Context, opts *tableOptions, cfg *config.Config) ([]string, string, error) {
	switch {
	case opts.TestManifest != "":
		if _, err := os.Stat(opts.TestManifest); err != nil {
			return nil, "", usagef("--test-manifest: %v", err)
		}
		abs, err := filepath.Abs(opts.TestManifest)
		if err != nil {
			return nil, "", err
		}
		return []string{"--data", abs}, "the rows of " + opts.TestManifest, nil
	case opts.TestRows == 0:
		return []string{"--split", "test"}, "the experiment's test part", nil
	}
	rate := 0
	for _, spec := range cfg.DataPlan().Train.Columns {
		if spec.Kind == data.KindAudio && spec.Audio.SampleRate > 0 {
			rate = spec.Audio.SampleRate
		}
	}
	gen := data.DefaultAVDigitsConfig()
	gen.Train, gen.Test, gen.Seed = 0, opts.TestRows, opts.TestSeed
	if rate > 0 {
		gen.Speech.SampleRate = rate
	}
	if err := gen.Validate(); err != nil {
		return nil, "", usageError{err}
	}
	dir := filepath.Join(opts.WorkDir, "data", fmt.Sprintf("avdigits-test%d-seed%d-%dhz", gen.Test, gen.Seed, gen.Speech.SampleRate))
	manifest := filepath.Join(dir, "manifest.csv")
	desc := fmt.Sprintf("%d avdigits rows made from MNIST test images (`lsfuse data avdigits --train 0 --test %d --seed %d --sample-rate %d`), cached in %s",
		gen.Test, gen.Test, gen.Seed, gen.Speech.SampleRate, dir)
	if _, err := os.Stat(manifest); err == nil {
		fmt.Fprintf(opts.IO.ErrOut, "table: using the cached test set %s\n", dir)
	} else if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(opts.IO.ErrOut, "table: generating %d avdigits test rows in %s (once)\n", gen.Test, dir)
		tmp := dir + ".partial"
		if err := os.RemoveAll(tmp); err != nil {
			return nil, "", err
		}
		if _, err := data.GenerateAVDigits(ctx, tmp, gen); err != nil {
			return nil, "", fmt.Errorf("generating the test set (--test-rows 0 uses the experiment's own test part instead): %w", err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, "", err
		}
		if err := os.Rename(tmp, dir); err != nil {
			return nil, "", err
		}
	} else {
		return nil, "", err
	}
	abs, err := filepath.Abs(manifest)
	if err != nil {
		return nil, "", err
	}
	return []string{"--data", abs}, desc, nil
}

// tableSettings are the table's header lines.
func tableSettings(cfg *config.Config, seeds []int64, runs []experiment.Run, testDesc string) []string {
	ss := make([]string, len(seeds))
	for i, s := range seeds {
		ss[i] = strconv.FormatInt(s, 10)
	}
	t := cfg.Train
	lines := []string{
		fmt.Sprintf("seeds %s (run.seed: initialisation, shuffling, validation split, dropout); %s, batch %d, %s lr %g, %s schedule; best.ckpt (by %s) is evaluated",
			strings.Join(ss, ", "), plural(t.Epochs, "epoch"), t.BatchSize, t.Optimizer, t.LR, t.Schedule.Kind, monitorName(t.EarlyStop.Monitor)),
	}
	for _, r := range runs {
		if r.OK() {
			lines = append(lines, fmt.Sprintf("data: %d training and %d validation rows (%s); test: %s (%d rows evaluated)",
				r.TrainN, r.ValN, cfg.Data.Train, testDesc, r.TestN))
			break
		}
	}
	lines = append(lines, fmt.Sprintf("fused rows: %s, fusion_dim %d; modality dropout %s; single rows: the one modality through early fusion, no modality dropout",
		strings.Join(experiment.OrderModalities(modalityNames(cfg)), " + "), cfg.Model.FusionDim, experiment.DropoutSummary(modalityNames(cfg), cfg.Model.ModalityDropout)))
	return lines
}

// plural is "1 epoch", "2 epochs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func monitorName(m string) string {
	if m == "" {
		return "val_loss"
	}
	return m
}

// machine describes the computer: OS, architecture, CPUs and model.
func machine() string {
	s := fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				s += " (" + strings.TrimSpace(v) + ")"
				break
			}
		}
	}
	return s
}

// loadAverage is the 1-minute load average ("" where /proc/loadavg is
// missing).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	if v, err := strconv.ParseFloat(f[0], 64); err == nil && !math.IsNaN(v) {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return ""
}

// writeJSON writes v indented, creating the directory.
func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
