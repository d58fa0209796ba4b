package train

import (
	"context"
	"fmt"
	"iter"
	"math"
	"sort"
	"time"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/dist"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Data-parallel training (Options.Comm with Size > 1).
//
// Config.BatchSize is the global batch: every global batch of the epoch's
// shuffled order (the same Seed on every rank) is cut into Size contiguous
// shards, as even as possible (ShardRange), and rank r trains on shard r.
// A rank's micro-batch of n_r samples is weighted n_r/BatchSize, so the sum
// over ranks of their gradients is exactly the gradient a single process
// computes on the whole global batch: one AllreduceSum of a flattened
// buffer per optimiser step (every gradient, the window weight and the
// non-finite flags) turns the local gradients into it. Every rank then
// takes the same decision (skip on a non-finite value anywhere, loss-scale
// backoff, clipping) on the same numbers, so the weights stay identical
// (checked at every epoch end). The data position (epoch, global batch) is
// the same on every rank and is what checkpoints hold, so a run resumes
// with any number of ranks. Non-trainable buffers (batch-norm running
// statistics) are averaged over the ranks at every epoch end, and random
// ops (dropout) draw different masks on each shard: only networks without
// both reproduce a single-process run exactly.

// ShardRange returns the positions [lo, hi) of a global batch of n samples
// that rank of size ranks trains on: contiguous shards, the first n%size
// ranks one sample more.
func ShardRange(n, size, rank int) (lo, hi int) {
	q, r := n/size, n%size
	lo = rank*q + min(rank, r)
	hi = lo + q
	if rank < r {
		hi++
	}
	return lo, hi
}

// batchSource yields an epoch's training micro-batches: *data.Loader for
// one process, shardedLoader for several.
type batchSource interface {
	NumBatches() int
	Epoch(ctx context.Context, epoch, startBatch int) iter.Seq2[data.Batch, error]
}

// shardedLoader yields this rank's shard of every global batch. A rank
// whose shard of the last, short global batch is empty gets a Batch of
// Size 0 for it (it still takes part in the step).
type shardedLoader struct {
	global     *data.Loader // the global order and batch count
	ds         data.Dataset // the dataset, behind the cache when on
	cfg        data.LoaderConfig
	size, rank int
	local      int // this rank's shard of a full global batch
}

// newBatchSource returns the training batches of this rank.
func newBatchSource(ds data.Dataset, cfg data.LoaderConfig, comm dist.Communicator) (batchSource, error) {
	global, err := data.NewLoader(ds, cfg)
	if err != nil || comm.Size() == 1 {
		return global, err
	}
	size, rank := comm.Size(), comm.Rank()
	if cfg.BatchSize < size {
		return nil, fmt.Errorf("train.batch_size %d is the global batch and must be at least the number of ranks (%d)", cfg.BatchSize, size)
	}
	if cfg.Cache { // NewLoader accepted it: the samples do not vary with the epoch
		ds = data.NewCache(ds, cfg.CacheMaxBytes)
	}
	lo, hi := ShardRange(cfg.BatchSize, size, rank)
	return &shardedLoader{global: global, ds: ds, cfg: cfg, size: size, rank: rank, local: hi - lo}, nil
}

func (s *shardedLoader) NumBatches() int { return s.global.NumBatches() }

// shardIndices returns the dataset indices this rank trains on in global batches
// startBatch.. of epoch, and the shard size of each of those batches.
func (s *shardedLoader) shardIndices(epoch, startBatch int) (idx, counts []int) {
	order := s.global.Order(epoch)
	gb := s.cfg.BatchSize
	for b := startBatch; b < s.NumBatches(); b++ {
		batch := order[b*gb : min((b+1)*gb, len(order))]
		lo, hi := ShardRange(len(batch), s.size, s.rank)
		idx = append(idx, batch[lo:hi]...)
		counts = append(counts, hi-lo)
	}
	return idx, counts
}

func (s *shardedLoader) Epoch(ctx context.Context, epoch, startBatch int) iter.Seq2[data.Batch, error] {
	return func(yield func(data.Batch, error) bool) {
		if nb := s.NumBatches(); startBatch < 0 || startBatch > nb {
			yield(data.Batch{}, fmt.Errorf("loader: start batch %d out of range [0, %d]", startBatch, nb))
			return
		}
		idx, counts := s.shardIndices(epoch, startBatch)
		k := 0
		if len(idx) > 0 {
			view := newShardView(s.ds, idx)
			inner, err := data.NewLoader(view, data.LoaderConfig{BatchSize: s.local, Workers: s.cfg.Workers, Prefetch: s.cfg.Prefetch})
			if err != nil {
				yield(data.Batch{}, err)
				return
			}
			for b, err := range inner.Epoch(ctx, epoch, 0) {
				if err == nil && b.Size != counts[k] {
					err = fmt.Errorf("rank %d: shard of %d samples for global batch %d, want %d (internal error)", s.rank, b.Size, startBatch+k+1, counts[k])
				}
				if !yield(b, err) || err != nil {
					return
				}
				k++
			}
		}
		for ; k < len(counts); k++ { // empty shards of the last global batch
			if !yield(data.Batch{}, nil) {
				return
			}
		}
	}
}

// shardView is the dataset of one rank's samples of (the rest of) an
// epoch, in training order.
type shardView struct {
	ds     data.Dataset
	epochs data.EpochDataset // ds when its samples vary with the epoch
	idx    []int
}

func newShardView(ds data.Dataset, idx []int) *shardView {
	v := &shardView{ds: ds, idx: idx}
	if e, ok := ds.(data.EpochDataset); ok {
		v.epochs = e
		if f, ok := ds.(interface{ VariesWithEpoch() bool }); ok && !f.VariesWithEpoch() {
			v.epochs = nil
		}
	}
	return v
}

func (v *shardView) Len() int { return len(v.idx) }

func (v *shardView) Get(i int) (data.Sample, error) { return v.GetEpoch(i, 0) }

func (v *shardView) GetEpoch(i, epoch int) (data.Sample, error) {
	var s data.Sample
	var err error
	if v.epochs != nil {
		s, err = v.epochs.GetEpoch(v.idx[i], epoch)
	} else {
		s, err = v.ds.Get(v.idx[i])
	}
	if err != nil {
		return s, fmt.Errorf("(dataset sample %d) %w", v.idx[i], err)
	}
	return s, nil
}

// VariesWithEpoch tells the loader whether to call GetEpoch.
func (v *shardView) VariesWithEpoch() bool { return v.epochs != nil }

// localBatch is this rank's micro-batch size for a full global batch.
func (t *Trainer) localBatch() int {
	lo, hi := ShardRange(t.cfg.BatchSize, t.comm.Size(), t.comm.Rank())
	return hi - lo
}

// writes reports whether this process writes the run directory: it has
// one and is rank 0.
func (t *Trainer) writes() bool { return t.opts.RunDir != "" && t.comm.Rank() == 0 }

// reduceGrads sums the gradients of learn over the ranks with one
// AllreduceSum, together with the window's weight and its non-finite
// flags, and leaves the global sums in the gradients and the window
// state. Any rank's non-finite loss or gradient marks the window bad on
// every rank.
func (t *Trainer) reduceGrads(learn G.Nodes) error {
	n := 0
	for _, node := range learn {
		_, gr, err := valueAndGrad(node)
		if err != nil {
			return err
		}
		n += gr.Shape().TotalSize()
	}
	if cap(t.flat) < n+2 {
		t.flat = make([]float64, n+2)
	}
	buf := t.flat[:n+2]
	off := 0
	bad := 0.0
	if err := forEachGrad(learn, func(g32 []float32, g64 []float64) {
		for _, v := range g32 {
			buf[off] = float64(v)
			off++
		}
		off += copy(buf[off:], g64)
	}); err != nil {
		return err
	}
	if t.st.WindowBad {
		bad = 1
	}
	buf[n], buf[n+1] = float64(t.st.WindowWeight), bad
	if err := t.comm.AllreduceSum(buf); err != nil {
		return fmt.Errorf("averaging gradients over %d ranks: %w", t.comm.Size(), err)
	}
	off = 0
	if err := forEachGrad(learn, func(g32 []float32, g64 []float64) {
		for i := range g32 {
			g32[i] = float32(buf[off+i])
		}
		off += len(g32)
		off += copy(g64, buf[off:])
	}); err != nil {
		return err
	}
	t.st.WindowWeight, t.st.WindowBad = jfloat(buf[n]), buf[n+1] > 0
	return nil
}

// reduceEpoch merges the ranks' training metrics, spike-rate sums and
// throughput of the epoch, averages the non-trainable buffers, and checks
// that the weights are still identical on every rank.
func (r *run) reduceEpoch() error {
	t := r.t
	if t.comm.Size() == 1 {
		return nil
	}
	a := t.st.Train
	if a == nil {
		a = newMetricAcc(t.net.Config())
		t.st.Train = a
	}
	buf := []float64{float64(a.LossSum), float64(a.N), float64(a.Top5), float64(a.TokOK), float64(a.TokN),
		float64(a.SE), float64(a.AE), float64(a.NE), float64(r.samples), float64(t.st.SpikeWeight)}
	for _, row := range a.Conf {
		for _, c := range row {
			buf = append(buf, float64(c))
		}
	}
	mods, layers := spikeKeys(t.st.Spikes)
	for i, m := range mods {
		for _, l := range layers[i] {
			buf = append(buf, float64(t.st.Spikes[m][l]))
		}
	}
	var bufNames []string
	for _, p := range t.store.Params() {
		if !p.Trainable {
			v, err := nn.ToFloat64(p.Value)
			if err != nil {
				return err
			}
			bufNames = append(bufNames, p.Name)
			buf = append(buf, v...)
		}
	}
	// Every rank must send the same layout: check its length first.
	check := []float64{float64(len(buf)), -float64(len(buf)), r.busy.Seconds(), weightSum(t)}
	check = append(check, -check[3])
	if err := t.comm.AllreduceMax(check); err != nil {
		return fmt.Errorf("reducing the epoch's metrics: %w", err)
	}
	if check[0] != -check[1] {
		return fmt.Errorf("rank %d: the ranks disagree on the metric layout (%g vs %g values): a rank trained no batch of the epoch's spiking layers", t.comm.Rank(), check[0], -check[1])
	}
	if check[3] != -check[4] {
		return fmt.Errorf("rank %d: the ranks' weights differ (sums %.17g and %.17g): the all-reduce did not give every rank the same gradients", t.comm.Rank(), check[3], -check[4])
	}
	if err := t.comm.AllreduceSum(buf); err != nil {
		return fmt.Errorf("reducing the epoch's metrics: %w", err)
	}
	a.LossSum, a.N, a.Top5, a.TokOK, a.TokN = jfloat(buf[0]), int(buf[1]), int(buf[2]), int(buf[3]), int(buf[4])
	a.SE, a.AE, a.NE = jfloat(buf[5]), jfloat(buf[6]), int(buf[7])
	r.samples, t.st.SpikeWeight = int(buf[8]), jfloat(buf[9])
	r.busy = secondsDuration(check[2])
	off := 10
	for _, row := range a.Conf {
		for j := range row {
			row[j] = int(buf[off])
			off++
		}
	}
	for i, m := range mods {
		for _, l := range layers[i] {
			t.st.Spikes[m][l] = jfloat(buf[off])
			off++
		}
	}
	size := float64(t.comm.Size())
	for _, name := range bufNames {
		p := t.store.Lookup(name)
		n := p.Value.Shape().TotalSize()
		v := buf[off : off+n]
		for i := range v {
			v[i] /= size
		}
		if err := nn.SetFromFloat64(p.Value, v); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// spikeKeys returns the modalities and, for each, the layers of the
// spike-rate sums, sorted (the same order on every rank).
func spikeKeys(s map[string]map[string]jfloat) ([]string, [][]string) {
	mods := make([]string, 0, len(s))
	for m := range s {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	layers := make([][]string, len(mods))
	for i, m := range mods {
		for l := range s[m] {
			layers[i] = append(layers[i], l)
		}
		sort.Strings(layers[i])
	}
	return mods, layers
}

// weightSum is a checksum of the trainable weights: equal on every rank
// as long as the ranks stay in step.
func weightSum(t *Trainer) float64 {
	s := 0.0
	for _, p := range t.store.Params() {
		if p.Trainable {
			if v, err := nn.ToFloat64(p.Value); err == nil {
				for i, x := range v {
					s += x * float64(i%7+1)
				}
			}
		}
	}
	if math.IsNaN(s) {
		return math.Inf(1)
	}
	return s
}

// resetForRank drops, on ranks other than 0, the parts of a resumed state
// that are sums over the ranks (the epoch's partial metrics, the open
// window's gradients and weight): rank 0 carries them, so the next
// reduction counts them once.
func (t *Trainer) resetForRank() {
	if t.comm.Rank() == 0 {
		return
	}
	t.st.Train, t.st.Spikes, t.st.SpikeWeight = nil, nil, 0
	t.st.WindowWeight, t.st.WindowBad = 0, false
	for _, a := range t.acc {
		clear(a)
	}
}

func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
