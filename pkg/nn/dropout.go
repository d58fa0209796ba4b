package nn

import (
	"fmt"
	"math"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Dropout zeroes each element with probability P during training and
// scales the kept ones by 1/(1−P) ("inverted" dropout, as torch.nn.Dropout),
// so evaluation is the identity. It has no parameters.
type Dropout struct {
	// P is the drop probability, in [0, 1). 0 disables the layer.
	P float64
}

// Forward applies dropout to x (any non-scalar float shape) and returns the
// same shape.
//
// Evaluation graphs (!c.Train()) and P = 0 return x itself. In training the
// op draws a fresh mask from its own math/rand stream (seeded once from
// c.NoiseSeed()) on every run of the graph, unless c.FixedNoise() is set,
// in which case every run repeats the first mask (gradient checks).
//
// The mask lives in the op between its forward and backward: the backward
// of a run uses the mask of that run's forward. A graph containing dropout
// must therefore be run by one machine at a time.
func (d Dropout) Forward(c *Ctx, x *G.Node) (*G.Node, error) {
	if !validProbability(d.P) {
		return nil, c.Errorf("dropout: P must be in [0, 1), got %g", d.P)
	}
	if err := checkFloatNode("dropout", x); err != nil {
		return nil, c.Errorf("%v", err)
	}
	if !c.Train() || d.P == 0 {
		return x, nil
	}
	seed := c.NoiseSeed()
	st := &dropoutState{p: d.P, seed: seed, fixed: c.FixedNoise(), rng: rand.New(rand.NewSource(seed))}
	name := fmt.Sprintf("Dropout{p=%v,seed=%d,fixed=%v}", d.P, seed, st.fixed)
	k := &Kernel{Name: name, Shape: sameShapeAsFirst}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		st.draw(in[0].Shape().TotalSize())
		return st.apply(in[0], dst)
	}
	k.Backward = func(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		bk := &Kernel{Name: name + "/grad", Shape: sameShapeAsFirst}
		bk.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			if len(st.keep) != in[0].Shape().TotalSize() {
				return nil, fmt.Errorf("dropout backward before its forward (mask of %d for a gradient of %d)", len(st.keep), in[0].Shape().TotalSize())
			}
			return st.apply(in[0], dst)
		}
		g, err := Apply(bk, grad)
		return G.Nodes{g}, err
	}
	y, err := Apply(k, x)
	if err != nil {
		return nil, c.Errorf("dropout: %v", err)
	}
	return y, nil
}

// dropoutState is the mutable state one dropout op shares between its
// forward and backward kernels.
type dropoutState struct {
	p     float64
	seed  int64
	fixed bool
	rng   *rand.Rand
	keep  []bool
	drawn bool
}

// draw fills keep with a new mask of n elements (each kept with
// probability 1−p), or keeps the existing one when the op repeats its mask.
func (s *dropoutState) draw(n int) {
	if s.fixed && s.drawn && len(s.keep) == n {
		return
	}
	if len(s.keep) != n {
		s.keep = make([]bool, n)
	}
	for i := range s.keep {
		s.keep[i] = s.rng.Float64() >= s.p
	}
	s.drawn = true
}

// apply returns x·keep/(1−p).
func (s *dropoutState) apply(x, dst *tensor.Dense) (*tensor.Dense, error) {
	scale := 1 / (1 - s.p)
	return floatKernel(x.Shape().Clone(), []*tensor.Dense{x}, dst,
		func(in [][]float64, out []float64) { maskScale(in[0], out, s.keep, scale) },
		func(in [][]float32, out []float32) { maskScale(in[0], out, s.keep, scale) })
}

func maskScale[T Float](x, out []T, keep []bool, scale float64) {
	sc := T(scale)
	for i, k := range keep {
		if k {
			out[i] = x[i] * sc
		}
	}
}

// validProbability reports whether p is a usable drop probability.
func validProbability(p float64) bool { return p >= 0 && p < 1 && !math.IsNaN(p) }
