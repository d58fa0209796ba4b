package nn

import (
	"fmt"
	"hash/fnv"
	"math/rand"
	"sort"
	"strings"

	"gorgonia.org/tensor"
)

// Param is one named tensor of the model: a trainable weight or a
// non-trainable buffer (running statistics, fixed DFT matrices).
type Param struct {
	// Name is the full dotted path, e.g. "vision.encoder.lif1.weight".
	Name string
	// Value holds the data. Every graph built from the Store binds this very
	// tensor, so training and evaluation graphs never copy weights.
	Value *tensor.Dense
	// Trainable is false for buffers; buffers never receive gradients.
	Trainable bool
	// Frozen excludes a trainable parameter from Learnables (progressive
	// training stages); see Store.Freeze.
	Frozen bool
}

// Size returns the number of elements of the parameter.
func (p *Param) Size() int { return p.Value.Shape().TotalSize() }

// Store owns the named tensors of one model. The zero value is not usable;
// call NewStore.
type Store struct {
	dtype  tensor.Dtype
	seed   int64
	params map[string]*Param
}

// NewStore returns an empty store whose tensors have dtype dt (Float32 or
// Float64). Initial values are a pure function of (seed, name, shape, init):
// the order in which parameters are created does not change them.
func NewStore(dt tensor.Dtype, seed int64) (*Store, error) {
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("nn: store dtype must be float32 or float64, got %v", dt)
	}
	return &Store{dtype: dt, seed: seed, params: map[string]*Param{}}, nil
}

// Dtype returns the element type of every tensor in the store.
func (s *Store) Dtype() tensor.Dtype { return s.dtype }

// Seed returns the seed the store initialises parameters from.
func (s *Store) Seed() int64 { return s.seed }

// rngFor returns a generator seeded from the store seed and the name, so a
// parameter's initial value does not depend on creation order.
func (s *Store) rngFor(name string) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", s.seed, name)
	return rand.New(rand.NewSource(int64(h.Sum64() & (1<<63 - 1))))
}

// Get returns the parameter called name, creating and initialising it on
// first use. A second request with a different shape or trainability is an
// error naming the parameter: two layers may not silently share a name.
func (s *Store) Get(name string, shape []int, init Init, trainable bool) (*Param, error) {
	if name == "" {
		return nil, fmt.Errorf("nn: parameter with empty name")
	}
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("nn: parameter %q: invalid shape %v (every dimension must be positive)", name, shape)
		}
	}
	if p, ok := s.params[name]; ok {
		if !sameShape(p.Value.Shape(), shape) {
			return nil, fmt.Errorf("nn: parameter %q exists with shape %v, requested %v", name, p.Value.Shape(), shape)
		}
		if p.Trainable != trainable {
			return nil, fmt.Errorf("nn: parameter %q requested as trainable=%v but exists as trainable=%v", name, trainable, p.Trainable)
		}
		return p, nil
	}
	if init == nil {
		return nil, fmt.Errorf("nn: parameter %q: no initialiser", name)
	}
	vals := make([]float64, prod(shape))
	if err := init.Fill(vals, shape, s.rngFor(name)); err != nil {
		return nil, fmt.Errorf("nn: parameter %q: %w", name, err)
	}
	p := &Param{Name: name, Value: NewDense(s.dtype, shape, vals), Trainable: trainable}
	s.params[name] = p
	return p, nil
}

// Lookup returns the parameter called name, or nil.
func (s *Store) Lookup(name string) *Param { return s.params[name] }

// Params returns every parameter and buffer sorted by name: the stable order
// used by optimisers, checkpoints and exporters.
func (s *Store) Params() []*Param {
	out := make([]*Param, 0, len(s.params))
	for _, p := range s.params {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NumParams counts the elements of trainable parameters (buffers excluded),
// the number PyTorch's sum(p.numel() for p in model.parameters()) reports.
func (s *Store) NumParams() int {
	n := 0
	for _, p := range s.params {
		if p.Trainable {
			n += p.Size()
		}
	}
	return n
}

// Freeze marks every trainable parameter whose name starts with prefix as
// frozen and returns how many it matched. Prefixes match whole path
// segments: "vision" matches "vision.x" but not "visionary.x".
func (s *Store) Freeze(prefix string) int { return s.setFrozen(prefix, true) }

// Unfreeze clears the frozen mark set by Freeze and returns how many
// parameters it matched.
func (s *Store) Unfreeze(prefix string) int { return s.setFrozen(prefix, false) }

func (s *Store) setFrozen(prefix string, v bool) int {
	n := 0
	for name, p := range s.params {
		if p.Trainable && HasPathPrefix(name, prefix) {
			p.Frozen = v
			n++
		}
	}
	return n
}

// HasPathPrefix reports whether the dotted name lies under prefix (equal to
// it, or prefix followed by "."). The empty prefix matches everything.
func HasPathPrefix(name, prefix string) bool {
	if prefix == "" || name == prefix {
		return true
	}
	return strings.HasPrefix(name, prefix+".")
}

func sameShape(a tensor.Shape, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range b {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
