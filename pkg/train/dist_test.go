package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/dist"
)

func TestShardRange(t *testing.T) {
	for _, tc := range []struct{ n, size int }{{8, 2}, {7, 2}, {5, 3}, {1, 4}, {0, 2}, {10, 4}, {3, 3}} {
		next := 0
		for r := range tc.size {
			lo, hi := ShardRange(tc.n, tc.size, r)
			if lo != next || hi < lo {
				t.Fatalf("n=%d size=%d rank %d: [%d, %d) does not continue at %d", tc.n, tc.size, r, lo, hi, next)
			}
			if d := hi - lo; d != tc.n/tc.size && d != tc.n/tc.size+1 {
				t.Errorf("n=%d size=%d rank %d: shard of %d is not balanced", tc.n, tc.size, r, d)
			}
			next = hi
		}
		if next != tc.n {
			t.Fatalf("n=%d size=%d: shards cover %d positions", tc.n, tc.size, next)
		}
	}
}

// TestShardedLoaderCoversGlobalBatches checks the sharding against the
// single-process loader: for every rank count, the ranks' batches of
// global batch b, concatenated in rank order, are exactly that loader's
// batch b (so every sample is seen once per epoch, and a position
// (epoch, batch) means the same samples whatever the number of ranks).
func TestShardedLoaderCoversGlobalBatches(t *testing.T) {
	ds := newSynth(23, 1)
	for _, dropLast := range []bool{false, true} {
		cfg := data.LoaderConfig{BatchSize: 5, Shuffle: true, Seed: 9, DropLast: dropLast, Workers: 2, Prefetch: 1}
		ref, err := data.NewLoader(ds, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for size := 1; size <= 5; size++ {
			for _, start := range []int{0, 2} {
				const epoch = 1
				ranks := make([][]data.Batch, size)
				for r, c := range dist.Local(size) {
					src, err := newBatchSource(ds, cfg, c)
					if err != nil {
						t.Fatal(err)
					}
					if src.NumBatches() != ref.NumBatches() {
						t.Fatalf("size %d: %d global batches, want %d", size, src.NumBatches(), ref.NumBatches())
					}
					for b, err := range src.Epoch(context.Background(), epoch, start) {
						if err != nil {
							t.Fatal(err)
						}
						ranks[r] = append(ranks[r], b)
					}
				}
				var seen []int
				for b := start; b < ref.NumBatches(); b++ {
					want, _ := ref.BatchIndices(epoch, b)
					var got []int
					for r := range size {
						if len(ranks[r]) != ref.NumBatches()-start {
							t.Fatalf("size %d rank %d: %d batches from %d, want %d", size, r, len(ranks[r]), start, ref.NumBatches()-start)
						}
						sb := ranks[r][b-start]
						if sb.Size != len(sb.Indices) {
							t.Fatalf("batch size %d with %d indices", sb.Size, len(sb.Indices))
						}
						got = append(got, sb.Indices...)
					}
					if !slices.Equal(got, want) {
						t.Fatalf("drop_last %v size %d start %d: global batch %d is %v over the ranks, want %v", dropLast, size, start, b, got, want)
					}
					seen = append(seen, got...)
				}
				if start == 0 {
					sort.Ints(seen)
					n := 23
					if dropLast {
						n = 20
					}
					if distinct := len(slices.Compact(slices.Clone(seen))); len(seen) != n || distinct != n {
						t.Fatalf("size %d: the epoch covers %d samples (%d distinct), want %d", size, len(seen), distinct, n)
					}
				}
			}
		}
	}
}

func TestShardedLoaderRejectsTooSmallBatch(t *testing.T) {
	_, err := newBatchSource(newSynth(10, 1), data.LoaderConfig{BatchSize: 2}, dist.Local(3)[0])
	if err == nil || !strings.Contains(err.Error(), "at least the number of ranks (3)") {
		t.Fatalf("global batch 2 over 3 ranks: %v", err)
	}
}

// failOut receives the failure messages of fitRanks' ranks (quiet with
// in-process ranks; stderr under mpirun).
var failOut io.Writer = io.Discard

// distResult is one rank's outcome of a data-parallel run.
type distResult struct {
	w   map[string][]float64
	res Result
	err error
}

// fitRanks trains the same fresh float64 tinyNet on every rank of comms
// (goroutines, dist.Local) with cfg and returns each rank's result. hook,
// when set, is rank 0's only hook. A rank whose Fit fails aborts the job,
// as the command line does.
func fitRanks(t *testing.T, comms []dist.Communicator, ds data.Dataset, cfg Config, runDir, resume string, hook Hook) []distResult {
	t.Helper()
	out := make([]distResult, len(comms))
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			store := newStore(t, tensor.Float64)
			opts := Options{RunDir: runDir, Comm: c}
			if hook != nil && r == 0 {
				opts.Hooks = []Hook{hook}
			}
			tr, err := New(tinyNet(t, netOpts{}), store, ds, nil, cfg, opts)
			if err == nil && resume != "" {
				err = tr.Resume(resume)
			}
			if err == nil {
				out[r].res, err = tr.Fit(context.Background())
			}
			out[r].err = err
			out[r].w = weights(t, store)
			if err != nil {
				dist.Fail(c, failOut, err, 1)
			}
		}()
	}
	wg.Wait()
	return out
}

// TestDataParallelMatchesSingleProcess is the correctness claim of
// data-parallel training: ranks that each train on their shard of the
// global batch end with the weights of one process training on the
// whole batch, and report the same epoch metrics. The network has no
// batch norm and no dropout (their statistics and masks are per shard).
// 21 samples in batches of 4 leave a last batch of 1: with 2 and 3 ranks
// some ranks have an empty shard there.
func TestDataParallelMatchesSingleProcess(t *testing.T) {
	ds := newSynth(21, 5)
	plain := baseConfig()
	window := baseConfig()
	window.AccumSteps = 2
	window.ClipNorm = 0.5
	window.LossScale = LossScaleConfig{Enabled: true, Init: 1024, GrowthInterval: 3}
	for name, cfg := range map[string]Config{"adam": plain, "accumulation, loss scaling, clipping": window} {
		t.Run(name, func(t *testing.T) {
			ref := fitRanks(t, []dist.Communicator{dist.Single()}, ds, cfg, "", "", nil)[0]
			if ref.err != nil {
				t.Fatal(ref.err)
			}
			for _, size := range []int{2, 3} {
				for r, got := range fitRanks(t, dist.Local(size), ds, cfg, "", "", nil) {
					if got.err != nil {
						t.Fatalf("%d ranks, rank %d: %v", size, r, got.err)
					}
					if d, where := maxDiff(ref.w, got.w, nil); d > 1e-10 {
						t.Errorf("%d ranks, rank %d: weights differ from one process by %g (%s)", size, r, d, where)
					}
					if got.res.Steps != ref.res.Steps || len(got.res.History) != len(ref.res.History) {
						t.Fatalf("%d ranks: %d steps %d epochs, want %d and %d", size, got.res.Steps, len(got.res.History), ref.res.Steps, len(ref.res.History))
					}
					for e, h := range got.res.History {
						want := ref.res.History[e].Train
						if diff := h.Train.Loss - want.Loss; diff > 1e-10 || diff < -1e-10 || h.Train.Accuracy != want.Accuracy || h.Train.N != 21 {
							t.Errorf("%d ranks, rank %d, epoch %d: train metrics %+v, want %+v", size, r, e+1, h.Train, want)
						}
					}
				}
			}
		})
	}
}

// TestDataParallelResumeWithOtherRankCount interrupts a 2-rank run in the
// middle of epoch 2 (rank 0's hook fails: it writes last.ckpt and aborts
// the job), then resumes it on 3 ranks and on 1: both end with the weights
// of an uninterrupted single-process run. Only rank 0 writes files.
func TestDataParallelResumeWithOtherRankCount(t *testing.T) {
	ds := newSynth(21, 5)
	cfg := baseConfig()
	ref := fitRanks(t, []dist.Communicator{dist.Single()}, ds, cfg, "", "", nil)[0]
	if ref.err != nil {
		t.Fatal(ref.err)
	}
	for _, size := range []int{3, 1} {
		t.Run(fmt.Sprintf("resume on %d", size), func(t *testing.T) {
			dir := t.TempDir()
			stop := errors.New("stop here")
			hook := HookFuncs{Step: func(i StepInfo) error {
				if i.Epoch == 2 && i.Batch == 3 {
					return stop
				}
				return nil
			}}
			first := fitRanks(t, dist.Local(2), ds, cfg, dir, "", hook)
			if !errors.Is(first[0].err, stop) {
				t.Fatalf("rank 0: %v, want the hook's error", first[0].err)
			}
			if first[1].err == nil || !strings.Contains(first[1].err.Error(), "aborted by rank 0") {
				t.Fatalf("rank 1 after rank 0 failed: %v, want the abort", first[1].err)
			}
			if first[0].res.LastCheckpoint == "" || first[1].res.LastCheckpoint != "" {
				t.Fatalf("checkpoints written by rank 0 %q and rank 1 %q: only rank 0 writes", first[0].res.LastCheckpoint, first[1].res.LastCheckpoint)
			}
			comms := []dist.Communicator{dist.Single()}
			if size > 1 {
				comms = dist.Local(size)
			}
			for r, got := range fitRanks(t, comms, ds, cfg, dir, "last", nil) {
				if got.err != nil {
					t.Fatalf("resumed rank %d: %v", r, got.err)
				}
				if d, where := maxDiff(ref.w, got.w, nil); d > 1e-10 {
					t.Errorf("resumed on %d ranks, rank %d: weights differ from the uninterrupted run by %g (%s)", size, r, d, where)
				}
			}
		})
	}
}

// TestReduceEpochCoversMetricAcc guards reduceEpoch: it sums metricAcc's
// fields by name across the ranks, so a new field must be added there
// (and here) or the multi-rank epoch metrics would silently miss it.
func TestReduceEpochCoversMetricAcc(t *testing.T) {
	reduced := []string{"Head", "Classes", "Ignore", "LossSum", "N", "Conf", "Top5", "TokOK", "TokN", "SE", "AE", "NE"}
	typ := reflect.TypeOf(metricAcc{})
	var fields []string
	for i := range typ.NumField() {
		fields = append(fields, typ.Field(i).Name)
	}
	if !slices.Equal(fields, reduced) {
		t.Fatalf("metricAcc has fields %v; reduceEpoch (dist.go) handles %v: reduce the new ones across ranks and update this list", fields, reduced)
	}
}

// TestDataParallelOverflowSkipsOnEveryRank plants an Inf in one gradient
// of rank 1 only, at step 2: every rank must skip that step and halve the
// loss scale, and the ranks must still agree (the epoch-end check) and
// match one process that sees the same overflow.
func TestDataParallelOverflowSkipsOnEveryRank(t *testing.T) {
	ds := newSynth(16, 5)
	cfg := baseConfig()
	cfg.Epochs = 1
	cfg.LossScale = LossScaleConfig{Enabled: true, Init: 1024, GrowthInterval: 100}
	comms := dist.Local(2)
	type out struct {
		epochs []EpochInfo
		w      map[string][]float64
		err    error
	}
	res := make([]out, 2)
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := newRecorder()
			store := newStore(t, tensor.Float64)
			tr, err := New(tinyNet(t, netOpts{}), store, ds, nil, cfg, Options{Comm: c, Hooks: []Hook{rec}})
			if err != nil {
				res[r].err = err
				return
			}
			if r == 1 {
				tr.inject = func(step int, learn G.Nodes) {
					if step == 1 {
						gv, _ := learn[0].Grad()
						gv.(tensor.Tensor).Data().([]float64)[0] = math.Inf(1)
					}
				}
			}
			_, res[r].err = tr.Fit(context.Background())
			res[r].epochs, res[r].w = rec.epochs, weights(t, store)
		}()
	}
	wg.Wait()
	for r := range res {
		if res[r].err != nil {
			t.Fatalf("rank %d: %v", r, res[r].err)
		}
		e := res[r].epochs[0]
		if e.SkippedSteps != 1 || e.LossScale != 512 {
			t.Errorf("rank %d: %d skipped steps, loss scale %g; want 1 and 512 (rank 1's overflow skips everyone's step)", r, e.SkippedSteps, e.LossScale)
		}
	}
	if d, where := maxDiff(res[0].w, res[1].w, nil); d != 0 {
		t.Errorf("the ranks' weights differ by %g (%s) after the skipped step", d, where)
	}
}
