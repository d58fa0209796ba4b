package train

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// gradsOf runs the quadratic graph once so w holds gradient 2(w-target).
func gradsOf(t *testing.T, target []float64) (G.Nodes, *nn.Store) {
	t.Helper()
	store, _ := nn.NewStore(tensor.Float64, 1)
	g, params, _ := quadGraph(t, store, target)
	vm := G.NewTapeMachine(g, G.BindDualValues(params...))
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return params, store
}

func gradValues(t *testing.T, n *G.Node) []float64 {
	t.Helper()
	gv, err := n.Grad()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := nn.ToFloat64(gv.(tensor.Tensor))
	return v
}

func TestClipGlobalNorm(t *testing.T) {
	// w = 1, target = (4, 5): gradient 2(w - t) = (-6, -8), norm 10.
	params, _ := gradsOf(t, []float64{4, 5})
	norm, err := ClipGlobalNorm(params, 5)
	if err != nil || math.Abs(norm-10) > 1e-12 {
		t.Fatalf("norm %g err %v, want 10", norm, err)
	}
	g := gradValues(t, params[0])
	if math.Abs(g[0]+3) > 1e-5 || math.Abs(g[1]+4) > 1e-5 {
		t.Fatalf("clipped gradient %v, want ≈ (-3, -4)", g)
	}
}

func TestLossScalerSkipsNonFiniteAndGrows(t *testing.T) {
	params, _ := gradsOf(t, []float64{4, 5})
	s, _ := NewLossScaler(8, 2)
	// Gradients (-6,-8) stand for a loss scaled by 8 and averaged over 2
	// micro-batches: unscaled they are (-6,-8)/16.
	ok, err := s.Unscale(params, 2)
	if err != nil || !ok {
		t.Fatalf("finite step rejected: %v", err)
	}
	if g := gradValues(t, params[0]); math.Abs(g[0]+6.0/16) > 1e-12 {
		t.Fatalf("unscaled gradient %v", g)
	}
	ok, _ = s.Unscale(params, 1)
	if !ok || s.Scale != 16 {
		t.Fatalf("after 2 good steps scale = %g, want 16", s.Scale)
	}
	gv, _ := params[0].Grad()
	gv.(*tensor.Dense).Data().([]float64)[1] = math.Inf(1)
	ok, _ = s.Unscale(params, 1)
	if ok || s.Scale != 8 {
		t.Fatalf("overflow: ok=%v scale=%g, want skipped and 8", ok, s.Scale)
	}
	for _, v := range gradValues(t, params[0]) {
		if v != 0 {
			t.Fatalf("gradients not zeroed after overflow: %v", v)
		}
	}
}
