package model

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Temporal alignment (the seed's TemporalAligner, NetworkConfig.Align).
//
// The seed resamples the video and audio features of a clip to one length
// before fusing them. lsfuse puts the alignment where a common length means
// something to the model: on the spiking encoders' time axis. For an
// aligned modality the preprocessor keeps one feature per time step
// (modality.SequencePreprocessor: audio log-mel frames after its conv
// stack, video frame features after the temporal conv), TemporalResample
// brings the L_m steps to T = num_spike_steps by linear interpolation, and
// the encoder feeds step t's feature as the input current of spiking step t
// (instead of one current repeated T times, direct coding). Every aligned
// modality shares T, so spiking step t of the audio encoder and of the video
// encoder both look at the same instant, t/T of the clip; fusion then
// combines the encoders' final features as for any network.

// TemporalResample resamples x along axis to length samples by linear
// interpolation, as torch.nn.functional.interpolate(mode="linear",
// align_corners=False) does along the last axis: output step i reads the
// input at position p = max(0, (i + ½)·L/T − ½), y_i = (1−λ)·x_⌊p⌋ +
// λ·x_min(⌊p⌋+1, L−1) with λ = p − ⌊p⌋. L = T is the identity. The result
// has x's shape with axis set to length; the backward is the transposed
// interpolation (a second kernel), exact because the map is linear.
func TemporalResample(x *G.Node, axis, length int) (*G.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("temporal resample: nil input")
	}
	s := x.Shape()
	if axis < 0 || axis >= s.Dims() {
		return nil, fmt.Errorf("temporal resample: axis %d out of range for shape %v", axis, s)
	}
	if length < 1 || s[axis] < 1 {
		return nil, fmt.Errorf("temporal resample: cannot resample %d steps to %d", s[axis], length)
	}
	return resampleNode(x, resampleSpec{axis: axis, from: s[axis], to: length})
}

// resampleSpec resamples axis from `from` to `to` steps; transposed is the
// adjoint (from `to` back to `from` steps, scatter-adding).
type resampleSpec struct {
	axis, from, to int
	transposed     bool
}

// taps returns, for each output step, the two source steps and weights.
func (r resampleSpec) taps() (i0, i1 []int, w0, w1 []float64) {
	scale := float64(r.from) / float64(r.to)
	for i := 0; i < r.to; i++ {
		p := math.Max(0, (float64(i)+0.5)*scale-0.5)
		lo := min(int(p), r.from-1)
		hi := min(lo+1, r.from-1)
		lam := p - float64(lo)
		if lo == hi {
			lam = 0
		}
		i0, i1 = append(i0, lo), append(i1, hi)
		w0, w1 = append(w0, 1-lam), append(w1, lam)
	}
	return i0, i1, w0, w1
}

func resampleNode(x *G.Node, r resampleSpec) (*G.Node, error) {
	inLen, outLen := r.from, r.to
	if r.transposed {
		inLen, outLen = r.to, r.from
	}
	if x.Shape()[r.axis] != inLen {
		return nil, fmt.Errorf("temporal resample: axis %d has %d steps, want %d", r.axis, x.Shape()[r.axis], inLen)
	}
	out := x.Shape().Clone()
	out[r.axis] = outLen
	outer, inner := 1, 1
	for a, d := range out {
		switch {
		case a < r.axis:
			outer *= d
		case a > r.axis:
			inner *= d
		}
	}
	i0, i1, w0, w1 := r.taps()
	k := &nn.Kernel{Name: fmt.Sprintf("TemporalResample{axis=%d,%d->%d,transposed=%v}", r.axis, r.from, r.to, r.transposed)}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return out.Clone(), nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return nn.FloatKernel(in[0].Dtype(), out, in, dst,
			func(x [][]float64, y []float64) { resampleBody(r, x[0], y, outer, inner, i0, i1, w0, w1) },
			func(x [][]float32, y []float32) { resampleBody(r, x[0], y, outer, inner, i0, i1, w0, w1) })
	}
	k.Backward = func(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		adj := r
		adj.transposed = !r.transposed
		g, err := resampleNode(grad, adj)
		return G.Nodes{g}, err
	}
	return nn.Apply(k, x)
}

// resampleBody computes y from x viewed as [outer, steps, inner]: gathers
// the two taps per output step, or, transposed, scatter-adds every output
// step of the forward map back onto its taps.
func resampleBody[T nn.Float](r resampleSpec, x, y []T, outer, inner int, i0, i1 []int, w0, w1 []float64) {
	for o := 0; o < outer; o++ {
		if !r.transposed {
			xb, yb := x[o*r.from*inner:], y[o*r.to*inner:]
			for t := 0; t < r.to; t++ {
				a, b := xb[i0[t]*inner:], xb[i1[t]*inner:]
				ya, wa, wb := yb[t*inner:(t+1)*inner], T(w0[t]), T(w1[t])
				for j := range ya {
					ya[j] = wa*a[j] + wb*b[j]
				}
			}
			continue
		}
		gb, db := x[o*r.to*inner:], y[o*r.from*inner:]
		for t := 0; t < r.to; t++ {
			g := gb[t*inner : (t+1)*inner]
			a, b := db[i0[t]*inner:], db[i1[t]*inner:]
			wa, wb := T(w0[t]), T(w1[t])
			for j, v := range g {
				a[j] += wa * v
				b[j] += wb * v
			}
		}
	}
}

// ForwardSteps runs the encoder on per-step inputs xs, each [B, InputDim]:
// the first layer's current at step t is fc(xs[t]) (len(xs) = Steps), or
// fc(xs[0]) at every step when xs has one node (direct coding, the same
// graph as Forward). Layers ≥ 2 are as in Forward.
func (e *SpikingEncoder) ForwardSteps(c *nn.Ctx, xs []*G.Node) (*SpikingOutput, error) {
	if len(xs) != 1 && len(xs) != e.cfg.Steps {
		return nil, c.Errorf("spiking encoder: %d input steps for %d spike steps (want 1 or %d)", len(xs), e.cfg.Steps, e.cfg.Steps)
	}
	for t, x := range xs {
		if s := x.Shape(); s.Dims() != 2 || s[1] != e.cfg.InputDim || !s.Eq(xs[0].Shape()) {
			return nil, c.Errorf("spiking encoder expects inputs [batch, %d], step %d has %v", e.cfg.InputDim, t+1, s)
		}
	}
	out := &SpikingOutput{}
	in := e.cfg.InputDim
	prev := xs
	for l, lif := range e.layers {
		lc := c.Sub(fmt.Sprintf("lif%d", l+1))
		fc := nn.Linear{In: in, Out: e.widths[l]}
		drop := nn.Dropout{P: e.cfg.Dropout}
		currents := make([]*G.Node, 0, len(prev))
		for _, x := range prev {
			if l > 0 {
				var err error
				if x, err = drop.Forward(lc.Sub("dropout"), x); err != nil {
					return nil, err
				}
			}
			cur, err := fc.Forward(lc.Sub("fc"), x)
			if err != nil {
				return nil, err
			}
			currents = append(currents, cur)
		}
		res, err := lif.Forward(lc, currents, e.cfg.Steps)
		if err != nil {
			return nil, err
		}
		out.Spikes = append(out.Spikes, res.Spikes)
		out.Membranes = append(out.Membranes, res.Membranes)
		out.Rates = append(out.Rates, res.Rate)
		out.Layers = append(out.Layers, lc.Path())
		prev = res.Spikes
		in = e.widths[l]
	}
	return out, nil
}

// ForwardSequence builds the encoder on per-step features seq
// [B, T, InputDim], T = NumSpikeSteps: proj per step, then step t's
// projection drives spiking step t (SpikingEncoder.ForwardSteps), the
// liquid cell runs over the T spike vectors and out reads its last state.
// Parameters are Forward's (same names), so a checkpoint serves both.
// Dropout is active in training graphs only. A fused build
// (EncoderConfig.Fused) runs the same computation time-major through the
// fused spiking layers and CfC (per-step currents [T, B, N]).
func (e *ModalityEncoder) ForwardSequence(c *nn.Ctx, seq *G.Node) (*EncoderOutput, error) {
	var out *EncoderOutput
	err := nn.Catch(fmt.Sprintf("modality %q encoder (%s)", e.cfg.Name, c.Path()), func() error {
		cfg := e.cfg
		s := seq.Shape()
		if s.Dims() != 3 || s[1] != cfg.NumSpikeSteps || s[2] != cfg.InputDim {
			return c.Errorf("modality %q: aligned encoder input has shape %v, want [batch, %d (num_spike_steps), %d (input_dim)]", cfg.Name, s, cfg.NumSpikeSteps, cfg.InputDim)
		}
		proj := nn.Linear{In: cfg.InputDim, Out: cfg.EncoderDim}
		if cfg.Fused {
			tm, err := swapAxes01(seq) // [T, B, InputDim]
			if err != nil {
				return c.Errorf("modality %q: %v", cfg.Name, err)
			}
			p, err := proj.Forward(c.Sub("proj"), tm)
			if err != nil {
				return err
			}
			out, err = e.forwardFused(c, p)
			return err
		}
		p, err := proj.Forward(c.Sub("proj"), seq)
		if err != nil {
			return err
		}
		steps, err := splitSteps(p)
		if err != nil {
			return c.Errorf("modality %q: %v", cfg.Name, err)
		}
		spk, err := e.spiking.ForwardSteps(c.Sub("spiking"), steps)
		if err != nil {
			return err
		}
		out, err = e.liquidOut(c, spk)
		return err
	})
	return out, err
}

// swapAxes01 returns x [A, B, C] as [B, A, C] (a copy); its gradient is
// the same swap.
func swapAxes01(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() != 3 {
		return nil, fmt.Errorf("swap of axes 0 and 1 needs rank 3, got %v", s)
	}
	a, b, d := s[0], s[1], s[2]
	out := tensor.Shape{b, a, d}
	k := &nn.Kernel{Name: fmt.Sprintf("SwapAxes01{%d,%d,%d}", a, b, d)}
	k.Shape = func([]tensor.Shape) (tensor.Shape, error) { return out.Clone(), nil }
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return nn.FloatKernel(in[0].Dtype(), out, in, dst,
			func(x [][]float64, y []float64) { swap01Body(x[0], y, a, b, d) },
			func(x [][]float32, y []float32) { swap01Body(x[0], y, a, b, d) })
	}
	k.Backward = func(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		g, err := swapAxes01(grad)
		return G.Nodes{g}, err
	}
	return nn.Apply(k, x)
}

func swap01Body[T nn.Float](x, y []T, a, b, d int) {
	for i := 0; i < a; i++ {
		for j := 0; j < b; j++ {
			copy(y[(j*a+i)*d:(j*a+i+1)*d], x[(i*b+j)*d:(i*b+j+1)*d])
		}
	}
}

// splitSteps turns x [B, T, D] into T nodes [B, D].
func splitSteps(x *G.Node) ([]*G.Node, error) {
	s := x.Shape()
	out := make([]*G.Node, s[1])
	for t := range out {
		st, err := nn.SliceAxis(x, 1, t, t+1)
		if err != nil {
			return nil, err
		}
		if out[t], err = nn.Reshape(st, s[0], s[2]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// validateAlign checks NetworkConfig.Align against the built modalities:
// known names, listed once, per-step preprocessors, one common
// num_spike_steps.
func (n *Network) validateAlign() error {
	seen := map[string]bool{}
	steps, first := 0, ""
	for _, name := range n.cfg.Align {
		e, ok := n.enc[name]
		if !ok {
			return fmt.Errorf("network: temporal_align names modality %q, which is not one of %v", name, n.names)
		}
		if seen[name] {
			return fmt.Errorf("network: temporal_align lists modality %q twice", name)
		}
		seen[name] = true
		if _, ok := n.pre[name].(modality.SequencePreprocessor); !ok {
			return fmt.Errorf("modality %q: temporal_align needs per-step features, which the %s preprocessor does not give (audio, video and text do)", name, n.pre[name].Kind())
		}
		if pc := n.cfg.Modalities[name].Preprocessor; pc.Kind == modality.KindVideo && (pc.Architecture == "conv3d" || pc.Video.Temporal == "liquid") {
			return fmt.Errorf("modality %q: temporal_align needs per-frame video features: use architecture frames with temporal conv or mean (got %q, temporal %q)", name, pc.Architecture, pc.Video.Temporal)
		}
		ec := e.Config()
		switch {
		case first == "":
			steps, first = ec.NumSpikeSteps, name
		case ec.NumSpikeSteps != steps:
			return fmt.Errorf("network: temporal_align resamples every aligned modality to one length, num_spike_steps, but %q has %d and %q has %d: set the same num_spike_steps",
				first, steps, name, ec.NumSpikeSteps)
		}
	}
	return nil
}

// aligned reports whether modality name is temporally aligned.
func (n *Network) aligned(name string) bool {
	for _, a := range n.cfg.Align {
		if a == name {
			return true
		}
	}
	return false
}

// encodeAligned builds an aligned modality from its input x: per-step
// preprocessor features (scope "<name>.pre"), resampled to the encoder's
// num_spike_steps, through the encoder step by step ("<name>.encoder").
func (n *Network) encodeAligned(mc *nn.Ctx, name string, x *G.Node) (*EncoderOutput, error) {
	p := n.pre[name].(modality.SequencePreprocessor)
	seq, _, err := p.ForwardSequence(mc.Sub("pre"), x)
	if err != nil {
		return nil, err
	}
	e := n.enc[name]
	if s := seq.Shape(); s.Dims() != 3 || s[0] != x.Shape()[0] || s[2] != p.OutputDim() {
		return nil, mc.Errorf("per-step preprocessor features have shape %v, want [%d, steps, %d]", s, x.Shape()[0], p.OutputDim())
	}
	al, err := TemporalResample(seq, 1, e.Config().NumSpikeSteps)
	if err != nil {
		return nil, mc.Errorf("temporal alignment: %v", err)
	}
	return e.ForwardSequence(mc.Sub("encoder"), al)
}
