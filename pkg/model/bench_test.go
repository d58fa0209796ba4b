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

// The bench-small timings of ../shared/bench/README.md, measured the way
// ref_torch.py measures them: one fixed random batch (images N(0,1), ids
// and labels uniform), a training step = forward + backward + Adam(1e-3),
// an inference step = evaluation forward. Compare the two programs in the
// same run, e.g.
//
//	go test ./pkg/model -run '^$' -bench BenchSmall -benchtime 60x
//	/usr/bin/python3 ../shared/bench/ref_torch.py --mode train --batch 32 --spike-steps 8 --threads 2 --steps 60

func BenchmarkBenchSmallTrainB32T8(b *testing.B)   { benchSmall(b, true, 32, 8) }
func BenchmarkBenchSmallTrainB32T32(b *testing.B)  { benchSmall(b, true, 32, 32) }
func BenchmarkBenchSmallInferB128T8(b *testing.B)  { benchSmall(b, false, 128, 8) }
func BenchmarkBenchSmallInferB128T32(b *testing.B) { benchSmall(b, false, 128, 32) }

func benchSmall(b *testing.B, training bool, batch, steps int) {
	cfg := model.BenchSmallConfig()
	for name, m := range cfg.Modalities {
		m.Encoder.NumSpikeSteps = steps
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
	ids := make([]int, batch*16)
	for i := range ids {
		ids[i] = rng.Intn(1000)
	}
	labels := make([]int, batch)
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
	for i := 0; i < 3; i++ { // warm-up, as ref_torch.py
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/step")
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}
