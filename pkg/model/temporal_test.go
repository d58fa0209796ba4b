package model

import (
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// runNode builds out(x) on a float64 graph with x bound to vals and
// returns the output values.
func runNode(t *testing.T, shape []int, vals []float64, build func(x *G.Node) (*G.Node, error)) ([]float64, tensor.Shape) {
	t.Helper()
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, len(shape), G.WithShape(shape...), G.WithName("x"), G.WithValue(nn.NewDense(tensor.Float64, shape, vals)))
	y, err := build(x)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	out, _ := nn.ToFloat64(y.Value().(tensor.Tensor))
	return out, y.Shape().Clone()
}

// TestTemporalResampleValues compares with values worked out by hand from
// PyTorch's linear interpolation (align_corners=False), e.g.
// F.interpolate([[0,1]], size=4, mode="linear") = [0, .25, .75, 1].
func TestTemporalResampleValues(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		to   int
		want []float64
	}{
		{[]float64{0, 1}, 4, []float64{0, 0.25, 0.75, 1}},
		{[]float64{0, 1, 2, 3}, 2, []float64{0.5, 2.5}},
		{[]float64{0, 10, 20}, 5, []float64{0, 4, 10, 16, 20}},
		{[]float64{3, -1, 4}, 3, []float64{3, -1, 4}},
		{[]float64{7}, 3, []float64{7, 7, 7}},
		{[]float64{1, 2, 3, 4, 5, 6}, 4, []float64{1.25, 2.75, 4.25, 5.75}},
	} {
		got, _ := runNode(t, []int{1, len(tc.in)}, tc.in, func(x *G.Node) (*G.Node, error) { return TemporalResample(x, 1, tc.to) })
		for i := range tc.want {
			if math.Abs(got[i]-tc.want[i]) > 1e-12 {
				t.Errorf("%v → %d steps: got %v, want %v", tc.in, tc.to, got, tc.want)
				break
			}
		}
	}
	// Along the middle axis of [B, L, D], features stay separate.
	vals := []float64{0, 100, 1, 101 /* sample 2 */, 5, 50, 7, 70}
	got, shape := runNode(t, []int{2, 2, 2}, vals, func(x *G.Node) (*G.Node, error) { return TemporalResample(x, 1, 4) })
	want := []float64{0, 100, 0.25, 100.25, 0.75, 100.75, 1, 101, 5, 50, 5.5, 55, 6.5, 65, 7, 70}
	if !shape.Eq(tensor.Shape{2, 4, 2}) {
		t.Fatalf("shape %v, want [2 4 2]", shape)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("[B,L,D] resample: got %v, want %v", got, want)
		}
	}
	if _, err := TemporalResample(G.NewTensor(G.NewGraph(), tensor.Float64, 2, G.WithShape(1, 3)), 2, 4); err == nil {
		t.Error("axis out of range: no error")
	}
}

func TestTemporalResampleGradients(t *testing.T) {
	for _, to := range []int{2, 7} { // down- and upsampling
		nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
			x := G.NewTensor(c.Graph(), tensor.Float64, 3, G.WithShape(2, 5, 3), G.WithName("x"), G.WithValue(nntest.RandInput(1, 1, 2, 5, 3)))
			y, err := TemporalResample(x, 1, to)
			if err != nil {
				return nil, nil, err
			}
			loss, err := nntest.WeightedSum(y, 2)
			return loss, G.Nodes{x}, err
		}, nntest.Options{Entries: 10, MinChecked: 1})
	}
}

// TestForwardSequenceOfRepeatedStep: an aligned encoder fed the same
// feature at every step computes exactly the direct-coding Forward.
func TestForwardSequenceOfRepeatedStep(t *testing.T) {
	cfg := tinyEncoder(4)
	cfg.Name, cfg.InputDim, cfg.NumSpikeSteps, cfg.SpikingLayers = "m", 3, 3, 2
	e, err := NewModalityEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := nn.NewStore(tensor.Float64, 2)
	x := nntest.RandInput(4, 2, 2, 3)
	xv, _ := nn.ToFloat64(x)
	seq := make([]float64, 0, 2*3*3)
	for b := 0; b < 2; b++ {
		for s := 0; s < 3; s++ {
			seq = append(seq, xv[b*3:(b+1)*3]...)
		}
	}
	run := func(shape []int, vals []float64, aligned bool) []float64 {
		g := G.NewGraph()
		c := nn.NewCtx(g, store, nn.CtxOptions{})
		in := G.NewTensor(g, tensor.Float64, len(shape), G.WithShape(shape...), G.WithName("x"), G.WithValue(nn.NewDense(tensor.Float64, shape, vals)))
		var out *EncoderOutput
		if aligned {
			out, err = e.ForwardSequence(c.Sub("m"), in)
		} else {
			out, err = e.Forward(c.Sub("m"), in)
		}
		if err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g)
		defer vm.Close()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		v, _ := nn.ToFloat64(out.Feature.Value().(tensor.Tensor))
		return v
	}
	direct, aligned := run([]int{2, 3}, xv, false), run([]int{2, 3, 3}, seq, true)
	for i := range direct {
		if math.Abs(direct[i]-aligned[i]) > 1e-12 {
			t.Fatalf("aligned %v, direct %v", aligned, direct)
		}
	}
}

// tinyAV is an audio + video network whose modalities are aligned to 4
// spike steps: the audio's 5 log-mel frames (after the conv stack) are
// downsampled, the video's 3 frames upsampled.
func tinyAV(strat string) NetworkConfig {
	enc := tinyEncoder(4)
	enc.NumSpikeSteps = 4
	return NetworkConfig{
		Modalities: map[string]ModalityConfig{
			"audio": {Preprocessor: modality.Config{Kind: modality.KindAudio, OutputDim: 3, Audio: modality.AudioConfig{
				SampleRate: 8000, Samples: 640, NFFT: 64, Hop: 32, NMels: 6, Channels: []int{3, 4}}}, Encoder: enc},
			"video": {Preprocessor: modality.Config{Kind: modality.KindVideo, OutputDim: 3, Video: modality.VideoConfig{
				Frames: 3, FrameDim: 3, Frame: modality.VisionConfig{InChannels: 1, Height: 6, Width: 6, Channels: []int{2}}}}, Encoder: enc},
		},
		Align:     []string{"audio", "video"},
		Fusion:    fusion.Config{Strategy: strat, Dim: 3, Heads: 2},
		OutputDim: 3,
	}
}

// TestAlignedNetworkGradients checks an aligned audio–video network's full
// graph (per-step preprocessors, resampling, step-driven spiking encoders,
// hierarchical fusion, head) against central differences.
func TestAlignedNetworkGradients(t *testing.T) {
	net, err := NewNetwork(tinyAV(fusion.Hierarchical))
	if err != nil {
		t.Fatal(err)
	}
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		g, err := net.Build(c, 2)
		if err != nil {
			return nil, nil, err
		}
		if n := len(g.Encoders["audio"].Spikes[0]); n != 4 {
			t.Errorf("audio encoder ran %d spike steps, want 4", n)
		}
		if err := g.Bind(tinyFeed(net, 2, 6)); err != nil {
			return nil, nil, err
		}
		return g.Loss, nil, nil
	}, nntest.Options{Seed: 4, Entries: 2, MinChecked: 20})
}

func TestAlignErrors(t *testing.T) {
	for _, tc := range []struct {
		edit func(*NetworkConfig)
		want string
	}{
		{func(c *NetworkConfig) { c.Align = []string{"audio", "speech"} }, `names modality "speech"`},
		{func(c *NetworkConfig) { c.Align = []string{"audio", "audio"} }, "twice"},
		{func(c *NetworkConfig) {
			m := c.Modalities["video"]
			m.Encoder.NumSpikeSteps = 5
			c.Modalities["video"] = m
		}, `"audio" has 4 and "video" has 5`},
		{func(c *NetworkConfig) {
			m := c.Modalities["video"]
			m.Preprocessor.Architecture = "conv3d"
			c.Modalities["video"] = m
		}, "per-frame video features"},
		{func(c *NetworkConfig) {
			c.Modalities["vec"] = ModalityConfig{Preprocessor: modality.Config{Kind: modality.KindMLP, OutputDim: 3, MLP: modality.MLPConfig{InputDim: 2}}, Encoder: tinyEncoder(4)}
			c.Align = []string{"vec"}
		}, "mlp preprocessor does not give"},
	} {
		cfg := tinyAV(fusion.Early)
		tc.edit(&cfg)
		if _, err := NewNetwork(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to contain %q", err, tc.want)
		}
	}
}

// TestAlignedFused: the fused encoder build of an aligned network (T-major
// per-step currents through the fused LIF and CfC kernels) computes the
// unrolled build's outputs, and its full graph passes the gradient check.
func TestAlignedFused(t *testing.T) {
	unrolled := tinyAV(fusion.Early)
	fused := tinyAV(fusion.Early)
	for name, m := range fused.Modalities {
		m.Encoder.Fused = true
		fused.Modalities[name] = m
	}
	nu, err := NewNetwork(unrolled)
	if err != nil {
		t.Fatal(err)
	}
	nf, err := NewNetwork(fused)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := nn.NewStore(tensor.Float64, 3)
	feed := tinyFeed(nu, 2, 7)
	want, got := evalRun(t, nu, store, 2, feed), evalRun(t, nf, store, 2, feed)
	for i := range want {
		if math.Abs(want[i]-got[i]) > 1e-9*(1+math.Abs(want[i])) {
			t.Fatalf("fused %v, unrolled %v", got, want)
		}
	}
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		g, err := nf.Build(c, 2)
		if err != nil {
			return nil, nil, err
		}
		if err := g.Bind(tinyFeed(nf, 2, 8)); err != nil {
			return nil, nil, err
		}
		return g.Loss, nil, nil
	}, nntest.Options{Seed: 5, Entries: 2, MinChecked: 20})
}
