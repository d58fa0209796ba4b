package train_test

import (
	"context"
	"fmt"
	"log"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/train"
)

// parity is a toy single-modality dataset: x = (±1, ±1), class 1 when the
// signs agree.
type parity struct{ n int }

func (p parity) Len() int { return p.n }

func (p parity) Get(i int) (data.Sample, error) {
	x := []float32{float32(1 - 2*(i%2)), float32(1 - 2*(i/2%2))}
	class := 0
	if x[0] == x[1] {
		class = 1
	}
	return data.Sample{Index: i, Inputs: map[string]data.Tensor{"x": {Shape: []int{2}, Data: x}},
		Label: data.Label{Class: class}}, nil
}

func exampleNetwork() (*model.Network, *nn.Store) {
	net, err := model.NewNetwork(model.NetworkConfig{
		Modalities: map[string]model.ModalityConfig{"x": {
			Preprocessor: modality.Config{Kind: modality.KindMLP, OutputDim: 8, MLP: modality.MLPConfig{InputDim: 2, Hidden: []int{8}}},
			Encoder: model.EncoderConfig{EncoderDim: 8, SpikingUnits: 8, SpikingLayers: 1, NumSpikeSteps: 2, Threshold: 0.5,
				LiquidUnits: 8, BackboneUnits: 8},
		}},
		Fusion:    fusion.Config{Strategy: fusion.Early, Dim: 8},
		OutputDim: 2,
	})
	if err != nil {
		log.Fatal(err)
	}
	store, err := nn.NewStore(tensor.Float32, 1)
	if err != nil {
		log.Fatal(err)
	}
	return net, store
}

// A run trains for the configured epochs and reports each through hooks;
// with Options.RunDir set it also writes metrics.jsonl, checkpoints and
// curves there.
func ExampleTrainer_Fit() {
	net, store := exampleNetwork()
	cfg := train.DefaultConfig()
	cfg.Epochs, cfg.BatchSize, cfg.LR = 3, 8, 1e-2
	progress := train.HookFuncs{EpochEnd: func(e train.EpochInfo) error {
		fmt.Printf("epoch %d/%d (%s): %d training samples, %d validation samples\n", e.Epoch, e.Epochs, e.Stage, e.Train.N, e.Val.N)
		return nil
	}}
	tr, err := train.New(net, store, parity{n: 40}, parity{n: 12}, cfg, train.Options{Hooks: []train.Hook{progress}})
	if err != nil {
		log.Fatal(err)
	}
	res, err := tr.Fit(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("optimiser steps:", res.Steps, "monitor:", res.Monitor)
	// Output:
	// epoch 1/3 (all): 40 training samples, 12 validation samples
	// epoch 2/3 (all): 40 training samples, 12 validation samples
	// epoch 3/3 (all): 40 training samples, 12 validation samples
	// optimiser steps: 15 monitor: val_loss
}

// Evaluate runs every sample once in evaluation mode; a batch size that
// does not divide the set runs the remainder on a graph of its own.
func ExampleEvaluate() {
	net, store := exampleNetwork()
	r, err := train.Evaluate(net, store, parity{n: 10}, 4, train.EvalOptions{Ablate: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("samples:", r.N, "classes:", len(r.Confusion), "ablated:", len(r.PerModalityAblation))
	// Output:
	// samples: 10 classes: 2 ablated: 1
}
