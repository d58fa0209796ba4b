package model

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// LIFSeqOutput is what the fused LIF sequence op produced over T steps.
type LIFSeqOutput struct {
	// Spikes holds S_1…S_T, T-major: [T, B, N] (values 0/1, or 0/g with
	// graded spikes).
	Spikes *G.Node
	// Rate is the firing rate (1/T)·Σ_t S_t, [B, N]; differentiable.
	Rate *G.Node
}

// ForwardFused runs the same T-step recurrence as Forward (LIFConfig: reset
// modes, detached reset, surrogate backward, clamped learnable β,
// learnable θ, graded spikes) as one graph node instead of ~6 per step.
// current is I_t: [B, N] fed at every step (direct coding) or [T, B, N]
// with one current per step. Parameters are the same as Forward's, under
// c's scope. Membranes are not exposed (the backward recomputes them).
// Behaves identically in training and evaluation.
//
// The backward is one op that recomputes the membranes and runs the
// backpropagation through time for every element at once, writing the
// current's gradient and (with learnable options) dβ, dθ, dg into one
// packed vector that cheap slices unpack (DESIGN.md §3, fused ops).
func (l *LIF) ForwardFused(c *nn.Ctx, current *G.Node, steps int) (*LIFSeqOutput, error) {
	cfg := l.cfg
	if steps < 1 {
		return nil, c.Errorf("lif: steps (num_spike_steps) must be ≥ 1, got %d", steps)
	}
	s := current.Shape()
	spec := lifSeqSpec{t: steps, reset: cfg.Reset, beta: cfg.Beta, theta: cfg.Threshold, sur: cfg.Surrogate,
		learnBeta: cfg.LearnBeta, learnTheta: cfg.LearnThreshold, graded: cfg.GradedSpikes}
	switch {
	case s.Dims() == 2 && s[1] == cfg.Units:
		spec.b, spec.n = s[0], s[1]
	case s.Dims() == 3 && s[0] == steps && s[2] == cfg.Units:
		spec.b, spec.n, spec.perStep = s[1], s[2], true
	default:
		return nil, c.Errorf("lif: input current has shape %v, want [batch, %d] or [%d, batch, %d]", s, cfg.Units, steps, cfg.Units)
	}
	inputs := []*G.Node{current}
	for _, p := range []struct {
		on   bool
		name string
		init nn.Init
	}{{cfg.LearnBeta, "beta", nn.Constant(cfg.Beta)}, {cfg.LearnThreshold, "threshold", nn.Constant(cfg.Threshold)},
		{cfg.GradedSpikes, "graded_spikes", nn.Ones()}} {
		if !p.on {
			continue
		}
		n, err := c.Param(p.name, []int{cfg.Units}, p.init)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, n)
	}
	spk, err := nn.Apply(spec.kernel(), inputs...)
	if err != nil {
		return nil, c.Errorf("lif: %v", err)
	}
	rate, err := nn.MeanAxis(spk, 0)
	if err != nil {
		return nil, c.Errorf("lif rate: %v", err)
	}
	return &LIFSeqOutput{Spikes: spk, Rate: rate}, nil
}

// lifSeqSpec is everything the fused LIF op computes with; its String is
// the op name (Gorgonia merges ops with equal names and inputs).
type lifSeqSpec struct {
	t, b, n                       int
	perStep                       bool // current is [T, B, N]
	reset                         string
	beta, theta                   float64 // the fixed values (unused when learnable)
	learnBeta, learnTheta, graded bool
	sur                           nn.Surrogate // resolved
}

func (s lifSeqSpec) String() string {
	return fmt.Sprintf("LIFSeq{T=%d,B=%d,N=%d,perStep=%t,reset=%s,beta=%g,theta=%g,learn=%t/%t,graded=%t,%s}",
		s.t, s.b, s.n, s.perStep, s.reset, s.beta, s.theta, s.learnBeta, s.learnTheta, s.graded, s.sur)
}

// curLen is the number of elements of the current input.
func (s lifSeqSpec) curLen() int {
	if s.perStep {
		return s.t * s.b * s.n
	}
	return s.b * s.n
}

// gradShapes lists the shapes of the gradients the backward returns, in
// input order.
func (s lifSeqSpec) gradShapes() [][]int {
	cur := []int{s.b, s.n}
	if s.perStep {
		cur = []int{s.t, s.b, s.n}
	}
	shapes := [][]int{cur}
	for _, on := range []bool{s.learnBeta, s.learnTheta, s.graded} {
		if on {
			shapes = append(shapes, []int{s.n})
		}
	}
	return shapes
}

func (s lifSeqSpec) kernel() *nn.Kernel {
	outShape := tensor.Shape{s.t, s.b, s.n}
	k := &nn.Kernel{Name: s.String(), Shape: constShape(outShape)}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return nn.FloatKernel(in[0].Dtype(), outShape, in, dst,
			func(in [][]float64, out []float64) { lifSeqRun(s, in, nil, out, nil) },
			func(in [][]float32, out []float32) { lifSeqRun(s, in, nil, out, nil) })
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		shapes := s.gradShapes()
		total := 0
		for _, sh := range shapes {
			total += prodInts(sh)
		}
		packedShape := tensor.Shape{1, total}
		if len(shapes) == 1 {
			packedShape = tensor.Shape(shapes[0])
		}
		bk := &nn.Kernel{Name: s.String() + "/grad", Shape: constShape(packedShape)}
		bk.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			return nn.FloatKernel(in[0].Dtype(), packedShape, in, dst,
				func(in [][]float64, out []float64) { lifSeqRun(s, in[:len(in)-1], in[len(in)-1], nil, out) },
				func(in [][]float32, out []float32) { lifSeqRun(s, in[:len(in)-1], in[len(in)-1], nil, out) })
		}
		packed, err := nn.Apply(bk, append(append(G.Nodes{}, in...), grad)...)
		if err != nil {
			return nil, err
		}
		if len(shapes) == 1 {
			return G.Nodes{packed}, nil
		}
		return unpackGrads(packed, shapes)
	}
	return k
}

// lifSeqRun is the fused LIF forward (spikes != nil: writes S into spikes
// [T, B, N]) or backward (grad = dL/dS [T, B, N]; writes the packed
// gradient into dst). in = current, then β, θ, g parameters as enabled.
// Work goes one batch row (N neurons) at a time, step by step, so every
// inner loop runs over contiguous memory; the batch is split over the cores
// and per-neuron parameter gradients are reduced over the workers' partial
// sums.
func lifSeqRun[T nn.Float](s lifSeqSpec, in [][]T, grad, spikes, dst []T) {
	cur := in[0]
	var betaP, thetaP, gradedP []T
	next := 1
	if s.learnBeta {
		betaP, next = in[next], next+1
	}
	if s.learnTheta {
		thetaP, next = in[next], next+1
	}
	if s.graded {
		gradedP = in[next]
	}
	n, bn := s.n, s.b*s.n
	// Per-neuron constants: clamped β, θ, g.
	beta, theta, g := make([]T, n), make([]T, n), make([]T, n)
	for j := 0; j < n; j++ {
		beta[j], theta[j], g[j] = T(s.beta), T(s.theta), 1
		if betaP != nil {
			beta[j] = min(max(betaP[j], 0), 1)
		}
		if thetaP != nil {
			theta[j] = thetaP[j]
		}
		if gradedP != nil {
			g[j] = gradedP[j]
		}
	}
	backward := grad != nil
	workers := 1
	if s.t*bn >= 1<<14 {
		workers = nn.Workers(s.b)
	}
	var partial [][]float64 // per worker: dβ, dθ, dg partial sums [3·N]
	if backward && len(dst) > s.curLen() {
		partial = make([][]float64, workers)
	}
	deriv := surrogateDeriv(s.sur)
	run := func(w, lo, hi int) {
		u := make([]T, (s.t+1)*n) // U_0…U_T of one row
		var carry, dcur []float64
		var pg []float64
		if backward {
			carry, dcur = make([]float64, n), make([]float64, n)
			if partial != nil {
				pg = make([]float64, 3*n)
				partial[w] = pg
			}
		}
		for bi := lo; bi < hi; bi++ {
			// Forward: membranes (and spikes) of row bi.
			row := bi * n
			for t := 0; t < s.t; t++ {
				i := cur[row : row+n]
				if s.perStep {
					i = cur[t*bn+row : t*bn+row+n]
				}
				prev, ut := u[t*n:(t+1)*n], u[(t+1)*n:(t+2)*n]
				for j, x := range i {
					p := prev[j]
					switch s.reset {
					case ResetSubtract:
						ut[j] = beta[j]*p + x
						if p-theta[j] > 0 {
							ut[j] -= theta[j]
						}
					case ResetZero:
						if p-theta[j] > 0 {
							ut[j] = beta[j]*0 + x
						} else {
							ut[j] = beta[j]*p + x
						}
					default:
						ut[j] = beta[j]*p + x
					}
				}
				if spikes != nil {
					out := spikes[t*bn+row : t*bn+row+n]
					for j, v := range ut {
						out[j] = g[j] * spikeValue(s.sur, v-theta[j])
					}
				}
			}
			if !backward {
				continue
			}
			// Backward through time: delta = dL/dU_t, carry = δ_{t+1}·∂U_{t+1}/∂U_t.
			clear(carry)
			clear(dcur)
			for t := s.t - 1; t >= 0; t-- {
				gt := grad[t*bn+row : t*bn+row+n]
				prev, ut := u[t*n:(t+1)*n], u[(t+1)*n:(t+2)*n]
				for j := 0; j < n; j++ {
					x := float64(ut[j] - theta[j])
					gs := float64(gt[j]) * float64(g[j]) * deriv(x)
					delta := gs + carry[j]
					if s.perStep {
						dst[t*bn+row+j] = T(delta)
					} else {
						dcur[j] += delta
					}
					p := float64(prev[j])
					fired := p-float64(theta[j]) > 0
					keep := 1.0
					if s.reset == ResetZero && fired {
						keep = 0
					}
					if pg != nil {
						pg[j] += delta * keep * p
						pg[n+j] -= gs
						if s.reset == ResetSubtract && fired {
							pg[n+j] -= delta
						}
						if gradedP != nil {
							pg[2*n+j] += float64(gt[j]) * float64(spikeValue(s.sur, ut[j]-theta[j]))
						}
					}
					carry[j] = delta * float64(beta[j]) * keep
				}
			}
			if !s.perStep {
				out := dst[row : row+n]
				for j, v := range dcur {
					out[j] = T(v)
				}
			}
		}
	}
	if workers == 1 {
		run(0, 0, s.b)
	} else {
		nn.ParallelFor(s.b, run)
	}
	if partial == nil {
		return
	}
	off := s.curLen()
	for _, part := range []struct {
		on  bool
		row int
	}{{s.learnBeta, 0}, {s.learnTheta, 1}, {s.graded, 2}} {
		if !part.on {
			continue
		}
		for j := 0; j < n; j++ {
			var sum float64
			for _, pg := range partial {
				if pg != nil {
					sum += pg[part.row*n+j]
				}
			}
			if part.row == 0 && !(betaP[j] >= 0 && betaP[j] <= 1) {
				sum = 0 // the clamp passes no gradient outside [0, 1]
			}
			dst[off+j] = T(sum)
		}
		off += n
	}
}

// surrogateDeriv returns s.Deriv, specialised for the default fast-sigmoid
// surrogate (a closure without Deriv's dispatch: the hot loop of the LIF
// backward). The parity tests hold the two to the same values.
func surrogateDeriv(s nn.Surrogate) func(x float64) float64 {
	if s.Kind == nn.SurrogateFastSigmoid && !s.Off {
		k, m := s.Slope, s.Scale
		return func(x float64) float64 {
			d := 1 + k*math.Abs(x)
			return m / (d * d)
		}
	}
	return s.Deriv
}

// spikeValue is the spike forward without the graded factor: H(x), or
// m·F(x) for a Smooth surrogate.
func spikeValue[T nn.Float](s nn.Surrogate, x T) T {
	if s.Smooth {
		return T(s.SmoothForward(float64(x)))
	}
	if x > 0 {
		return 1
	}
	return 0
}

// seqSteps returns the T steps [B, N] of a T-major [T, B, N] node, each a
// slice and a reshape (for consumers that need per-step nodes).
func seqSteps(seq *G.Node) ([]*G.Node, error) {
	s := seq.Shape()
	if s.Dims() != 3 {
		return nil, fmt.Errorf("sequence has shape %v, want [steps, batch, features]", s)
	}
	out := make([]*G.Node, s[0])
	for t := range out {
		var err error
		if out[t], err = nn.SliceAxisAs(seq, 0, t, t+1, []int{s[1], s[2]}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// unpackGrads splits a packed gradient [1, K] (or any shape with K
// elements, row-major) into consecutive tensors of the given shapes, each
// a SliceAxis + Reshape: the cheap unpack of a fused op's single backward.
func unpackGrads(packed *G.Node, shapes [][]int) (G.Nodes, error) {
	flat := packed
	if s := packed.Shape(); s.Dims() != 2 || s[0] != 1 {
		var err error
		if flat, err = nn.Reshape(packed, 1, s.TotalSize()); err != nil {
			return nil, err
		}
	}
	out := make(G.Nodes, len(shapes))
	off := 0
	for i, sh := range shapes {
		size := prodInts(sh)
		var err error
		if out[i], err = nn.SliceAxisAs(flat, 1, off, off+size, sh); err != nil {
			return nil, err
		}
		off += size
	}
	return out, nil
}

// constShape returns a Kernel.Shape for an output shape fixed when the
// graph is built (the builder validated the inputs).
func constShape(s tensor.Shape) func([]tensor.Shape) (tensor.Shape, error) {
	return func([]tensor.Shape) (tensor.Shape, error) { return s.Clone(), nil }
}

func prodInts(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}
