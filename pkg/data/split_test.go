package data

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// checkPartition asserts that the parts of s are disjoint, sorted, and cover
// 0..n-1 exactly once.
func checkPartition(t *testing.T, s Split, n int) {
	t.Helper()
	var all []int
	for _, p := range [][]int{s.Train, s.Val, s.Test} {
		if !slices.IsSorted(p) {
			t.Fatalf("part %v is not sorted", p)
		}
		all = append(all, p...)
	}
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("parts %v do not partition 0..%d", s, n-1)
		}
	}
	if len(all) != n {
		t.Fatalf("parts hold %d samples, want %d", len(all), n)
	}
}

func TestSplitByRatio(t *testing.T) {
	r := SplitRatios{Train: 0.7, Val: 0.1, Test: 0.2}
	s, err := SplitByRatio(101, r, 9)
	if err != nil {
		t.Fatal(err)
	}
	// val = round(10.1) = 10, test = round(20.2) = 20, train = 71.
	if len(s.Train) != 71 || len(s.Val) != 10 || len(s.Test) != 20 {
		t.Fatalf("sizes %d/%d/%d, want 71/10/20", len(s.Train), len(s.Val), len(s.Test))
	}
	checkPartition(t, s, 101)
	again, _ := SplitByRatio(101, r, 9)
	if !reflect.DeepEqual(s, again) {
		t.Fatal("same seed gave a different split")
	}
	other, _ := SplitByRatio(101, r, 10)
	if reflect.DeepEqual(s, other) {
		t.Fatal("seeds 9 and 10 gave the same split")
	}
	// Not simply the first 71 samples.
	if s.Train[70] == 70 {
		t.Fatalf("train split %v looks unshuffled", s.Train)
	}
}

func TestSplitStratifiedKeepsClassBalance(t *testing.T) {
	classes := make([]int, 300)
	for i := range classes {
		classes[i] = i % 3 // 100 per class
	}
	s, err := SplitStratified(classes, SplitRatios{Train: 0.8, Val: 0.1, Test: 0.1}, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkPartition(t, s, 300)
	for name, part := range map[string][]int{"train": s.Train, "val": s.Val, "test": s.Test} {
		var per [3]int
		for _, i := range part {
			per[classes[i]]++
		}
		want := map[string]int{"train": 80, "val": 10, "test": 10}[name]
		if per != [3]int{want, want, want} {
			t.Fatalf("%s: per-class counts %v, want %d each", name, per, want)
		}
	}
}

func TestSplitRatiosValidate(t *testing.T) {
	for _, tc := range []struct {
		r    SplitRatios
		want string
	}{
		{SplitRatios{Train: 0.8, Val: 0.1}, "sum to 1"},
		{SplitRatios{Train: 1.2, Val: -0.2}, "train ratio 1.2 must be in [0, 1]"},
		{SplitRatios{Val: 0.5, Test: 0.5}, "train ratio must be positive"},
	} {
		if _, err := SplitByRatio(10, tc.r, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.r, err, tc.want)
		}
	}
}

func TestSplitByName(t *testing.T) {
	s, err := SplitByName([]string{"train", "test", "Validation", "train", " dev ", "TEST"})
	if err != nil {
		t.Fatal(err)
	}
	want := Split{Train: []int{0, 3}, Val: []int{2, 4}, Test: []int{1, 5}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("split %+v, want %+v", s, want)
	}
	if _, err := SplitByName([]string{"train", "holdout"}); err == nil || !strings.Contains(err.Error(), `sample 1 has split "holdout"`) {
		t.Fatalf("unknown split name: error %v", err)
	}
}

func TestSubset(t *testing.T) {
	train, val, test, err := Split{Train: []int{4, 1}, Val: []int{}, Test: []int{0}}.Datasets(newMem(5))
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 2 || val.Len() != 0 || test.Len() != 1 {
		t.Fatalf("lengths %d/%d/%d, want 2/0/1", train.Len(), val.Len(), test.Len())
	}
	s, err := train.Get(0)
	if err != nil || s.Index != 0 || s.Inputs["x"].Data[0] != 4 {
		t.Fatalf("train.Get(0) = index %d x %v err %v; want the parent's sample 4 at index 0", s.Index, s.Inputs["x"].Data, err)
	}
	if _, err := train.Get(2); err == nil {
		t.Fatal("Get past the end: no error")
	}
	if _, err := NewSubset(newMem(5), []int{5}); err == nil || !strings.Contains(err.Error(), "index 5 (entry 0) out of range [0, 5)") {
		t.Fatalf("out-of-range index: error %v", err)
	}
	if _, ok := train.(EpochDataset); ok {
		t.Fatal("a subset of a plain dataset claims to be an EpochDataset")
	}
	eds, err := NewSubset(epochDataset{memDataset: newMem(5)}, []int{3})
	if err != nil {
		t.Fatal(err)
	}
	e, ok := eds.(EpochDataset)
	if !ok {
		t.Fatal("a subset of an EpochDataset is not one")
	}
	if s, err := e.GetEpoch(0, 2); err != nil || s.Inputs["x"].Data[1] != 6+2000 {
		t.Fatalf("GetEpoch(0, 2) = %v, %v; want x[1] = 2006", s.Inputs["x"].Data, err)
	}
	if !variesWithEpoch(eds) {
		t.Fatal("a subset of a varying EpochDataset claims not to vary")
	}
	fixed, _ := NewSubset(epochDataset{memDataset: newMem(5), fixed: true}, []int{3})
	if variesWithEpoch(fixed) {
		t.Fatal("a subset of a non-varying EpochDataset claims to vary")
	}
}
