package train

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

func TestSGDMomentumMatchesTorchFormula(t *testing.T) {
	for _, nesterov := range []bool{false, true} {
		store, _ := nn.NewStore(tensor.Float64, 1)
		target := []float64{2, -1}
		g, params, _ := quadGraph(t, store, target)
		vm := G.NewTapeMachine(g, G.BindDualValues(params...))
		opt, err := NewSGD(SGDConfig{LR: 0.1, Momentum: 0.9, Nesterov: nesterov, WeightDecay: 0.01})
		if err != nil {
			t.Fatal(err)
		}
		w := []float64{1, 1}
		buf := []float64{0, 0}
		for step := 0; step < 3; step++ {
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			if err := opt.Step(params); err != nil {
				t.Fatal(err)
			}
			vm.Reset()
			for i := range w {
				d := 2*(w[i]-target[i]) + 0.01*w[i]
				if step == 0 {
					buf[i] = d
				} else {
					buf[i] = 0.9*buf[i] + d
				}
				if nesterov {
					d += 0.9 * buf[i]
				} else {
					d = buf[i]
				}
				w[i] -= 0.1 * d
			}
			got, _ := nn.ToFloat64(store.Lookup("w").Value)
			for i := range w {
				if math.Abs(got[i]-w[i]) > 1e-12 {
					t.Fatalf("nesterov=%v step %d: w = %v, want %v", nesterov, step, got, w)
				}
			}
		}
	}
	if _, err := NewSGD(SGDConfig{LR: 0.1, Nesterov: true}); err == nil {
		t.Error("nesterov without momentum accepted")
	}
}
