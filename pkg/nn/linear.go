package nn

import (
	"math"

	G "gorgonia.org/gorgonia"
)

// Linear is y = x·Wᵀ + b with W of shape [Out, In] (PyTorch layout, so
// checkpoints and golden vectors map one to one) and b of shape [Out].
// Default init is PyTorch's: kaiming_uniform(a=√5) for W, U(±1/√In) for b.
type Linear struct {
	In, Out int
	// NoBias drops b.
	NoBias bool
	// WeightInit overrides the weight initialiser (e.g. XavierUniform(1)
	// for CfC weights, as ncps does).
	WeightInit Init
}

// Forward applies the layer to x of shape [..., In] (rank 2 or 3) and
// returns [..., Out]. Parameters are "weight" and "bias" under c's scope.
func (l Linear) Forward(c *Ctx, x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() < 2 || s.Dims() > 3 || s[s.Dims()-1] != l.In {
		return nil, c.Errorf("linear expects input [batch, %d] or [batch, seq, %d], got %v", l.In, l.In, s)
	}
	winit := l.WeightInit
	if winit == nil {
		winit = KaimingUniform(math.Sqrt(5))
	}
	w, err := c.Param("weight", []int{l.Out, l.In}, winit)
	if err != nil {
		return nil, err
	}
	in := x
	if s.Dims() == 3 {
		if in, err = G.Reshape(x, []int{s[0] * s[1], l.In}); err != nil {
			return nil, c.Errorf("linear: %v", err)
		}
	}
	y, err := MatMulT(in, w)
	if err != nil {
		return nil, c.Errorf("linear: %v", err)
	}
	if !l.NoBias {
		b, err := c.Param("bias", []int{l.Out}, BiasUniform(l.In))
		if err != nil {
			return nil, err
		}
		if y, err = G.BroadcastAdd(y, b, nil, []byte{0}); err != nil {
			return nil, c.Errorf("linear bias: %v", err)
		}
	}
	if s.Dims() == 3 {
		if y, err = G.Reshape(y, []int{s[0], s[1], l.Out}); err != nil {
			return nil, c.Errorf("linear: %v", err)
		}
	}
	return y, nil
}

// MatMulT returns a·bᵀ for matrices a [M,K] and b [N,K].
func MatMulT(a, b *G.Node) (*G.Node, error) {
	bt, err := G.Transpose(b)
	if err != nil {
		return nil, err
	}
	return G.Mul(a, bt)
}
