package data

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// memDataset is an in-memory Dataset whose sample i has input "x" = [i, 2i]
// and class i%3, so a batch's contents identify its samples. Samples listed
// in fail return an error; panicAt panics. gets counts Get calls.
type memDataset struct {
	n       int
	fail    map[int]bool
	panicAt int
	gets    atomic.Int64
}

func newMem(n int) *memDataset { return &memDataset{n: n, panicAt: -1} }

func (d *memDataset) Len() int { return d.n }

func (d *memDataset) Get(i int) (Sample, error) {
	d.gets.Add(1)
	if i < 0 || i >= d.n {
		return Sample{}, fmt.Errorf("index %d out of range", i)
	}
	if d.fail[i] {
		return Sample{}, fmt.Errorf("corrupt file img/%d.png", i)
	}
	if i == d.panicAt {
		panic("decoder bug")
	}
	return Sample{
		Index:  i,
		Inputs: map[string]Tensor{"x": {Shape: []int{2}, Data: []float32{float32(i), float32(2 * i)}}},
		Label:  Label{Class: i % 3},
	}, nil
}

// epochDataset adds 1000·epoch to x[1], like a seeded augmentation; with
// fixed set it reports that its samples do not vary (augmentation off) and
// adds nothing.
type epochDataset struct {
	*memDataset
	fixed bool
}

func (d epochDataset) VariesWithEpoch() bool { return !d.fixed }

func (d epochDataset) GetEpoch(i, epoch int) (Sample, error) {
	s, err := d.Get(i)
	if err == nil && !d.fixed {
		s.Inputs["x"].Data[1] += float32(1000 * epoch)
	}
	return s, err
}

// collect runs one epoch from startBatch and returns the batches, failing the
// test on any error.
func collect(t *testing.T, l *Loader, epoch, startBatch int) []Batch {
	t.Helper()
	var out []Batch
	for b, err := range l.Epoch(context.Background(), epoch, startBatch) {
		if err != nil {
			t.Fatalf("epoch %d from batch %d: %v", epoch, startBatch, err)
		}
		out = append(out, b)
	}
	return out
}

func mustLoader(t *testing.T, ds Dataset, cfg LoaderConfig) *Loader {
	t.Helper()
	l, err := NewLoader(ds, cfg)
	if err != nil {
		t.Fatalf("NewLoader(%+v): %v", cfg, err)
	}
	return l
}

func batchIndices(bs []Batch) [][]int {
	out := make([][]int, len(bs))
	for i, b := range bs {
		out[i] = b.Indices
	}
	return out
}

// checkBatchContents asserts that every batch's tensors and labels are the
// samples its Indices name (so collation kept samples in order).
func checkBatchContents(t *testing.T, bs []Batch) {
	t.Helper()
	for bi, b := range bs {
		x := b.Inputs["x"]
		if !reflect.DeepEqual(x.Shape, []int{b.Size, 2}) {
			t.Fatalf("batch %d: x shape %v, want [%d 2]", bi, x.Shape, b.Size)
		}
		for k, idx := range b.Indices {
			if x.Data[2*k] != float32(idx) || b.Classes[k] != idx%3 {
				t.Fatalf("batch %d row %d: x=%v class=%d, want sample %d", bi, k, x.Data[2*k:2*k+2], b.Classes[k], idx)
			}
		}
	}
}

func TestLoaderBatching(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dropLast bool
		sizes    []int
	}{
		{"keep short batch", false, []int{5, 5, 5, 5, 3}},
		{"drop last", true, []int{5, 5, 5, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustLoader(t, newMem(23), LoaderConfig{BatchSize: 5, Shuffle: true, Seed: 1, DropLast: tc.dropLast, Workers: 2, Prefetch: 1})
			if l.NumBatches() != len(tc.sizes) {
				t.Fatalf("NumBatches = %d, want %d", l.NumBatches(), len(tc.sizes))
			}
			bs := collect(t, l, 0, 0)
			var sizes, seen []int
			for _, b := range bs {
				sizes = append(sizes, b.Size)
				seen = append(seen, b.Indices...)
			}
			if !slices.Equal(sizes, tc.sizes) {
				t.Fatalf("batch sizes %v, want %v", sizes, tc.sizes)
			}
			checkBatchContents(t, bs)
			// Each sample at most once, and all of them when nothing is dropped.
			slices.Sort(seen)
			if len(slices.Compact(slices.Clone(seen))) != len(seen) {
				t.Fatalf("a sample was visited twice: %v", seen)
			}
			if !tc.dropLast && (len(seen) != 23 || seen[0] != 0 || seen[22] != 22) {
				t.Fatalf("epoch visited %v, want 0..22", seen)
			}
		})
	}
}

func TestLoaderNoShuffleIsDatasetOrder(t *testing.T) {
	l := mustLoader(t, newMem(7), LoaderConfig{BatchSize: 3, Seed: 99})
	got := batchIndices(collect(t, l, 5, 0))
	want := [][]int{{0, 1, 2}, {3, 4, 5}, {6}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batches %v, want %v", got, want)
	}
}

func TestLoaderSameSeedSameBatches(t *testing.T) {
	cfg := LoaderConfig{BatchSize: 4, Shuffle: true, Seed: 42, Workers: 3, Prefetch: 2}
	a := collect(t, mustLoader(t, newMem(30), cfg), 2, 0)
	b := collect(t, mustLoader(t, newMem(30), cfg), 2, 0)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two loaders with the same seed differ:\n%v\n%v", batchIndices(a), batchIndices(b))
	}
	checkBatchContents(t, a)
}

func TestLoaderOrderDependsOnEpochAndSeed(t *testing.T) {
	l := mustLoader(t, newMem(50), LoaderConfig{BatchSize: 8, Shuffle: true, Seed: 42})
	e0, e1 := l.Order(0), l.Order(1)
	if slices.Equal(e0, e1) {
		t.Fatalf("epochs 0 and 1 have the same order %v", e0)
	}
	other := mustLoader(t, newMem(50), LoaderConfig{BatchSize: 8, Shuffle: true, Seed: 43})
	if slices.Equal(e0, other.Order(0)) {
		t.Fatalf("seeds 42 and 43 give the same order %v", e0)
	}
	// The batches follow Order.
	bs := collect(t, l, 1, 0)
	var flat []int
	for _, b := range bs {
		flat = append(flat, b.Indices...)
	}
	if !slices.Equal(flat, e1) {
		t.Fatalf("epoch 1 batches visit %v, Order(1) is %v", flat, e1)
	}
}

// TestOrderGolden pins the shuffling sequence: a change here means every
// checkpoint resumed after the change would see different batches.
func TestOrderGolden(t *testing.T) {
	l := mustLoader(t, newMem(10), LoaderConfig{BatchSize: 1, Shuffle: true, Seed: 7})
	got := [][]int{l.Order(0), l.Order(1)}
	// Values recorded from this implementation (PCG-DXSM + SplitMix64 seeding +
	// Lemire bounded draws + Fisher–Yates) when it was written.
	want := [][]int{{5, 1, 4, 3, 7, 0, 8, 9, 6, 2}, {3, 2, 4, 9, 6, 5, 1, 0, 7, 8}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Order(0), Order(1) = %v, want %v", got, want)
	}
}

func TestLoaderResumeMatchesUninterrupted(t *testing.T) {
	cfg := LoaderConfig{BatchSize: 3, Shuffle: true, Seed: 5, Workers: 2, Prefetch: 1}
	for _, epoch := range []int{0, 3} {
		full := collect(t, mustLoader(t, newMem(20), cfg), epoch, 0)
		for _, start := range []int{1, 4, len(full) - 1, len(full)} {
			// A fresh loader, as after a restart from a checkpoint.
			resumed := collect(t, mustLoader(t, newMem(20), cfg), epoch, start)
			if !reflect.DeepEqual(resumed, full[start:]) && !(len(resumed) == 0 && start == len(full)) {
				t.Fatalf("epoch %d resumed at batch %d: %v, want %v", epoch, start, batchIndices(resumed), batchIndices(full[start:]))
			}
		}
	}
}

func TestLoaderWorkersDoNotChangeBatches(t *testing.T) {
	base := collect(t, mustLoader(t, newMem(41), LoaderConfig{BatchSize: 6, Shuffle: true, Seed: 3, Workers: 1}), 1, 0)
	for _, wp := range [][2]int{{1, 0}, {2, 1}, {4, 3}, {8, 10}} {
		got := collect(t, mustLoader(t, newMem(41), LoaderConfig{BatchSize: 6, Shuffle: true, Seed: 3, Workers: wp[0], Prefetch: wp[1]}), 1, 0)
		if !reflect.DeepEqual(got, base) {
			t.Fatalf("workers=%d prefetch=%d: %v, want %v", wp[0], wp[1], batchIndices(got), batchIndices(base))
		}
	}
}

func TestLoaderSampleErrorNamesIndex(t *testing.T) {
	const bad = 13
	for _, workers := range []int{1, 3} {
		ds := newMem(30)
		ds.fail = map[int]bool{bad: true}
		l := mustLoader(t, ds, LoaderConfig{BatchSize: 4, Shuffle: true, Seed: 11, Workers: workers, Prefetch: 2})
		order := l.Order(0)
		wantBatch := slices.Index(order, bad) / 4
		var good int
		var gotErr error
		for _, err := range l.Epoch(context.Background(), 0, 0) {
			if err != nil {
				gotErr = err
				continue // the iterator must stop by itself after an error
			}
			good++
		}
		var se *SampleError
		if !errors.As(gotErr, &se) || se.Index != bad {
			t.Fatalf("workers=%d: error %v, want a *SampleError for sample %d", workers, gotErr, bad)
		}
		if msg := gotErr.Error(); !strings.Contains(msg, fmt.Sprintf("batch %d: sample %d: corrupt file img/%d.png", wantBatch, bad, bad)) {
			t.Fatalf("workers=%d: message %q does not name batch, sample and file", workers, msg)
		}
		if good != wantBatch {
			t.Fatalf("workers=%d: %d batches before the error, want %d", workers, good, wantBatch)
		}
	}
}

// TestLoaderReportsEarliestFailingSample: with two failures in one batch the
// error names the earlier one in batch order, whatever the scheduling.
func TestLoaderReportsEarliestFailingSample(t *testing.T) {
	ds := newMem(8)
	ds.fail = map[int]bool{2: true, 5: true}
	l := mustLoader(t, ds, LoaderConfig{BatchSize: 8, Workers: 4})
	for _, err := range l.Epoch(context.Background(), 0, 0) {
		var se *SampleError
		if !errors.As(err, &se) || se.Index != 2 {
			t.Fatalf("error %v, want sample 2", err)
		}
	}
}

func TestLoaderPanicBecomesError(t *testing.T) {
	ds := newMem(6)
	ds.panicAt = 4
	l := mustLoader(t, ds, LoaderConfig{BatchSize: 2, Workers: 2})
	var gotErr error
	for _, err := range l.Epoch(context.Background(), 0, 0) {
		gotErr = err
	}
	var se *SampleError
	if !errors.As(gotErr, &se) || se.Index != 4 || !strings.Contains(gotErr.Error(), "decoder panicked: decoder bug") {
		t.Fatalf("error %v, want sample 4 with the panic message", gotErr)
	}
}

// waitGoroutines waits (by yielding, not by time) for the goroutine count to
// fall back to base and fails if it does not.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	for range 10000 {
		if runtime.NumGoroutine() <= base {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("%d goroutines still running, %d before the epoch", runtime.NumGoroutine(), base)
}

func TestLoaderBreakAndCancelStopGoroutines(t *testing.T) {
	l := mustLoader(t, newMem(100), LoaderConfig{BatchSize: 2, Shuffle: true, Workers: 4, Prefetch: 3})
	base := runtime.NumGoroutine()

	n := 0
	for _, err := range l.Epoch(context.Background(), 0, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	waitGoroutines(t, base)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []error
	for _, err := range l.Epoch(ctx, 0, 0) {
		got = append(got, err)
		if len(got) == 2 {
			cancel()
		}
	}
	last := got[len(got)-1]
	if !errors.Is(last, context.Canceled) {
		t.Fatalf("after cancel the last item is %v, want context.Canceled", last)
	}
	for _, err := range got[:len(got)-1] {
		if err != nil {
			t.Fatalf("error before the cancellation: %v", err)
		}
	}
	waitGoroutines(t, base)

	// A context cancelled before the start yields only the cancellation.
	var items []error
	for _, err := range l.Epoch(ctx, 1, 0) {
		items = append(items, err)
	}
	if len(items) != 1 || !errors.Is(items[0], context.Canceled) {
		t.Fatalf("pre-cancelled epoch yielded %v, want one context.Canceled", items)
	}
	waitGoroutines(t, base)
}

func TestLoaderEpochDataset(t *testing.T) {
	ds := epochDataset{memDataset: newMem(4)}
	l := mustLoader(t, ds, LoaderConfig{BatchSize: 4})
	for _, epoch := range []int{0, 2} {
		b := collect(t, l, epoch, 0)[0]
		if got, want := b.Inputs["x"].Data[3], float32(2+1000*epoch); got != want {
			t.Fatalf("epoch %d: sample 1 x[1] = %v, want %v (GetEpoch not used)", epoch, got, want)
		}
	}
	if _, err := NewLoader(ds, LoaderConfig{BatchSize: 4, Cache: true}); err == nil || !strings.Contains(err.Error(), "cache would freeze") {
		t.Fatalf("cache over an EpochDataset: error %v, want one about the cache", err)
	}
	// Augmentation off: cached, read once.
	fixed := epochDataset{memDataset: newMem(4), fixed: true}
	lf := mustLoader(t, fixed, LoaderConfig{BatchSize: 4, Cache: true})
	collect(t, lf, 0, 0)
	collect(t, lf, 1, 0)
	if fixed.gets.Load() != 4 {
		t.Fatalf("non-varying EpochDataset with cache: %d Gets over two epochs, want 4", fixed.gets.Load())
	}
}

func TestLoaderConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  LoaderConfig
		want string
	}{
		{LoaderConfig{}, "batch size 0 must be at least 1"},
		{LoaderConfig{BatchSize: 2, Workers: -1}, "workers -1"},
		{LoaderConfig{BatchSize: 2, Prefetch: -2}, "prefetch -2"},
		{LoaderConfig{BatchSize: 2, Cache: true, CacheMaxBytes: -1}, "cache max bytes -1"},
		{LoaderConfig{BatchSize: 2, CacheMaxBytes: 10}, "cache is off"},
	} {
		_, err := NewLoader(newMem(3), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewLoader(%+v) error %v, want it to contain %q", tc.cfg, err, tc.want)
		}
	}
	l := mustLoader(t, newMem(3), LoaderConfig{BatchSize: 2})
	for _, start := range []int{-1, 3} {
		for _, err := range l.Epoch(context.Background(), 0, start) {
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("start batch %d out of range [0, 2]", start)) {
				t.Fatalf("start %d: error %v", start, err)
			}
		}
	}
	if _, err := l.BatchIndices(0, 2); err == nil {
		t.Fatal("BatchIndices(0, 2) of 2 batches: no error")
	}
	if got, _ := l.BatchIndices(0, 1); !slices.Equal(got, []int{2}) {
		t.Fatalf("BatchIndices(0, 1) = %v, want [2]", got)
	}
}

func TestLoaderEmptyDataset(t *testing.T) {
	l := mustLoader(t, newMem(0), LoaderConfig{BatchSize: 4, Shuffle: true})
	if l.NumBatches() != 0 || len(collect(t, l, 0, 0)) != 0 {
		t.Fatalf("empty dataset: %d batches", l.NumBatches())
	}
}

func TestRNGBoundedDrawsAreUniform(t *testing.T) {
	// 60000 draws from intN(6): each count is Binomial(60000, 1/6), mean
	// 10000, sd ≈ 91; ±500 is over 5 sd, so only a biased draw fails (the seed
	// is fixed, so the test is deterministic anyway).
	r := newRNG(1, 2, 3)
	var counts [6]int
	for range 60000 {
		counts[r.intN(6)]++
	}
	for v, c := range counts {
		if c < 9500 || c > 10500 {
			t.Fatalf("value %d drawn %d times of 60000, want about 10000 (counts %v)", v, c, counts)
		}
	}
	// The first position of a permutation is uniform too.
	var first [5]int
	for s := range 5000 {
		first[newRNG(int64(s), streamShuffle).perm(5)[0]]++
	}
	for v, c := range first {
		if c < 850 || c > 1150 { // mean 1000, sd ≈ 28
			t.Fatalf("perm(5)[0] == %d in %d of 5000 permutations (counts %v)", v, c, first)
		}
	}
}

// BenchmarkLoaderOverhead measures the Loader's own cost (ordering,
// scheduling, collation) on an in-memory dataset that decodes nothing.
func BenchmarkLoaderOverhead(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			l, err := NewLoader(newMem(4096), LoaderConfig{BatchSize: 32, Shuffle: true, Workers: workers, Prefetch: 2})
			if err != nil {
				b.Fatal(err)
			}
			samples := 0
			for i := 0; i < b.N; i++ {
				for batch, err := range l.Epoch(context.Background(), i, 0) {
					if err != nil {
						b.Fatal(err)
					}
					samples += batch.Size
				}
			}
			b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
