package data

import (
	"fmt"
	"sync/atomic"
)

// Cache is a Dataset that keeps the samples of another Dataset in memory
// after their first successful Get, so that later epochs skip decoding.
// Errors are not cached: a failing sample fails again on every Get.
//
// Cached samples are shared between callers and must be treated as
// read-only (Collate copies them into the batch, so the Loader never
// mutates them). Only deterministic datasets should be cached: a dataset that
// augments randomly on every Get would have its first draw frozen.
//
// The memory bound counts tensor and token storage (4 bytes per float32, 8 per
// int); once it is reached, further samples are decoded on every Get instead
// of evicting earlier ones, so which samples are cached never changes what a
// Get returns. Cache is safe for concurrent use.
type Cache struct {
	ds       Dataset
	maxBytes int64
	entries  []atomic.Pointer[Sample]
	bytes    atomic.Int64
	count    atomic.Int64
	hits     atomic.Int64
	misses   atomic.Int64
}

// CacheStats are a Cache's counters.
type CacheStats struct {
	Entries int   // samples held
	Bytes   int64 // tensor and token bytes held
	Hits    int64 // Gets served from memory
	Misses  int64 // Gets that decoded
}

// NewCache wraps ds; maxBytes ≤ 0 means unbounded. The dataset's length is
// read once: it must not change afterwards.
func NewCache(ds Dataset, maxBytes int64) *Cache {
	return &Cache{ds: ds, maxBytes: maxBytes, entries: make([]atomic.Pointer[Sample], max(ds.Len(), 0))}
}

// Len is the wrapped dataset's length.
func (c *Cache) Len() int { return len(c.entries) }

// Get returns sample i from memory, or decodes it with the wrapped dataset
// and keeps it while the memory bound allows.
func (c *Cache) Get(i int) (Sample, error) {
	if i < 0 || i >= len(c.entries) {
		return Sample{}, fmt.Errorf("cache: index %d out of range [0, %d)", i, len(c.entries))
	}
	if s := c.entries[i].Load(); s != nil {
		c.hits.Add(1)
		return *s, nil
	}
	c.misses.Add(1)
	s, err := c.ds.Get(i)
	if err != nil {
		return Sample{}, err
	}
	size := sampleBytes(s)
	if c.bytes.Add(size) > c.maxBytes && c.maxBytes > 0 {
		c.bytes.Add(-size) // over budget: serve it without keeping it
		return s, nil
	}
	if c.entries[i].CompareAndSwap(nil, &s) {
		c.count.Add(1)
	} else {
		c.bytes.Add(-size) // another goroutine cached it first
	}
	return s, nil
}

// Stats returns the current counters.
func (c *Cache) Stats() CacheStats {
	return CacheStats{Entries: int(c.count.Load()), Bytes: c.bytes.Load(), Hits: c.hits.Load(), Misses: c.misses.Load()}
}

// sampleBytes is the memory a sample's tensors and token ids occupy.
func sampleBytes(s Sample) int64 {
	var n int64
	for _, t := range s.Inputs {
		n += 4 * int64(len(t.Data))
	}
	for _, ids := range s.Tokens {
		n += 8 * int64(len(ids))
	}
	return n + 4*int64(len(s.Label.Vector)) + 8*int64(len(s.Label.Tokens))
}
