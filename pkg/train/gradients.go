package train

import (
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// forEachGrad calls f with the gradient data of each node as float32 or
// float64 (exactly one of the two slices is non-nil).
func forEachGrad(nodes G.Nodes, f func(g32 []float32, g64 []float64)) error {
	for _, n := range nodes {
		_, g, err := valueAndGrad(n)
		if err != nil {
			return err
		}
		switch g.Dtype() {
		case tensor.Float32:
			f(nn.Slice[float32](g), nil)
		case tensor.Float64:
			f(nil, nn.Slice[float64](g))
		}
	}
	return nil
}

// GlobalNorm returns the L2 norm of all gradients together and whether
// every element is finite.
func GlobalNorm(nodes G.Nodes) (norm float64, finite bool, err error) {
	ss := 0.0
	finite = true
	err = forEachGrad(nodes, func(g32 []float32, g64 []float64) {
		for _, v := range g32 {
			x := float64(v)
			ss += x * x
		}
		for _, x := range g64 {
			ss += x * x
		}
	})
	if math.IsNaN(ss) || math.IsInf(ss, 0) {
		finite = false
	}
	return math.Sqrt(ss), finite, err
}

// ScaleGrads multiplies every gradient by s (averaging an accumulation
// window, unscaling a scaled loss, clipping).
func ScaleGrads(nodes G.Nodes, s float64) error {
	return forEachGrad(nodes, func(g32 []float32, g64 []float64) {
		for i := range g32 {
			g32[i] = float32(float64(g32[i]) * s)
		}
		for i := range g64 {
			g64[i] *= s
		}
	})
}

// ClipGlobalNorm rescales the gradients so that their global L2 norm is at
// most maxNorm (torch.nn.utils.clip_grad_norm_) and returns the norm before
// clipping. Gorgonia's solver clip is elementwise (DESIGN.md fact 7).
func ClipGlobalNorm(nodes G.Nodes, maxNorm float64) (float64, error) {
	norm, _, err := GlobalNorm(nodes)
	if err != nil || maxNorm <= 0 || norm <= maxNorm {
		return norm, err
	}
	return norm, ScaleGrads(nodes, maxNorm/(norm+1e-6))
}
