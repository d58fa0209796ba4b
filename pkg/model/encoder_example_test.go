package model_test

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Build bench-small's per-modality encoder, run it on a batch and read the
// spike telemetry.
func ExampleNewModalityEncoder() {
	enc, err := model.NewModalityEncoder(model.EncoderConfig{
		Name: "vision", InputDim: 128, EncoderDim: 128, SpikingUnits: 64, LiquidUnits: 64,
		NumSpikeSteps: 8, SpikingLayers: 1, BackboneUnits: 64, BackboneLayers: 1,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	store, _ := nn.NewStore(tensor.Float32, 1)
	c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{})
	x := c.Input("x", 4, 128)
	out, err := enc.Forward(c.Sub("vision"), x)
	if err != nil {
		fmt.Println(err)
		return
	}
	batch := make([]float64, 4*128)
	for i := range batch {
		batch[i] = 3 * math.Sin(float64(i))
	}
	if err := G.Let(x, nn.NewDense(tensor.Float32, []int{4, 128}, batch)); err != nil {
		fmt.Println(err)
		return
	}
	vm := G.NewTapeMachine(c.Graph())
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		fmt.Println(err)
		return
	}
	tel, err := model.SpikeTelemetry(out)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("parameters:", store.NumParams())
	fmt.Println("feature:", out.Feature.Shape(), "spike steps:", len(out.Spikes[0]))
	l := tel.Layers[0]
	fmt.Printf("%s: %d neurons, rate %.2f, silent %.2f, saturated %.2f\n", l.Layer, l.Neurons, l.Rate, l.Silent, l.Saturated)
	// Output:
	// parameters: 57984
	// feature: (4, 128) spike steps: 8
	// vision.spiking.lif1: 64 neurons, rate 0.18, silent 0.03, saturated 0.00
}
