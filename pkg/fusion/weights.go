package fusion

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// WeightsParam is the name, under the fusion scope, of the modality weight
// logits [M] (one per modality in sorted-name order). The normalised
// weights are w = softmax(logits); logits start at 0, so w starts uniform.
const WeightsParam = "modality_weights"

// softmaxInto writes softmax(logits) into w (numerically stable form).
func softmaxInto[T nn.Float](w []float64, logits []T) {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	sum := 0.0
	for i, v := range logits {
		w[i] = math.Exp(float64(v) - mx)
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
}

// weighted returns factor·w[col]·x with w = softmax(logits), for x of any
// shape and logits [M]. The early, hybrid and hierarchical strategies scale
// features by M·w[m] (factor M: the weights average 1, so uniform weights
// leave features unchanged); late fusion combines predictions with w[m]
// (factor 1).
//
// Gradients: dx = factor·w[col]·g; dlogits[j] = factor·S·w[col]·(δ(j,col) −
// w[j]) with S = Σ g⊙x.
func weighted(x, logits *G.Node, col int, factor float64) (*G.Node, error) {
	k := &nn.Kernel{Name: fmt.Sprintf("fusion.Weighted{col=%d,factor=%g}", col, factor)}
	k.Shape = func(in []tensor.Shape) (tensor.Shape, error) {
		if in[1].Dims() != 1 || col >= in[1][0] {
			return nil, fmt.Errorf("logits must be [M] with M > %d, got %v", col, in[1])
		}
		return in[0].Clone(), nil
	}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return byDtype(in, dst, weightedFwd[float32](col, factor), weightedFwd[float64](col, factor))
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		gx, err := weighted(grad, in[1], col, factor)
		if err != nil {
			return nil, err
		}
		gl, err := weightLogitGrad(grad, in[0], in[1], col, factor)
		if err != nil {
			return nil, err
		}
		return G.Nodes{gx, gl}, nil
	}
	return nn.Apply(k, x, logits)
}

func weightedFwd[T nn.Float](col int, factor float64) func([]*tensor.Dense, *tensor.Dense) (*tensor.Dense, error) {
	return func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		x, l := floats[T](in[0]), floats[T](in[1])
		w := make([]float64, len(l))
		softmaxInto(w, l)
		s := T(factor * w[col])
		out := newLike(dst, in[0], in[0].Shape()...)
		o := nn.Slice[T](out)
		for i, v := range x {
			o[i] = s * v
		}
		return out, nil
	}
}

// weightLogitGrad is the logits gradient of weighted (see there).
func weightLogitGrad(g, x, logits *G.Node, col int, factor float64) (*G.Node, error) {
	k := &nn.Kernel{Name: fmt.Sprintf("fusion.WeightedLogitGrad{col=%d,factor=%g}", col, factor)}
	k.Shape = func(in []tensor.Shape) (tensor.Shape, error) { return in[2].Clone(), nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return byDtype(in, dst, weightLogitGradFwd[float32](col, factor), weightLogitGradFwd[float64](col, factor))
	}
	return nn.Apply(k, g, x, logits)
}

func weightLogitGradFwd[T nn.Float](col int, factor float64) func([]*tensor.Dense, *tensor.Dense) (*tensor.Dense, error) {
	return func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		g, x, l := floats[T](in[0]), floats[T](in[1]), floats[T](in[2])
		w := make([]float64, len(l))
		softmaxInto(w, l)
		s := 0.0
		for i := range g {
			s += float64(g[i]) * float64(x[i])
		}
		out := newLike(dst, in[2], len(l))
		o := nn.Slice[T](out)
		for j := range o {
			delta := 0.0
			if j == col {
				delta = 1
			}
			o[j] = T(factor * s * w[col] * (delta - w[j]))
		}
		return out, nil
	}
}

// ModalityWeights reads the normalised modality weights of a trained model
// from store, for reports: names are the modalities in sorted order (as the
// fusion was built) and scope is the fusion's scope path ("fusion" in
// pkg/model's network). The weights sum to 1. When the store has no weight
// logits (Config.ModalityWeights false) the fixed weights the strategies use
// are returned: 1/M each.
func ModalityWeights(store *nn.Store, scope string, names []string) (map[string]float64, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("fusion: modality weights: no modalities")
	}
	name := WeightsParam
	if scope != "" {
		name = scope + "." + WeightsParam
	}
	out := make(map[string]float64, len(names))
	p := store.Lookup(name)
	if p == nil {
		for _, n := range names {
			out[n] = 1 / float64(len(names))
		}
		return out, nil
	}
	logits, err := nn.ToFloat64(p.Value)
	if err != nil {
		return nil, err
	}
	if len(logits) != len(names) {
		return nil, fmt.Errorf("fusion: %s has %d weights for %d modalities %v", name, len(logits), len(names), names)
	}
	w := make([]float64, len(logits))
	softmaxInto(w, logits)
	for i, n := range names {
		out[n] = w[i]
	}
	return out, nil
}
