package model_test

import (
	"math/rand"
	"testing"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// TestMachineMatchesTapeMachine trains bench-small (float64, batch 8) for 6
// Adam steps on vm.Machine and on Gorgonia's TapeMachine from the same
// initial weights and batches, with fused and with unrolled encoders. Both
// execute the same ops in the same topological order and add gradients
// into zeroed buffers, so losses and every updated weight must be equal
// bit for bit; the Machine reuses its output buffers from the second step
// on, which this exercises.
func TestMachineMatchesTapeMachine(t *testing.T) {
	const batch, steps = 8, 6
	for _, fused := range []bool{true, false} {
		name := "unrolled"
		if fused {
			name = "fused"
		}
		t.Run(name, func(t *testing.T) {
			tape := newBenchSmallRun(t, tensor.Float64, fused, true, batch, 4, true)
			mach := newBenchSmallRun(t, tensor.Float64, fused, true, batch, 4, false)
			defer tape.vm.Close()
			defer mach.vm.Close()
			rt, rm := rand.New(rand.NewSource(7)), rand.New(rand.NewSource(7))
			for s := 0; s < steps; s++ {
				bindCurveBatch(t, tape, rt, batch)
				bindCurveBatch(t, mach, rm, batch)
				lt, lm := tape.step(t), mach.step(t)
				if lt != lm {
					t.Fatalf("step %d: Machine loss %.17g, TapeMachine %.17g", s, lm, lt)
				}
			}
			for i, p := range tape.params {
				wt, wm := nn.Slice[float64](p.Value().(*tensor.Dense)), nn.Slice[float64](mach.params[i].Value().(*tensor.Dense))
				for j := range wt {
					if wt[j] != wm[j] {
						t.Fatalf("%s[%d] after %d steps: Machine %.17g, TapeMachine %.17g", p.Name(), j, steps, wm[j], wt[j])
					}
				}
			}
		})
	}
}
