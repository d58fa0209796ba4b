package data

import (
	"context"
	"reflect"
	"testing"
)

func TestCacheDecodesEachSampleOnce(t *testing.T) {
	ds := newMem(10)
	l := mustLoader(t, ds, LoaderConfig{BatchSize: 3, Shuffle: true, Seed: 1, Workers: 2, Cache: true})
	first := collect(t, l, 0, 0)
	second := collect(t, l, 1, 0)
	if got := ds.gets.Load(); got != 10 {
		t.Fatalf("underlying Gets after two cached epochs = %d, want 10", got)
	}
	// Each sample holds 2 float32 values: 8 bytes.
	if st := l.CacheStats(); st != (CacheStats{Entries: 10, Bytes: 80, Hits: 10, Misses: 10}) {
		t.Fatalf("stats %+v, want 10 entries, 80 bytes, 10 hits, 10 misses", st)
	}
	// Cached batches equal uncached ones.
	plain := mustLoader(t, newMem(10), LoaderConfig{BatchSize: 3, Shuffle: true, Seed: 1})
	if !reflect.DeepEqual(first, collect(t, plain, 0, 0)) || !reflect.DeepEqual(second, collect(t, plain, 1, 0)) {
		t.Fatal("batches through the cache differ from uncached batches")
	}
}

func TestCacheRespectsMemoryBound(t *testing.T) {
	ds := newMem(10)
	c := NewCache(ds, 30) // room for 3 samples of 8 bytes
	for range 2 {
		for i := range 10 {
			s, err := c.Get(i)
			if err != nil || s.Index != i {
				t.Fatalf("Get(%d) = %d, %v", i, s.Index, err)
			}
		}
	}
	if st := c.Stats(); st.Entries != 3 || st.Bytes != 24 || st.Hits != 3 || st.Misses != 17 {
		t.Fatalf("stats %+v, want 3 entries, 24 bytes, 3 hits, 17 misses", st)
	}
}

func TestCacheDoesNotCacheErrors(t *testing.T) {
	ds := newMem(3)
	ds.fail = map[int]bool{1: true}
	c := NewCache(ds, 0)
	for range 2 {
		if _, err := c.Get(1); err == nil {
			t.Fatal("Get(1) of a failing sample: no error")
		}
	}
	if ds.gets.Load() != 2 || c.Stats().Entries != 0 {
		t.Fatalf("failing sample: %d underlying Gets, %d entries; want 2 and 0", ds.gets.Load(), c.Stats().Entries)
	}
	if _, err := c.Get(3); err == nil {
		t.Fatal("Get(3) of 3 samples: no error")
	}
	l := mustLoader(t, ds, LoaderConfig{BatchSize: 3, Cache: true})
	for _, err := range l.Epoch(context.Background(), 0, 0) {
		if err == nil {
			t.Fatal("epoch over a failing sample: no error")
		}
	}
}
