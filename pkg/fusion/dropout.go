package fusion

import (
	"fmt"
	"math/rand"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// MissingParam is the name prefix, under the fusion scope, of the learned
// "missing" embeddings: MissingParam + "." + modality, shape [D_m], zeros at
// init (a missing modality starts as the zero feature, the seed's
// torch.zeros_like trick, and learns a better stand-in).
const MissingParam = "missing"

// keepMask builds the per-sample keep mask [B,M] of modality dropout from
// the presence inputs ([B] each, 0 or 1, one per modality in sorted order).
//
// Evaluation: keep = presence.
// Training: keep[b,m] = presence[b,m]·k[b,m] with k ~ Bernoulli(1 − rates[m]),
// a new draw on every run of the graph (the same draw on every run under
// nn.Ctx FixedNoise). If that drops every present modality of a sample, one
// of its present modalities, chosen uniformly, is kept: a sample never loses
// all its real inputs to dropout. A sample with no present modality at all
// (possible at inference) keeps none and is fused from the missing
// embeddings alone.
//
// A presence value other than 0 or 1 is an error naming the modality.
func keepMask(c *nn.Ctx, names []string, rates []float64, presence []*G.Node) (*G.Node, error) {
	train := c.Train()
	seed := c.NoiseSeed()
	fixed := c.FixedNoise()
	rng := rand.New(rand.NewSource(seed))
	k := &nn.Kernel{
		Name: fmt.Sprintf("fusion.ModalityKeepMask{%s,rates=%v,train=%v,seed=%d,fixed=%v}",
			strings.Join(names, ","), rates, train, seed, fixed),
	}
	k.Shape = func(in []tensor.Shape) (tensor.Shape, error) {
		b := in[0]
		for i, s := range in {
			if s.Dims() != 1 || s[0] != b[0] {
				return nil, fmt.Errorf("presence of %q has shape %v, want [%d] like %q", names[i], s, b[0], names[0])
			}
		}
		return tensor.Shape{b[0], len(in)}, nil
	}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		if fixed {
			rng.Seed(seed)
		}
		bsz, m := in[0].Shape()[0], len(in)
		pres := make([][]float64, m)
		for j, t := range in {
			p, err := nn.ToFloat64(t)
			if err != nil {
				return nil, err
			}
			for b, v := range p {
				if v != 0 && v != 1 {
					return nil, fmt.Errorf("presence of modality %q must be 0 or 1, sample %d has %g", names[j], b, v)
				}
			}
			pres[j] = p
		}
		keep := make([]float64, bsz*m)
		present := make([]int, 0, m)
		for b := 0; b < bsz; b++ {
			present = present[:0]
			kept := 0
			for j := 0; j < m; j++ {
				u := rng.Float64() // drawn for every entry: the stream does not depend on presence
				if pres[j][b] == 0 {
					continue
				}
				present = append(present, j)
				if !train || u >= rates[j] {
					keep[b*m+j] = 1
					kept++
				}
			}
			if train {
				u := rng.Intn(m)
				if kept == 0 && len(present) > 0 {
					keep[b*m+present[u%len(present)]] = 1
				}
			}
		}
		return nn.NewDense(in[0].Dtype(), []int{bsz, m}, keep), nil
	}
	return nn.Apply(k, presence...)
}

// applyMissing replaces, per sample, the feature of every modality whose
// keep mask is 0 by that modality's learned missing embedding:
// f'[b] = keep[b,m]·f[b] + (1 − keep[b,m])·missing_m.
func applyMissing(c *nn.Ctx, names []string, dims []int, feats []*G.Node, keep *G.Node) ([]*G.Node, error) {
	out := make([]*G.Node, len(feats))
	mc := c.Sub(MissingParam)
	for i, f := range feats {
		e, err := mc.Param(names[i], []int{dims[i]}, nn.Zeros())
		if err != nil {
			return nil, err
		}
		if out[i], err = substitute(f, e, keep, i); err != nil {
			return nil, c.Errorf("modality %q: missing-embedding substitution: %v", names[i], err)
		}
	}
	return out, nil
}
