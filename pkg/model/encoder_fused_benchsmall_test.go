//go:build unix

package model_test

import (
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/train"
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
	cfg := model.BenchSmallConfig()
	for name, m := range cfg.Modalities {
		m.Encoder.NumSpikeSteps = steps
		m.Encoder.Fused = fused
		cfg.Modalities[name] = m
	}
	net, err := model.NewNetwork(cfg)
	if err != nil {
		b.Fatal(err)
	}
	store, err := nn.NewStore(tensor.Float32, 0)
	if err != nil {
		b.Fatal(err)
	}
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{Train: training, NoiseSeed: 1})
	gr, err := net.Build(c, batch)
	if err != nil {
		b.Fatal(err)
	}
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
	if err := gr.Bind(model.Feed{
		Inputs: map[string]*tensor.Dense{
			"vision": tensor.New(tensor.WithShape(batch, 1, 28, 28), tensor.WithBacking(img)),
			"text":   tensor.New(tensor.WithShape(batch, 16), tensor.WithBacking(ids)),
		},
		Labels: tensor.New(tensor.WithShape(batch), tensor.WithBacking(labels)),
	}); err != nil {
		b.Fatal(err)
	}
	var params G.Nodes
	var opts []G.VMOpt
	var opt *train.Adam
	if training {
		params = c.Learnables()
		if _, err := G.Grad(gr.Loss, params...); err != nil {
			b.Fatal(err)
		}
		opts = append(opts, G.BindDualValues(params...))
		if opt, err = train.NewAdam(train.AdamConfig{LR: 1e-3}); err != nil {
			b.Fatal(err)
		}
	}
	vm := G.NewTapeMachine(g, opts...)
	defer vm.Close()
	step := func() {
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
		if training {
			if err := opt.Step(params); err != nil {
				b.Fatal(err)
			}
		}
		vm.Reset()
	}
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
