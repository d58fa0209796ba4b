package train

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// quadGraph builds loss = Σ (w - target)² over a parameter w of the store.
func quadGraph(t *testing.T, store *nn.Store, target []float64) (*G.ExprGraph, G.Nodes, *G.Node) {
	t.Helper()
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{})
	w, err := c.Param("w", []int{len(target)}, nn.Constant(1))
	if err != nil {
		t.Fatal(err)
	}
	tg := G.NewConstant(nn.NewDense(store.Dtype(), []int{len(target)}, target))
	d := G.Must(G.Sub(w, tg))
	loss := G.Must(G.Sum(G.Must(G.Square(d))))
	if _, err := G.Grad(loss, w); err != nil {
		t.Fatal(err)
	}
	return g, G.Nodes{w}, loss
}

func TestAdamFirstStepsMatchFormula(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		store, _ := nn.NewStore(dt, 1)
		target := []float64{3, -2, 1}
		g, params, _ := quadGraph(t, store, target)
		vm := G.NewTapeMachine(g, G.BindDualValues(params...))
		opt, err := NewAdam(AdamConfig{LR: 0.1})
		if err != nil {
			t.Fatal(err)
		}
		// Reference: torch.optim.Adam written out in float64 for the same
		// gradients 2(w - target).
		w := []float64{1, 1, 1}
		m, v := make([]float64, 3), make([]float64, 3)
		for step := 1; step <= 3; step++ {
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			if err := opt.Step(params); err != nil {
				t.Fatal(err)
			}
			vm.Reset()
			for i := range w {
				gi := 2 * (w[i] - target[i])
				m[i] = 0.9*m[i] + 0.1*gi
				v[i] = 0.999*v[i] + 0.001*gi*gi
				mh := m[i] / (1 - math.Pow(0.9, float64(step)))
				vh := v[i] / (1 - math.Pow(0.999, float64(step)))
				w[i] -= 0.1 * mh / (math.Sqrt(vh) + 1e-8)
			}
			got, _ := nn.ToFloat64(store.Lookup("w").Value)
			for i := range w {
				if math.Abs(got[i]-w[i]) > 1e-6 {
					t.Fatalf("%v step %d w[%d] = %.9g, want %.9g", dt, step, i, got[i], w[i])
				}
			}
			gv, _ := params[0].Grad()
			gz, _ := nn.ToFloat64(gv.(tensor.Tensor))
			for i, x := range gz {
				if x != 0 {
					t.Fatalf("gradient %d not zeroed after Step: %g", i, x)
				}
			}
		}
	}
}

func TestAdamMinimisesQuadratic(t *testing.T) {
	store, _ := nn.NewStore(tensor.Float64, 1)
	target := []float64{0.5, -1.5}
	g, params, loss := quadGraph(t, store, target)
	vm := G.NewTapeMachine(g, G.BindDualValues(params...))
	opt, _ := NewAdam(AdamConfig{LR: 0.05})
	var last float64
	for i := 0; i < 400; i++ {
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		last = loss.Value().Data().(float64)
		if err := opt.Step(params); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
	}
	if last > 1e-4 {
		t.Fatalf("loss after 400 steps = %g, want < 1e-4", last)
	}
}

func TestAdamRejectsBadConfig(t *testing.T) {
	if _, err := NewAdam(AdamConfig{Beta1: 1}); err == nil {
		t.Fatal("beta1 = 1 accepted")
	}
}
