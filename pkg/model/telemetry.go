package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Telemetry summarises the spiking activity of one encoder run, for
// logging: a healthy layer fires sometimes, has few silent neurons (dead:
// no gradient reaches them through a narrow surrogate) and few saturated
// ones (always firing: no information).
type Telemetry struct {
	Layers []LayerTelemetry
}

// LayerTelemetry is one spiking layer's activity over a batch and the T
// steps. A neuron "fires" at (sample, step) when its output spike is
// non-zero.
type LayerTelemetry struct {
	// Layer is the layer's scope path, e.g. "vision.spiking.lif1".
	Layer string
	// Neurons is the layer width N.
	Neurons int
	// Rate is the mean firing rate: the fraction of (sample, step, neuron)
	// triples that fired, in [0, 1].
	Rate float64
	// Silent is the fraction of neurons that never fired for any sample or
	// step.
	Silent float64
	// Saturated is the fraction of neurons that fired at every step for
	// every sample.
	Saturated float64
}

// SpikeTelemetry reads the telemetry of out after a machine has run the
// graph out was built in (its Stats nodes hold the values). It is an error
// to call it before a run.
func SpikeTelemetry(out *EncoderOutput) (Telemetry, error) {
	if out == nil {
		return Telemetry{}, fmt.Errorf("spike telemetry: nil encoder output")
	}
	var t Telemetry
	for l, st := range out.Stats {
		name := fmt.Sprintf("layer %d", l)
		if l < len(out.Layers) {
			name = out.Layers[l]
		}
		v, ok := st.Value().(tensor.Tensor)
		if !ok || v == nil {
			return Telemetry{}, fmt.Errorf("spike telemetry of %s: no value (run the graph first)", name)
		}
		vals, err := nn.ToFloat64(v)
		if err != nil {
			return Telemetry{}, fmt.Errorf("spike telemetry of %s: %w", name, err)
		}
		n := len(vals) / 3
		lt := LayerTelemetry{Layer: name, Neurons: n}
		for j := 0; j < n; j++ {
			lt.Rate += vals[j]
			lt.Silent += vals[n+j]
			lt.Saturated += vals[2*n+j]
		}
		if n > 0 {
			lt.Rate /= float64(n)
			lt.Silent /= float64(n)
			lt.Saturated /= float64(n)
		}
		t.Layers = append(t.Layers, lt)
	}
	return t, nil
}

// spikeStats returns a non-differentiable node [3, N] over the T spike
// nodes [B, N] of a layer: row 0 is each neuron's firing fraction over
// (sample, step), row 1 is 1 for neurons that never fired, row 2 is 1 for
// neurons that fired at every (sample, step).
func spikeStats(spikes []*G.Node) (*G.Node, error) {
	if len(spikes) == 0 {
		return nil, fmt.Errorf("no spike steps")
	}
	s := spikes[0].Shape()
	if s.Dims() != 2 {
		return nil, fmt.Errorf("spikes have shape %v, want [batch, neurons]", s)
	}
	b, n := s[0], s[1]
	k := &nn.Kernel{
		Name: fmt.Sprintf("SpikeStats{T=%d}", len(spikes)),
		Shape: func([]tensor.Shape) (tensor.Shape, error) {
			return tensor.Shape{3, n}, nil
		},
		Forward: func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			fired := make([]int, n)
			for _, d := range in {
				switch d.Dtype() {
				case tensor.Float64:
					countFired(nn.Slice[float64](d), fired)
				case tensor.Float32:
					countFired(nn.Slice[float32](d), fired)
				default:
					return nil, fmt.Errorf("spikes of dtype %v", d.Dtype())
				}
			}
			total := b * len(in)
			vals := make([]float64, 3*n)
			for j, f := range fired {
				vals[j] = float64(f) / float64(total)
				if f == 0 {
					vals[n+j] = 1
				}
				if f == total {
					vals[2*n+j] = 1
				}
			}
			out := nn.Output(dst, in[0].Dtype(), tensor.Shape{3, n})
			return out, nn.SetFromFloat64(out, vals)
		},
	}
	return nn.Apply(k, spikes...)
}

// countFired adds, per neuron (the last axis, of width len(fired)), the
// number of non-zero entries of a [B, N] spike tensor.
func countFired[T nn.Float](spikes []T, fired []int) {
	n := len(fired)
	for i, x := range spikes {
		if x != 0 {
			fired[i%n]++
		}
	}
}
