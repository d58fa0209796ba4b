package data

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// StatsVersion is the format version written into a Stats file.
const StatsVersion = 1

// Stats are the dataset statistics computed on the training split and saved
// next to a run, so that evaluation, resumption and export apply exactly the
// mapping and normalisation the model was trained with.
type Stats struct {
	Version int `json:"version"`
	// TrainRows is the number of training rows the statistics come from.
	TrainRows int `json:"train_rows"`
	// Categories maps class id → label string (class id = index).
	Categories []string `json:"categories,omitempty"`
	// Label holds the per-component mean/std of number/vector labels.
	Label *Moments `json:"label,omitempty"`
	// Columns holds per-column statistics by manifest column name.
	Columns map[string]ColumnStats `json:"columns,omitempty"`

	classIndex map[string]int
}

// ColumnStats are the statistics of one input column: per-channel moments
// for "dataset" normalisation, or the vocabulary of a word/char text column.
type ColumnStats struct {
	Moments *Moments `json:"moments,omitempty"`
	Vocab   *Vocab   `json:"vocab,omitempty"`
}

// Moments are per-channel mean and standard deviation (population, ddof 0)
// with the number of values each was computed from.
type Moments struct {
	Count []int64   `json:"count"`
	Mean  []float64 `json:"mean"`
	Std   []float64 `json:"std"`
}

// Float32 returns Mean and Std as float32 slices for normalisation. A
// channel with zero variance gets std 1 (it is only shifted), since dividing
// by zero would turn a constant channel into NaNs.
func (m *Moments) Float32() (mean, std []float32) {
	mean = make([]float32, len(m.Mean))
	std = make([]float32, len(m.Std))
	for i := range m.Mean {
		mean[i] = float32(m.Mean[i])
		std[i] = float32(m.Std[i])
		if !(std[i] > 1e-12) {
			std[i] = 1
		}
	}
	return mean, std
}

// MomentsAccumulator accumulates per-channel moments. Partial accumulators
// merge exactly (Chan et al.'s pairwise update), so statistics computed in
// parallel and merged in row order are deterministic.
type MomentsAccumulator struct {
	n    []int64
	mean []float64
	m2   []float64
}

// NewMomentsAccumulator starts an accumulator of c channels.
func NewMomentsAccumulator(c int) *MomentsAccumulator {
	return &MomentsAccumulator{n: make([]int64, c), mean: make([]float64, c), m2: make([]float64, c)}
}

// Channels is the number of channels.
func (a *MomentsAccumulator) Channels() int { return len(a.n) }

// AddPlanar adds a [C, ...] tensor (channel-major: image [C,H,W]).
func (a *MomentsAccumulator) AddPlanar(data []float32) error {
	C := len(a.n)
	if C == 0 || len(data)%C != 0 {
		return fmt.Errorf("moments: %d values do not split into %d channels", len(data), C)
	}
	plane := len(data) / C
	for c := 0; c < C; c++ {
		var s float64
		seg := data[c*plane : (c+1)*plane]
		for _, v := range seg {
			s += float64(v)
		}
		mu := s / float64(plane)
		var m2 float64
		for _, v := range seg {
			d := float64(v) - mu
			m2 += d * d
		}
		a.merge(c, int64(plane), mu, m2)
	}
	return nil
}

// AddInterleaved adds a [..., C] tensor (channel-last: sensor [T,C]).
func (a *MomentsAccumulator) AddInterleaved(data []float32) error {
	C := len(a.n)
	if C == 0 || len(data)%C != 0 {
		return fmt.Errorf("moments: %d values do not split into %d channels", len(data), C)
	}
	T := len(data) / C
	for c := 0; c < C; c++ {
		var s float64
		for t := 0; t < T; t++ {
			s += float64(data[t*C+c])
		}
		mu := s / float64(T)
		var m2 float64
		for t := 0; t < T; t++ {
			d := float64(data[t*C+c]) - mu
			m2 += d * d
		}
		a.merge(c, int64(T), mu, m2)
	}
	return nil
}

// AddVideo adds a [F,C,H,W] tensor (per-channel over frames and pixels).
func (a *MomentsAccumulator) AddVideo(t Tensor) error {
	if len(t.Shape) != 4 || t.Shape[1] != len(a.n) {
		return fmt.Errorf("moments: video shape %v, want [F,%d,H,W]", t.Shape, len(a.n))
	}
	per := len(t.Data) / max(t.Shape[0], 1)
	for f := 0; f < t.Shape[0]; f++ {
		if err := a.AddPlanar(t.Data[f*per : (f+1)*per]); err != nil {
			return err
		}
	}
	return nil
}

// Merge adds another accumulator's values.
func (a *MomentsAccumulator) Merge(b *MomentsAccumulator) error {
	if len(b.n) != len(a.n) {
		return fmt.Errorf("moments: merging %d channels into %d", len(b.n), len(a.n))
	}
	for c := range a.n {
		a.merge(c, b.n[c], b.mean[c], b.m2[c])
	}
	return nil
}

func (a *MomentsAccumulator) merge(c int, n int64, mean, m2 float64) {
	if n == 0 {
		return
	}
	na := a.n[c]
	tot := na + n
	d := mean - a.mean[c]
	a.mean[c] += d * float64(n) / float64(tot)
	a.m2[c] += m2 + d*d*float64(na)*float64(n)/float64(tot)
	a.n[c] = tot
}

// Moments returns the accumulated statistics.
func (a *MomentsAccumulator) Moments() *Moments {
	m := &Moments{Count: append([]int64(nil), a.n...), Mean: append([]float64(nil), a.mean...), Std: make([]float64, len(a.n))}
	for c := range a.n {
		if a.n[c] > 0 {
			m.Std[c] = math.Sqrt(a.m2[c] / float64(a.n[c]))
		}
	}
	return m
}

// SortCategories orders label strings for class ids: numerically when every
// label is an integer ("2" before "10"), lexically otherwise.
func SortCategories(labels []string) []string {
	out := append([]string(nil), labels...)
	numeric := true
	for _, l := range out {
		if _, err := strconv.ParseInt(l, 10, 64); err != nil {
			numeric = false
			break
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if numeric {
			a, _ := strconv.ParseInt(out[i], 10, 64)
			b, _ := strconv.ParseInt(out[j], 10, 64)
			return a < b
		}
		return out[i] < out[j]
	})
	return out
}

// ClassID maps a label string to its class id.
func (s *Stats) ClassID(label string) (int, bool) {
	if s.classIndex != nil {
		id, ok := s.classIndex[label]
		return id, ok
	}
	for i, c := range s.Categories {
		if c == label {
			return i, true
		}
	}
	return NoClass, false
}

func (s *Stats) index() {
	s.classIndex = make(map[string]int, len(s.Categories))
	for i, c := range s.Categories {
		s.classIndex[c] = i
	}
}

// Save writes the statistics as indented JSON, atomically (temporary file,
// sync, rename), creating the directory if needed.
func (s *Stats) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".stats-*.json")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(append(b, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	for _, e := range []error{werr, serr, cerr} {
		if e != nil {
			os.Remove(tmp)
			return e
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// LoadStats reads statistics written by Save and checks their invariants.
func LoadStats(path string) (*Stats, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Stats
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, inputErr(path, 0, "", err)
	}
	if err := s.validate(); err != nil {
		return nil, inputErr(path, 0, "", err)
	}
	s.index()
	return &s, nil
}

func (s *Stats) validate() error {
	if s.Version != StatsVersion {
		return fmt.Errorf("stats version %d, this lsfuse reads %d", s.Version, StatsVersion)
	}
	seen := map[string]bool{}
	for _, c := range s.Categories {
		if seen[c] {
			return fmt.Errorf("category %q listed twice", c)
		}
		seen[c] = true
	}
	check := func(what string, m *Moments) error {
		if m == nil {
			return nil
		}
		if len(m.Mean) != len(m.Std) || len(m.Count) != len(m.Mean) {
			return fmt.Errorf("%s: mean/std/count lengths differ", what)
		}
		for i := range m.Mean {
			if math.IsNaN(m.Mean[i]) || math.IsInf(m.Mean[i], 0) || !(m.Std[i] >= 0) || math.IsInf(m.Std[i], 0) {
				return fmt.Errorf("%s: channel %d has mean %v std %v", what, i, m.Mean[i], m.Std[i])
			}
		}
		return nil
	}
	if err := check("label", s.Label); err != nil {
		return err
	}
	for name, c := range s.Columns {
		if err := check("column "+name, c.Moments); err != nil {
			return err
		}
	}
	return nil
}
