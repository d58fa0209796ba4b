package experiment

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Runner trains and evaluates variants as child processes of the lsfuse
// binary, one at a time, so that each run's throughput is measured alone
// and its peak memory is its own process's.
type Runner struct {
	// Argv is the lsfuse executable and any leading arguments (a test
	// binary adds its helper-process flags here).
	Argv []string
	// Env is the children's environment; nil inherits this process's.
	Env []string
	// Shared are the `lsfuse train` arguments of every run (-c files,
	// --set overrides); the variant's arguments follow them and win.
	Shared []string
	// RunDir is the parent of the run directories,
	// <RunDir>/<variant>-seed<N>.
	RunDir string
	// Eval are extra `lsfuse eval` arguments choosing the test data:
	// "--data MANIFEST", or "--split test".
	Eval []string
}

// RunName is the run directory's name of a variant and seed.
func RunName(v Variant, seed int64) string { return fmt.Sprintf("%s-seed%d", v.Name, seed) }

// Log files a run leaves in its directory besides the trainer's.
const (
	// TableLog holds the train and eval processes' output.
	TableLog = "table.log"
	// EvalJSON is `lsfuse eval --json`'s report.
	EvalJSON = "eval.json"
)

// Run trains variant v with the seed in a fresh run directory, evaluates
// its best.ckpt and returns the measurements. A failed train or eval
// process is recorded in Run.Err (with the child's last error line); the
// error result is only ctx's when it is cancelled.
func (r *Runner) Run(ctx context.Context, v Variant, seed int64) (Run, error) {
	name := RunName(v, seed)
	dir := filepath.Join(r.RunDir, name)
	out := Run{Variant: v.Name, Seed: seed, Dir: dir}
	fail := func(err error) (Run, error) {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		out.Err = err.Error()
		return out, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fail(fmt.Errorf("clearing the run directory: %w", err))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(fmt.Errorf("run directory: %w", err))
	}
	log, err := os.Create(filepath.Join(dir, TableLog))
	if err != nil {
		return fail(fmt.Errorf("run log: %w", err))
	}
	defer log.Close()

	args := append([]string{"train"}, r.Shared...)
	args = append(args, "--run-dir", r.RunDir, "--set", "run.name="+name, "--seed", strconv.FormatInt(seed, 10))
	args = append(args, v.TrainArgs()...)
	res, err := r.child(ctx, log, log, args)
	out.TrainSeconds, out.PeakRSS = res.wall.Seconds(), res.peakRSS
	out.TrainCPUSeconds, out.CPUSeconds = res.cpu.Seconds(), res.cpu.Seconds()
	if err != nil {
		return fail(fmt.Errorf("train: %w", err))
	}
	ep, err := readEpochs(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return fail(err)
	}
	out.Epochs, out.TrainN, out.ValN = len(ep.rates), ep.trainN, ep.valN
	if len(ep.rates) > 0 {
		out.SamplesPerSec = Median(ep.rates)
	}

	var stdout bytes.Buffer
	args = []string{"eval", "--checkpoint", filepath.Join(dir, "best.ckpt"), "--json"}
	if !v.Ablate {
		args = append(args, "--no-ablation")
	}
	args = append(args, r.Eval...)
	res, err = r.child(ctx, &stdout, log, args)
	out.EvalSeconds = res.wall.Seconds()
	out.CPUSeconds += res.cpu.Seconds()
	if err != nil {
		return fail(fmt.Errorf("eval: %w", err))
	}
	if err := os.WriteFile(filepath.Join(dir, EvalJSON), stdout.Bytes(), 0o644); err != nil {
		return fail(fmt.Errorf("eval report: %w", err))
	}
	var rep struct {
		Metrics struct {
			Accuracy float64 `json:"accuracy"`
			MacroF1  float64 `json:"macro_f1"`
			N        int     `json:"n"`
		} `json:"metrics"`
		Ablation map[string]float64 `json:"ablation"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return fail(fmt.Errorf("eval --json output: %w", err))
	}
	out.Accuracy, out.MacroF1, out.TestN = rep.Metrics.Accuracy, rep.Metrics.MacroF1, rep.Metrics.N
	if v.Ablate {
		out.Ablation = rep.Ablation
	}
	return out, nil
}

// childResult is what one child process cost.
type childResult struct {
	wall, cpu time.Duration
	peakRSS   int64
}

// child runs Argv + args with stdout and stderr to the writers (stderr
// also to the error, by its last "lsfuse:" line).
func (r *Runner) child(ctx context.Context, stdout, stderr io.Writer, args []string) (childResult, error) {
	if len(r.Argv) == 0 {
		return childResult{}, fmt.Errorf("no lsfuse executable to run")
	}
	var tail tailBuffer
	cmd := exec.CommandContext(ctx, r.Argv[0], append(r.Argv[1:len(r.Argv):len(r.Argv)], args...)...)
	cmd.Env = r.Env
	cmd.Stdout = stdout
	cmd.Stderr = io.MultiWriter(stderr, &tail)
	fmt.Fprintf(stderr, "$ lsfuse %s\n", strings.Join(args, " "))
	start := time.Now()
	err := cmd.Run()
	res := childResult{wall: time.Since(start), peakRSS: peakRSS(cmd.ProcessState)}
	if ps := cmd.ProcessState; ps != nil {
		res.cpu = ps.UserTime() + ps.SystemTime()
	}
	if err != nil {
		if msg := tail.lastError(); msg != "" {
			return res, fmt.Errorf("%v: %s", err, msg)
		}
		return res, err
	}
	return res, nil
}

// tailBuffer keeps the last few kilobytes written to it.
type tailBuffer struct{ b []byte }

const tailMax = 8 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = t.b[len(t.b)-tailMax:]
	}
	return len(p), nil
}

// lastError is the last line starting "lsfuse:" (the command's error), or
// else the last non-empty line.
func (t *tailBuffer) lastError() string {
	lines := strings.Split(strings.TrimSpace(string(t.b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "lsfuse:") {
			return strings.TrimSpace(strings.TrimPrefix(lines[i], "lsfuse:"))
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// epochs is what the table reads from a run's metrics.jsonl.
type epochs struct {
	// rates are the epochs' training throughputs (samples/s).
	rates []float64
	// trainN and valN are the last epoch's training and validation
	// sample counts.
	trainN, valN int
}

// readEpochs reads the epoch lines of a metrics.jsonl.
func readEpochs(path string) (epochs, error) {
	var e epochs
	f, err := os.Open(path)
	if err != nil {
		return e, fmt.Errorf("reading the run's metrics: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var rec struct {
			Type          string `json:"type"`
			SamplesPerSec any    `json:"samples_per_sec"`
			Train         struct {
				N int `json:"n"`
			} `json:"train"`
			Val *struct {
				N int `json:"n"`
			} `json:"val"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return e, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if rec.Type != "epoch" {
			continue
		}
		// Non-finite values are written as strings ("NaN"); they carry no
		// throughput.
		if v, ok := rec.SamplesPerSec.(float64); ok && v > 0 {
			e.rates = append(e.rates, v)
		}
		e.trainN = rec.Train.N
		if rec.Val != nil {
			e.valN = rec.Val.N
		}
	}
	if err := sc.Err(); err != nil {
		return e, fmt.Errorf("%s: %w", path, err)
	}
	if e.trainN == 0 {
		return e, fmt.Errorf("%s has no epoch lines", path)
	}
	return e, nil
}

// RunAll runs every variant once per seed, seed by seed (each seed's
// round covers all variants, so slow drifts of the machine's load spread
// over the rows), calling progress (when not nil) after each run with its
// 1-based index and the total. It stops early only when ctx is cancelled,
// returning the runs so far.
func (r *Runner) RunAll(ctx context.Context, variants []Variant, seeds []int64, progress func(i, n int, run Run)) ([]Run, error) {
	n := len(variants) * len(seeds)
	runs := make([]Run, 0, n)
	for _, s := range seeds {
		for _, v := range variants {
			run, err := r.Run(ctx, v, s)
			if err != nil {
				return runs, err
			}
			runs = append(runs, run)
			if progress != nil {
				progress(len(runs), n, run)
			}
		}
	}
	return runs, nil
}
