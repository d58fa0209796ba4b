package data

import (
	"fmt"
	"sort"
)

// Tensor is a dense row-major float32 array. Shape lists the axis sizes
// (outermost first); len(Data) equals the product of Shape. A zero Tensor
// (nil Shape, nil Data) means "absent".
type Tensor struct {
	Shape []int
	Data  []float32
}

// NewTensor allocates a zero-filled tensor of the given shape. It returns an
// error when an axis is negative.
func NewTensor(shape ...int) (Tensor, error) {
	n, err := numElements(shape)
	if err != nil {
		return Tensor{}, err
	}
	return Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, n)}, nil
}

// Len is the number of elements, the product of Shape (1 for a scalar shape []).
func (t Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Validate reports whether len(Data) matches Shape.
func (t Tensor) Validate() error {
	n, err := numElements(t.Shape)
	if err != nil {
		return err
	}
	if n != len(t.Data) {
		return fmt.Errorf("tensor shape %v needs %d values, has %d", t.Shape, n, len(t.Data))
	}
	return nil
}

// Clone returns a deep copy.
func (t Tensor) Clone() Tensor {
	return Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

func numElements(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative axis in shape %v", shape)
		}
		n *= d
	}
	return n, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// NoClass is the Label.Class of a sample without a class label.
const NoClass = -1

// Label is the target of one sample. Which field is used depends on the
// task: Class (class id in [0, numClasses), NoClass when the task has no
// class) for classification, Vector for regression targets, Tokens for
// sequence targets (captioning). Unused slices stay nil.
type Label struct {
	Class  int
	Vector []float32
	Tokens []int
}

// Sample is one decoded example. Inputs holds float modalities (image
// [C,H,W], audio [L], sensor [T,C], video [F,C,H,W]) keyed by modality name;
// Tokens holds integer modalities (text ids [L]). Present marks, per modality
// name, whether the modality is available in this sample: a missing modality
// is Present[name] == false and then has a zero tensor of the right shape (or
// pad tokens) so that batches stay rectangular. Index is the sample's
// position in its dataset.
type Sample struct {
	Index   int
	Inputs  map[string]Tensor
	Tokens  map[string][]int
	Present map[string]bool
	Label   Label
}

// Dataset is a random-access collection of samples. Get must be safe for
// concurrent use by several goroutines and must return an error (never panic)
// for a bad index or bad underlying data.
type Dataset interface {
	Len() int
	Get(i int) (Sample, error)
}

// Batch is a stack of samples ready to feed a model.
//
//   - Inputs[name] has shape [B, ...] (the per-sample shape with a batch axis).
//   - Tokens[name] is the row-major [B, TokenLen[name]] id matrix, flattened.
//   - Present[name][b] tells whether modality name is available in sample b.
//   - Classes[b] is the class label (nil when the samples carry no class: all -1).
//   - Vectors is [B, K] regression targets (zero Tensor when absent).
//   - LabelTokens is the row-major [B, LabelLen] target-token matrix (nil when absent).
type Batch struct {
	Size        int
	Indices     []int
	Inputs      map[string]Tensor
	Tokens      map[string][]int
	TokenLen    map[string]int
	Present     map[string][]bool
	Classes     []int
	Vectors     Tensor
	LabelTokens []int
	LabelLen    int
}

// Collate stacks samples into a Batch. Every sample must carry the same
// modalities with the same per-sample shapes and token lengths, and the same
// kind of label; a mismatch is an error that names the modality (or label
// field) and the sample's dataset index. Tensors are copied: the batch does
// not alias the samples.
func Collate(samples []Sample) (Batch, error) {
	if len(samples) == 0 {
		return Batch{}, fmt.Errorf("collate: empty batch")
	}
	B := len(samples)
	first := samples[0]
	b := Batch{
		Size:     B,
		Indices:  make([]int, B),
		Inputs:   make(map[string]Tensor, len(first.Inputs)),
		Tokens:   make(map[string][]int, len(first.Tokens)),
		TokenLen: make(map[string]int, len(first.Tokens)),
		Present:  make(map[string][]bool),
	}
	for i, s := range samples {
		b.Indices[i] = s.Index
	}

	for _, name := range sortedKeys(first.Inputs) {
		t0 := first.Inputs[name]
		if err := t0.Validate(); err != nil {
			return Batch{}, fmt.Errorf("collate: modality %q, sample %d: %w", name, first.Index, err)
		}
		per := len(t0.Data)
		out := Tensor{Shape: append([]int{B}, t0.Shape...), Data: make([]float32, B*per)}
		for i, s := range samples {
			t, ok := s.Inputs[name]
			if !ok {
				return Batch{}, fmt.Errorf("collate: modality %q missing from sample %d (present in sample %d)", name, s.Index, first.Index)
			}
			if !sameShape(t.Shape, t0.Shape) || len(t.Data) != per {
				return Batch{}, fmt.Errorf("collate: modality %q, sample %d: shape %v (len %d) differs from sample %d's %v",
					name, s.Index, t.Shape, len(t.Data), first.Index, t0.Shape)
			}
			copy(out.Data[i*per:], t.Data)
		}
		b.Inputs[name] = out
	}
	for _, s := range samples {
		if len(s.Inputs) != len(first.Inputs) {
			return Batch{}, fmt.Errorf("collate: sample %d has modalities %v, sample %d has %v",
				s.Index, sortedKeys(s.Inputs), first.Index, sortedKeys(first.Inputs))
		}
		if len(s.Tokens) != len(first.Tokens) {
			return Batch{}, fmt.Errorf("collate: sample %d has token modalities %v, sample %d has %v",
				s.Index, sortedKeys(s.Tokens), first.Index, sortedKeys(first.Tokens))
		}
	}

	for _, name := range sortedKeys(first.Tokens) {
		L := len(first.Tokens[name])
		out := make([]int, 0, B*L)
		for _, s := range samples {
			ids, ok := s.Tokens[name]
			if !ok {
				return Batch{}, fmt.Errorf("collate: token modality %q missing from sample %d", name, s.Index)
			}
			if len(ids) != L {
				return Batch{}, fmt.Errorf("collate: token modality %q, sample %d: length %d differs from sample %d's %d (pad/truncate text to a fixed length)",
					name, s.Index, len(ids), first.Index, L)
			}
			out = append(out, ids...)
		}
		b.Tokens[name] = out
		b.TokenLen[name] = L
	}

	// Presence: every modality named in any sample's Present, Inputs or Tokens.
	names := map[string]bool{}
	for _, s := range samples {
		for k := range s.Present {
			names[k] = true
		}
	}
	for k := range first.Inputs {
		names[k] = true
	}
	for k := range first.Tokens {
		names[k] = true
	}
	for name := range names {
		p := make([]bool, B)
		for i, s := range samples {
			if v, ok := s.Present[name]; ok {
				p[i] = v
			} else {
				_, in := s.Inputs[name]
				_, tk := s.Tokens[name]
				p[i] = in || tk
			}
		}
		b.Present[name] = p
	}

	if err := collateLabels(samples, &b); err != nil {
		return Batch{}, err
	}
	return b, nil
}

func collateLabels(samples []Sample, b *Batch) error {
	first := samples[0]
	B := len(samples)
	hasClass := first.Label.Class >= 0
	hasVec := first.Label.Vector != nil
	hasTok := first.Label.Tokens != nil
	if hasClass {
		b.Classes = make([]int, B)
	}
	K := len(first.Label.Vector)
	if hasVec {
		b.Vectors = Tensor{Shape: []int{B, K}, Data: make([]float32, 0, B*K)}
	}
	L := len(first.Label.Tokens)
	if hasTok {
		b.LabelTokens = make([]int, 0, B*L)
		b.LabelLen = L
	}
	for i, s := range samples {
		if (s.Label.Class >= 0) != hasClass {
			return fmt.Errorf("collate: label class of sample %d is %d but sample %d's is %d (mixing labelled and unlabelled samples)",
				s.Index, s.Label.Class, first.Index, first.Label.Class)
		}
		if hasClass {
			b.Classes[i] = s.Label.Class
		}
		if (s.Label.Vector != nil) != hasVec || len(s.Label.Vector) != K {
			return fmt.Errorf("collate: label vector of sample %d has length %d, sample %d's has %d", s.Index, len(s.Label.Vector), first.Index, K)
		}
		if hasVec {
			b.Vectors.Data = append(b.Vectors.Data, s.Label.Vector...)
		}
		if (s.Label.Tokens != nil) != hasTok || len(s.Label.Tokens) != L {
			return fmt.Errorf("collate: label tokens of sample %d have length %d, sample %d's have %d (pad/truncate to a fixed length)", s.Index, len(s.Label.Tokens), first.Index, L)
		}
		if hasTok {
			b.LabelTokens = append(b.LabelTokens, s.Label.Tokens...)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
