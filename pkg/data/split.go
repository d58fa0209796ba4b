package data

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Split holds the dataset indices of each part of a train/validation/test
// split, each list in ascending order. The parts are disjoint.
type Split struct {
	Train, Val, Test []int
}

// SplitRatios are the fractions of the samples in each part. They must be
// ≥ 0, Train > 0, and sum to 1 (within 1e-9).
type SplitRatios struct {
	Train, Val, Test float64
}

// Validate checks the ratios.
func (r SplitRatios) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"train", r.Train}, {"val", r.Val}, {"test", r.Test}} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			return fmt.Errorf("split: %s ratio %v must be in [0, 1]", f.name, f.v)
		}
	}
	if r.Train == 0 {
		return fmt.Errorf("split: train ratio must be positive")
	}
	if sum := r.Train + r.Val + r.Test; math.Abs(sum-1) > 1e-9 {
		return fmt.Errorf("split: ratios train %v + val %v + test %v = %v, must sum to 1", r.Train, r.Val, r.Test, sum)
	}
	return nil
}

// counts splits n items into (train, val, test) sizes: val and test are
// rounded to the nearest integer, train takes the rest.
func (r SplitRatios) counts(n int) (train, val, test int) {
	val = int(math.Round(float64(n) * r.Val))
	test = int(math.Round(float64(n) * r.Test))
	if val+test > n { // possible only through rounding when train is tiny
		test = n - val
	}
	return n - val - test, val, test
}

// SplitByRatio assigns n samples to train/val/test at random, a pure function
// of (n, ratios, seed): val gets round(n·Val) samples, test round(n·Test),
// train the rest.
func SplitByRatio(n int, ratios SplitRatios, seed int64) (Split, error) {
	if err := ratios.Validate(); err != nil {
		return Split{}, err
	}
	if n < 0 {
		return Split{}, fmt.Errorf("split: negative sample count %d", n)
	}
	var s Split
	s.assign(newRNG(seed, streamSplit).perm(n), ratios)
	s.sort()
	return s, nil
}

// SplitStratified is SplitByRatio applied to each class separately, so every
// part keeps the class proportions of the whole (up to rounding per class).
// classes[i] is sample i's class (any integers); the result depends only on
// (classes, ratios, seed).
func SplitStratified(classes []int, ratios SplitRatios, seed int64) (Split, error) {
	if err := ratios.Validate(); err != nil {
		return Split{}, err
	}
	byClass := map[int][]int{}
	for i, c := range classes {
		byClass[c] = append(byClass[c], i)
	}
	keys := make([]int, 0, len(byClass))
	for c := range byClass {
		keys = append(keys, c)
	}
	slices.Sort(keys)
	var s Split
	for _, c := range keys {
		members := byClass[c]
		newRNG(seed, streamSplit, uint64(int64(c))).shuffle(members)
		s.assign(members, ratios)
	}
	s.sort()
	return s, nil
}

// assign appends the first items of order to Train, the next to Val and the
// rest to Test, in the proportions of ratios.
func (s *Split) assign(order []int, ratios SplitRatios) {
	train, val, _ := ratios.counts(len(order))
	s.Train = append(s.Train, order[:train]...)
	s.Val = append(s.Val, order[train:train+val]...)
	s.Test = append(s.Test, order[train+val:]...)
}

func (s *Split) sort() {
	for _, p := range []*[]int{&s.Train, &s.Val, &s.Test} {
		if *p == nil {
			*p = []int{}
		}
		sort.Ints(*p)
	}
}

// SplitByName builds a split from a per-sample part name, as given by a
// manifest's split column or by which file a sample was listed in. Accepted
// names (case-insensitive): "train"; "val", "valid", "validation", "dev";
// "test". Any other name is an error naming the sample.
func SplitByName(names []string) (Split, error) {
	s := Split{Train: []int{}, Val: []int{}, Test: []int{}}
	for i, name := range names {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "train":
			s.Train = append(s.Train, i)
		case "val", "valid", "validation", "dev":
			s.Val = append(s.Val, i)
		case "test":
			s.Test = append(s.Test, i)
		default:
			return Split{}, fmt.Errorf("split: sample %d has split %q; use train, val or test", i, name)
		}
	}
	return s, nil
}

// Subset is a view of the samples of a parent dataset listed in Indices, in
// that order: sample i of the subset is sample Indices[i] of the parent, with
// Sample.Index set to i (its position in the subset; map it back with
// Indices). It passes epoch-dependent samples through when the parent is an
// EpochDataset (see NewSubset).
type Subset struct {
	parent  Dataset
	indices []int
}

// epochSubset is a Subset of an EpochDataset.
type epochSubset struct{ *Subset }

// NewSubset returns the view of parent restricted to indices (which are
// copied; repeats are allowed). The result is an EpochDataset exactly when
// parent is one. An index outside [0, parent.Len()) is an error.
func NewSubset(parent Dataset, indices []int) (Dataset, error) {
	n := parent.Len()
	for k, i := range indices {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("subset: index %d (entry %d) out of range [0, %d)", i, k, n)
		}
	}
	s := &Subset{parent: parent, indices: slices.Clone(indices)}
	if _, ok := parent.(EpochDataset); ok {
		return epochSubset{s}, nil
	}
	return s, nil
}

// Len is the number of indices.
func (s *Subset) Len() int { return len(s.indices) }

// Indices returns a copy of the parent indices, in subset order.
func (s *Subset) Indices() []int { return slices.Clone(s.indices) }

// Get returns the parent's sample Indices[i], with Index = i.
func (s *Subset) Get(i int) (Sample, error) {
	if i < 0 || i >= len(s.indices) {
		return Sample{}, fmt.Errorf("subset: index %d out of range [0, %d)", i, len(s.indices))
	}
	smp, err := s.parent.Get(s.indices[i])
	smp.Index = i
	return smp, err
}

// GetEpoch is Get through the parent's GetEpoch.
func (s epochSubset) GetEpoch(i, epoch int) (Sample, error) {
	if i < 0 || i >= len(s.indices) {
		return Sample{}, fmt.Errorf("subset: index %d out of range [0, %d)", i, len(s.indices))
	}
	smp, err := s.parent.(EpochDataset).GetEpoch(s.indices[i], epoch)
	smp.Index = i
	return smp, err
}

// VariesWithEpoch reports whether the parent's samples change with the
// epoch (see EpochDataset).
func (s epochSubset) VariesWithEpoch() bool { return variesWithEpoch(s.parent) }

// Datasets returns the three parts of s as subsets of parent (an empty part
// is an empty dataset).
func (s Split) Datasets(parent Dataset) (train, val, test Dataset, err error) {
	if train, err = NewSubset(parent, s.Train); err != nil {
		return nil, nil, nil, fmt.Errorf("train split: %w", err)
	}
	if val, err = NewSubset(parent, s.Val); err != nil {
		return nil, nil, nil, fmt.Errorf("val split: %w", err)
	}
	if test, err = NewSubset(parent, s.Test); err != nil {
		return nil, nil, nil, fmt.Errorf("test split: %w", err)
	}
	return train, val, test, nil
}
