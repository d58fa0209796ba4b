package data

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMomentsAccumulator(t *testing.T) {
	// Two channels, planar: c0 = 1,2,3,4  c1 = 10,10,10,10; then interleaved adds.
	a := NewMomentsAccumulator(2)
	if err := a.AddPlanar([]float32{1, 2, 3, 4, 10, 10, 10, 10}); err != nil {
		t.Fatal(err)
	}
	b := NewMomentsAccumulator(2)
	b.AddInterleaved([]float32{5, 20, 6, 30}) // c0 = 5,6  c1 = 20,30
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	m := a.Moments()
	// c0 = 1..6: mean 3.5, population std sqrt(35/12); c1 = 10,10,10,10,20,30.
	near(t, "mean0", m.Mean[0], 3.5, 1e-12)
	near(t, "std0", m.Std[0], math.Sqrt(35.0/12), 1e-12)
	c1 := []float64{10, 10, 10, 10, 20, 30}
	var mu, v float64
	for _, x := range c1 {
		mu += x / 6
	}
	for _, x := range c1 {
		v += (x - mu) * (x - mu) / 6
	}
	near(t, "mean1", m.Mean[1], mu, 1e-12)
	near(t, "std1", m.Std[1], math.Sqrt(v), 1e-12)
	if m.Count[0] != 6 || m.Count[1] != 6 {
		t.Errorf("counts %v", m.Count)
	}
	mean, std := (&Moments{Count: []int64{3}, Mean: []float64{2}, Std: []float64{0}}).Float32()
	if mean[0] != 2 || std[0] != 1 {
		t.Errorf("constant channel: mean %v std %v, want std 1", mean, std)
	}
	if err := a.AddPlanar([]float32{1, 2, 3}); err == nil {
		t.Error("3 values into 2 channels: no error")
	}
	if err := a.Merge(NewMomentsAccumulator(3)); err == nil {
		t.Error("merging 3 channels into 2: no error")
	}
}

func TestSortCategories(t *testing.T) {
	if got := SortCategories([]string{"10", "2", "1"}); strings.Join(got, ",") != "1,2,10" {
		t.Errorf("numeric: %v", got)
	}
	if got := SortCategories([]string{"dog", "cat", "10"}); strings.Join(got, ",") != "10,cat,dog" {
		t.Errorf("lexical: %v", got)
	}
}

func TestStatsSaveLoad(t *testing.T) {
	v := buildVocab(t, "word", VocabConfig{}, "a b")
	s := &Stats{Version: StatsVersion, TrainRows: 3, Categories: []string{"cat", "dog"},
		Label:   &Moments{Count: []int64{3}, Mean: []float64{1.5}, Std: []float64{0.5}},
		Columns: map[string]ColumnStats{"text": {Vocab: v}, "sensor": {Moments: &Moments{Count: []int64{4, 4}, Mean: []float64{1, 2}, Std: []float64{3, 4}}}}}
	path := filepath.Join(t.TempDir(), "run", "data_stats.json")
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadStats(path)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := got.ClassID("dog"); !ok || id != 1 {
		t.Errorf("ClassID(dog) = %d %v", id, ok)
	}
	if _, ok := got.ClassID("cow"); ok {
		t.Error("cow is a class")
	}
	if got.Columns["sensor"].Moments.Std[1] != 4 || got.Columns["text"].Vocab.VocabSize() != 6 || got.Label.Mean[0] != 1.5 {
		t.Errorf("round trip: %+v", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	for _, bad := range []string{
		`{"version": 99}`,
		`{"version": 1, "categories": ["a", "a"]}`,
		`{"version": 1, "columns": {"x": {"moments": {"count": [1], "mean": [1, 2], "std": [1]}}}}`,
		`{"version": 1, "label": {"count": [1], "mean": [1], "std": [-1]}}`,
		`not json`,
	} {
		os.WriteFile(path, []byte(bad), 0o644)
		if _, err := LoadStats(path); err == nil || !strings.Contains(err.Error(), "data_stats.json") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
