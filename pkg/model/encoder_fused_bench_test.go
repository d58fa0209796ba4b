//go:build unix

package model

import (
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// CPUTimeForBenchmark returns the CPU time (user + system) this process
// has used. On a machine shared with other jobs, CPU time per step moves
// far less than wall time, so the lever benchmarks report both.
// Benchmarks only (exported for the external test package).
func CPUTimeForBenchmark() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// gonumOnly is gonum's BLAS under another type, so that nn.Gemm (which
// replaces gonum's own implementation by its kernels) calls it: the
// "before" of the GEMM lever.
type gonumOnly struct{ gonum.Implementation }

// UseGEMMForBenchmark selects the GEMM of every matrix product in the test
// process: lsfuse's (nn.UseFastBLAS) or gonum's pure-Go one. Benchmarks
// only (exported for the external test package).
func UseGEMMForBenchmark(fast bool) {
	if fast {
		nn.UseFastBLAS()
		return
	}
	G.Use(gonum.Implementation{})
	blas32.Use(gonumOnly{})
	blas64.Use(gonumOnly{})
}

// BenchmarkEncoderLevers times one bench-small encoder (x [32, 128] →
// proj → LIF 64 × T=8 → CfC 64 → out), forward + backward in float32, with
// each lever on or off: the fused LIF op, the fused CfC op, lsfuse's GEMM.
//
//	go test ./pkg/model -run '^$' -bench EncoderLevers -count 5
func BenchmarkEncoderLevers(b *testing.B) {
	defer UseGEMMForBenchmark(false)
	for _, gemm := range []bool{false, true} {
		for _, v := range []struct {
			name      string
			lif, cfcF bool
		}{{"unrolled", false, false}, {"fusedLIF", true, false}, {"fusedCfC", false, true}, {"fusedBoth", true, true}} {
			name := v.name + "/gonum"
			if gemm {
				name = v.name + "/gemm"
			}
			b.Run(name, func(b *testing.B) {
				UseGEMMForBenchmark(gemm)
				benchEncoder(b, v.lif, v.cfcF)
			})
		}
	}
}

func benchEncoder(b *testing.B, fusedLIF, fusedCfC bool) {
	const batch, steps, dim, units = 32, 8, 128, 64
	store, err := nn.NewStore(tensor.Float32, 1)
	if err != nil {
		b.Fatal(err)
	}
	c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{Train: true, NoiseSeed: 1})
	xv, err := nn.ToFloat64(nntest.RandInput(1, 2, batch, dim))
	if err != nil {
		b.Fatal(err)
	}
	x := G.NewTensor(c.Graph(), tensor.Float32, 2, G.WithShape(batch, dim), G.WithName("x"), G.WithValue(nn.NewDense(tensor.Float32, []int{batch, dim}, xv)))
	p, err := nn.Linear{In: dim, Out: dim}.Forward(c.Sub("proj"), x)
	if err != nil {
		b.Fatal(err)
	}
	spk, err := NewSpikingEncoder(SpikingEncoderConfig{InputDim: dim, OutputDim: units, Layers: 1, Steps: steps})
	if err != nil {
		b.Fatal(err)
	}
	cell, err := NewCfC(CfCConfig{InputSize: units, Units: units, BackboneUnits: units})
	if err != nil {
		b.Fatal(err)
	}
	var seq *G.Node
	var perStep []*G.Node
	if fusedLIF {
		o, err := spk.ForwardFused(c.Sub("spiking"), p)
		if err != nil {
			b.Fatal(err)
		}
		seq = o.Last()
		if !fusedCfC {
			if perStep, err = seqSteps(seq); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		o, err := spk.Forward(c.Sub("spiking"), p)
		if err != nil {
			b.Fatal(err)
		}
		perStep = o.Last()
		if fusedCfC {
			if seq, err = stackSteps(perStep); err != nil {
				b.Fatal(err)
			}
		}
	}
	var h *G.Node
	if fusedCfC {
		o, err := cell.ForwardFused(c.Sub("cfc"), seq, false)
		if err != nil {
			b.Fatal(err)
		}
		h = o.Last
	} else {
		hs, err := cell.Forward(c.Sub("cfc"), perStep)
		if err != nil {
			b.Fatal(err)
		}
		h = hs[len(hs)-1]
	}
	feat, err := nn.Linear{In: units, Out: dim}.Forward(c.Sub("out"), h)
	if err != nil {
		b.Fatal(err)
	}
	sq, err := G.Square(feat)
	if err != nil {
		b.Fatal(err)
	}
	loss, err := G.Sum(sq)
	if err != nil {
		b.Fatal(err)
	}
	params := c.Learnables()
	if _, err := G.Grad(loss, params...); err != nil {
		b.Fatal(err)
	}
	vm := G.NewTapeMachine(c.Graph(), G.BindDualValues(params...))
	defer vm.Close()
	step := func() {
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
		for _, n := range params {
			if gv, err := n.Grad(); err == nil {
				gv.(tensor.Tensor).Zero()
			}
		}
		vm.Reset()
	}
	step()
	b.ReportAllocs()
	cpu0 := CPUTimeForBenchmark()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/step")
	b.ReportMetric(float64(CPUTimeForBenchmark()-cpu0)/1e6/float64(b.N), "cpu-ms/step")
}
