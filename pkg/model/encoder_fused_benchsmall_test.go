//go:build unix

package model_test

import (
	"math/rand"
	"testing"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
)

// BenchmarkBenchSmallLevers measures what the fused sequence ops and the
// GEMM give on the bench-small training step (B = 32, T = 8, float32, one
// fixed random batch, Adam), side by side in one run:
//
//	go test ./pkg/model -run '^$' -bench BenchSmallLevers -count 5
//
// unrolled/gonum is the state before both levers.
func BenchmarkBenchSmallLevers(b *testing.B) {
	defer model.UseGEMMForBenchmark(false)
	for _, v := range []struct {
		name        string
		fused, fast bool
	}{{"unrolled/gonum", false, false}, {"unrolled/gemm", false, true}, {"fused/gonum", true, false}, {"fused/gemm", true, true}} {
		for _, training := range []bool{true, false} {
			mode := "infer"
			if training {
				mode = "train"
			}
			b.Run(v.name+"/"+mode, func(b *testing.B) {
				model.UseGEMMForBenchmark(v.fast)
				benchSmallStep(b, v.fused, training, 32, 8)
			})
		}
	}
}

// benchSmallStep times bench-small steps (forward + backward + Adam when
// training, the evaluation forward otherwise) on one fixed random batch.
func benchSmallStep(b *testing.B, fused, training bool, batch, steps int) {
	r := newBenchSmallRun(b, tensor.Float32, fused, training, batch, steps, false)
	defer r.vm.Close()
	rng := rand.New(rand.NewSource(1))
	img := make([]float32, batch*28*28)
	for i := range img {
		img[i] = float32(rng.NormFloat64())
	}
	ids, labels := make([]int, batch*16), make([]int, batch)
	for i := range ids {
		ids[i] = rng.Intn(1000)
	}
	for i := range labels {
		labels[i] = rng.Intn(10)
	}
	if err := r.gr.Bind(model.Feed{
		Inputs: map[string]*tensor.Dense{
			"vision": tensor.New(tensor.WithShape(batch, 1, 28, 28), tensor.WithBacking(img)),
			"text":   tensor.New(tensor.WithShape(batch, 16), tensor.WithBacking(ids)),
		},
		Labels: tensor.New(tensor.WithShape(batch), tensor.WithBacking(labels)),
	}); err != nil {
		b.Fatal(err)
	}
	step := func() { r.step(b) }
	for i := 0; i < 3; i++ {
		step()
	}
	b.ReportAllocs()
	cpu0 := model.CPUTimeForBenchmark()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/step")
	b.ReportMetric(float64(model.CPUTimeForBenchmark()-cpu0)/1e6/float64(b.N), "cpu-ms/step")
}
