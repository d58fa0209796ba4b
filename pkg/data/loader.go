package data

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
)

// LoaderConfig configures a Loader. The zero value is not valid: BatchSize
// must be set.
type LoaderConfig struct {
	// BatchSize is the number of samples per batch (≥ 1).
	BatchSize int
	// Shuffle visits the samples in a fresh pseudo-random order every epoch,
	// a pure function of (Seed, epoch). False visits them in dataset order.
	Shuffle bool
	// Seed names the shuffling sequence (any value, 0 included).
	Seed int64
	// DropLast drops the final batch of an epoch when it has fewer than
	// BatchSize samples; false keeps it as a short batch.
	DropLast bool
	// Workers is the number of goroutines that decode samples in parallel
	// (≥ 0; 0 means 1). The batches do not depend on it.
	Workers int
	// Prefetch is how many batches may be decoded ahead of the one the
	// consumer is waiting for (≥ 0; 0 means no read-ahead: decoding of the
	// next batch starts when the consumer asks for it).
	Prefetch int
	// Cache keeps decoded samples in memory after their first decode, so
	// later epochs skip decoding (see Cache). Not allowed with an
	// EpochDataset, whose samples change every epoch.
	Cache bool
	// CacheMaxBytes bounds the cache's tensor memory in bytes (≥ 0; 0 means
	// unbounded). Samples that do not fit are decoded every time.
	CacheMaxBytes int64
}

// EpochDataset is implemented by datasets whose samples depend on the epoch,
// typically through seeded augmentation (random crops, flips, noise). The
// Loader calls GetEpoch instead of Get, so that sample i of epoch e is a pure
// function of (i, e) and a resumed run decodes exactly the tensors an
// uninterrupted run would. Like Get, GetEpoch must be safe for concurrent use.
//
// An EpochDataset whose samples do not in fact change (augmentation off) may
// say so with a method VariesWithEpoch() bool returning false; the Loader
// then reads it with Get and allows the cache.
type EpochDataset interface {
	Dataset
	GetEpoch(i, epoch int) (Sample, error)
}

// variesWithEpoch reports whether ds's samples depend on the epoch (see
// EpochDataset).
func variesWithEpoch(ds Dataset) bool {
	if _, ok := ds.(EpochDataset); !ok {
		return false
	}
	if v, ok := ds.(interface{ VariesWithEpoch() bool }); ok {
		return v.VariesWithEpoch()
	}
	return true
}

// SampleError is the error of one sample: Index is its position in the
// loader's dataset (the argument given to Get).
type SampleError struct {
	Index int
	Err   error
}

// Error reads "sample <index>: <cause>".
func (e *SampleError) Error() string { return fmt.Sprintf("sample %d: %v", e.Index, e.Err) }

// Unwrap returns the decoder's error.
func (e *SampleError) Unwrap() error { return e.Err }

// Loader turns a Dataset into a deterministic stream of batches.
//
// Epoch e visits the samples in Order(e) and cuts that order into
// NumBatches() consecutive batches of BatchSize samples (the last one short
// unless DropLast). Samples are decoded by Workers goroutines, at most
// Prefetch batches ahead of the consumer, and collated in order, so the
// batches are identical for any Workers and Prefetch. Because the order is a
// pure function of (Seed, epoch), a run resumed at (epoch, batch) sees
// exactly the batches an uninterrupted run would.
//
// A Loader may run several epochs concurrently; its Dataset must then be safe
// for concurrent use (as Dataset requires anyway).
type Loader struct {
	ds    Dataset
	get   func(i, epoch int) (Sample, error)
	cfg   LoaderConfig
	cache *Cache
}

// NewLoader validates cfg and returns a loader over ds.
func NewLoader(ds Dataset, cfg LoaderConfig) (*Loader, error) {
	if ds == nil {
		return nil, errors.New("loader: nil dataset")
	}
	switch {
	case cfg.BatchSize < 1:
		return nil, fmt.Errorf("loader: batch size %d must be at least 1", cfg.BatchSize)
	case cfg.Workers < 0:
		return nil, fmt.Errorf("loader: workers %d must be 0 (meaning 1) or more", cfg.Workers)
	case cfg.Prefetch < 0:
		return nil, fmt.Errorf("loader: prefetch %d must be 0 or more", cfg.Prefetch)
	case cfg.CacheMaxBytes < 0:
		return nil, fmt.Errorf("loader: cache max bytes %d must be 0 (unbounded) or more", cfg.CacheMaxBytes)
	case cfg.CacheMaxBytes > 0 && !cfg.Cache:
		return nil, fmt.Errorf("loader: cache max bytes %d is set but the cache is off", cfg.CacheMaxBytes)
	}
	if ds.Len() < 0 {
		return nil, fmt.Errorf("loader: dataset length %d is negative", ds.Len())
	}
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	l := &Loader{ds: ds, cfg: cfg}
	if variesWithEpoch(ds) {
		if cfg.Cache {
			return nil, errors.New("loader: the cache would freeze this dataset's per-epoch samples (augmentation); turn the cache or the augmentation off")
		}
		l.get = ds.(EpochDataset).GetEpoch
		return l, nil
	}
	src := ds
	if cfg.Cache {
		l.cache = NewCache(ds, cfg.CacheMaxBytes)
		src = l.cache
	}
	l.get = func(i, _ int) (Sample, error) { return src.Get(i) }
	return l, nil
}

// Config returns the loader's configuration (Workers resolved).
func (l *Loader) Config() LoaderConfig { return l.cfg }

// Len is the number of samples in the dataset.
func (l *Loader) Len() int { return l.ds.Len() }

// NumBatches is the number of batches per epoch: ⌊N/B⌋ with DropLast,
// ⌈N/B⌉ without.
func (l *Loader) NumBatches() int {
	n, b := l.ds.Len(), l.cfg.BatchSize
	if l.cfg.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// CacheStats reports the cache's counters (zero when the cache is off).
func (l *Loader) CacheStats() CacheStats {
	if l.cache == nil {
		return CacheStats{}
	}
	return l.cache.Stats()
}

// Order returns the dataset indices in the order epoch visits them: a
// permutation drawn from (Seed, epoch) when Shuffle is on, 0..N-1 otherwise.
// Different epochs give independent permutations.
func (l *Loader) Order(epoch int) []int {
	n := l.ds.Len()
	if !l.cfg.Shuffle {
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		return order
	}
	return newRNG(l.cfg.Seed, streamShuffle, uint64(epoch)).perm(n)
}

// BatchIndices returns the dataset indices of batch b of epoch, in batch
// order.
func (l *Loader) BatchIndices(epoch, b int) ([]int, error) {
	if b < 0 || b >= l.NumBatches() {
		return nil, fmt.Errorf("loader: batch %d out of range [0, %d)", b, l.NumBatches())
	}
	return l.batchOf(l.Order(epoch), b), nil
}

func (l *Loader) batchOf(order []int, b int) []int {
	lo := b * l.cfg.BatchSize
	return order[lo:min(lo+l.cfg.BatchSize, len(order))]
}

// pendingBatch collects the samples of one batch as workers decode them.
type pendingBatch struct {
	number    int
	indices   []int
	samples   []Sample
	errs      []error
	remaining atomic.Int64
	done      chan struct{} // closed when every sample is in
}

func (p *pendingBatch) put(k int, s Sample, err error) {
	p.samples[k], p.errs[k] = s, err
	if p.remaining.Add(-1) == 0 {
		close(p.done)
	}
}

// firstError is the error of the earliest failing sample in batch order, so
// the reported error does not depend on worker scheduling.
func (p *pendingBatch) firstError() error {
	for k, err := range p.errs {
		if err != nil {
			return &SampleError{Index: p.indices[k], Err: err}
		}
	}
	return nil
}

type decodeJob struct {
	batch *pendingBatch
	k     int
}

// Epoch returns the batches of epoch from batch startBatch on (0 for a fresh
// epoch; a checkpoint's next batch to resume). Iteration yields (batch, nil)
// per batch and stops after the first error, which it yields as
// (Batch{}, err): a failing sample gives a *SampleError naming its index (the
// earliest failing one in the batch), a cancelled ctx gives ctx.Err().
// Breaking out of the loop, an error and cancellation all stop the decoding
// goroutines before the iteration returns: nothing leaks.
//
//	for batch, err := range loader.Epoch(ctx, epoch, 0) {
//		if err != nil {
//			return err
//		}
//		...
//	}
func (l *Loader) Epoch(ctx context.Context, epoch, startBatch int) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		nb := l.NumBatches()
		if startBatch < 0 || startBatch > nb {
			yield(Batch{}, fmt.Errorf("loader: start batch %d out of range [0, %d]", startBatch, nb))
			return
		}
		if startBatch == nb {
			return
		}
		if err := ctx.Err(); err != nil {
			yield(Batch{}, err)
			return
		}
		order := l.Order(epoch)
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() {
			cancel()
			wg.Wait()
		}()

		// The producer hands batches to the consumer in order through
		// ready (its buffer is the read-ahead) and their samples to the
		// workers through jobs.
		ready := make(chan *pendingBatch, l.cfg.Prefetch)
		jobs := make(chan decodeJob, l.cfg.Workers)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(jobs)
			defer close(ready)
			for b := startBatch; b < nb; b++ {
				idx := l.batchOf(order, b)
				p := &pendingBatch{number: b, indices: idx, samples: make([]Sample, len(idx)),
					errs: make([]error, len(idx)), done: make(chan struct{})}
				p.remaining.Store(int64(len(idx)))
				select {
				case ready <- p:
				case <-ctx.Done():
					return
				}
				for k := range idx {
					select {
					case jobs <- decodeJob{batch: p, k: k}:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
		for range l.cfg.Workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case j, ok := <-jobs:
						if !ok {
							return
						}
						s, err := l.decode(j.batch.indices[j.k], epoch)
						j.batch.put(j.k, s, err)
					case <-ctx.Done():
						return
					}
				}
			}()
		}

		delivered := 0
		for p := range ready {
			select {
			case <-p.done:
			case <-ctx.Done():
			}
			if err := ctx.Err(); err != nil { // cancellation wins over a ready batch
				yield(Batch{}, err)
				return
			}
			if err := p.firstError(); err != nil {
				yield(Batch{}, fmt.Errorf("epoch %d, batch %d: %w", epoch, p.number, err))
				return
			}
			batch, err := Collate(p.samples)
			if err != nil {
				yield(Batch{}, fmt.Errorf("epoch %d, batch %d: %w", epoch, p.number, err))
				return
			}
			if !yield(batch, nil) {
				return
			}
			delivered++
		}
		// ready closes early only when ctx was cancelled.
		if delivered < nb-startBatch {
			yield(Batch{}, ctx.Err())
		}
	}
}

// decode gets one sample, turning a decoder panic into an error so that one
// bad file cannot kill a long run from inside a worker goroutine.
func (l *Loader) decode(i, epoch int) (s Sample, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panicked: %v", r)
		}
	}()
	return l.get(i, epoch)
}
