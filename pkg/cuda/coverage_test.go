package cuda

import (
	"fmt"
	"maps"
	"math/rand"
	"path/filepath"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/vm"
)

// tinyApp is the small encoder the application networks are built with
// here (as pkg/model's apps tests).
var tinyApp = model.AppEncoder{InputDim: 8, EncoderDim: 8, LiquidUnits: 8, SpikingUnits: 8, NumSpikeSteps: 3}

// shrinkApp narrows an application network's preprocessors to test size
// (pkg/model's apps tests do the same).
func shrinkApp(cfg model.NetworkConfig) model.NetworkConfig {
	for name, m := range cfg.Modalities {
		p := &m.Preprocessor
		p.Vision.Channels = []int{4, 4}
		p.Text.EmbedDim = 8
		p.Audio.NFFT, p.Audio.Hop, p.Audio.NMels, p.Audio.Channels = 64, 32, 8, []int{4, 4}
		p.Video.Frame.Channels = []int{2}
		m.Encoder.Threshold = 0.5
		cfg.Modalities[name] = m
	}
	return cfg
}

// modelNetworks are the graphs pkg/model's tests build beyond the shipped
// configurations: the caption decoder (teacher-forced, token labels
// shifted by TokenSlice) and the temporally aligned audio–video network
// (TemporalResample), unrolled and fused (SwapAxes01).
func modelNetworks(t *testing.T) map[string]*model.Network {
	t.Helper()
	out := map[string]*model.Network{}
	add := func(name string, cfg model.NetworkConfig, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		net, err := model.NewNetwork(shrinkApp(cfg))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = net
	}
	cfg, err := model.VisionLanguageModel(model.VisionLanguageOptions{Task: model.TaskCaption, ImageSize: [3]int{1, 8, 8},
		TextVocabSize: 12, TextSeqLength: 4, CaptionLen: 5, FusionDim: 8, Heads: 2, VisionArch: "simple",
		Encoder: tinyApp, Caption: model.CaptionConfig{EmbedDim: 8, Units: 8}})
	add("caption", cfg, err)
	av := func(fused bool) (model.NetworkConfig, error) {
		cfg, err := model.AudioVideoModel(model.AudioVideoOptions{VideoFrames: 3, FrameSize: [3]int{1, 6, 6}, AudioSampleRate: 8000,
			AudioSamples: 640, FusionDim: 8, NumClasses: 10, Heads: 2, Encoder: tinyApp})
		for name, m := range cfg.Modalities {
			m.Encoder.Fused = fused
			cfg.Modalities[name] = m
		}
		return cfg, err
	}
	cfg, err = av(false)
	add("aligned", cfg, err)
	cfg, err = av(true)
	add("aligned-fused", cfg, err)
	return out
}

// TestMachineBuildsEveryGraph builds a Machine (on the fake device) for
// the training and the evaluation graph of every shipped configuration
// and of modelNetworks: every op family they use has a lowering.
func TestMachineBuildsEveryGraph(t *testing.T) {
	files := configFiles(t)
	nets := modelNetworks(t)
	for _, f := range files {
		nets[filepath.Base(f)] = configNetwork(t, f)
	}
	for _, name := range slices.Sorted(maps.Keys(nets)) {
		for _, train := range []bool{true, false} {
			g := buildGraph(t, nets[name], 2, 1, train)
			opts := []Option{WithSession(newSession(newFakeDevice(), nil))}
			if !train {
				opts = append(opts, EvalMode())
			}
			m, err := NewMachine(g.g, g.learn, opts...)
			if err != nil {
				t.Errorf("%s (training %v): %v", name, train, err)
				continue
			}
			m.Close()
		}
	}
}

// TestMachineMatchesVMOnModelGraphs runs the caption and the aligned
// audio–video networks (training and evaluation) on vm.Machine and on
// the lowered Machine over the fake device. TemporalResample, SwapAxes01,
// the subtractions with a one-value device operand, the per-step spike
// statistics and the STFT framing run as kernels, TokenSlice on the host.
func TestMachineMatchesVMOnModelGraphs(t *testing.T) {
	nets := modelNetworks(t)
	for _, name := range slices.Sorted(maps.Keys(nets)) {
		t.Run(name, func(t *testing.T) {
			net := nets[name]
			host := checkTrainingMatchesVM(t, buildTrainGraph(t, net, 2, 1), buildTrainGraph(t, net, 2, 1))
			host = append(host, checkEvalMatchesVM(t, net)...)
			for _, f := range []string{"TemporalResample", "SwapAxes01", "gorgonia.elemBinOp:-", "SpikeStats", "modality.Gather"} {
				if slices.Contains(host, f) {
					t.Errorf("%s ran on the host", f)
				}
			}
			if want := name == "caption"; slices.Contains(host, "TokenSlice") != want {
				t.Errorf("host steps %v: TokenSlice on the host %v, want %v", host, !want, want)
			}
		})
	}
}

// opCase is one op checked against vm.Machine by opMatchesVM: op
// applied to an input of shape, run runs times, launching kernel.
type opCase struct {
	what   string
	shape  tensor.Shape
	runs   int
	kernel string
	op     func(c *nn.Ctx, x *G.Node) (*G.Node, error)
}

// deviceOpCases are the ops whose kernels were added with the
// single-stream executor: TemporalResample through lsf_mix_rows
// (upsampling, downsampling, the identity and one step, on every axis),
// nn.MaxPool2d through lsf_maxpool2d and lsf_maxpool1d_grad
// (non-overlapping, overlapping windows whose gradients add, padding, a
// non-square input) and nn.Dropout over three runs (each draws a new
// mask from the op's RNG; the device must apply the same ones).
func deviceOpCases() []opCase {
	var out []opCase
	for _, c := range []struct{ axis, from, to int }{{1, 3, 7}, {1, 7, 3}, {0, 4, 4}, {2, 5, 1}, {2, 2, 9}, {0, 6, 4}} {
		shape := tensor.Shape{3, 4, 2}
		shape[c.axis] = c.from
		out = append(out, opCase{fmt.Sprintf("resample axis %d %d→%d", c.axis, c.from, c.to), shape, 1, "lsf_mix_rows",
			func(_ *nn.Ctx, x *G.Node) (*G.Node, error) { return model.TemporalResample(x, c.axis, c.to) }})
	}
	for _, p := range []nn.MaxPool2d{{Kernel: 2}, {Kernel: 3, Stride: 1}, {Kernel: 3, Stride: 2, Padding: 1}} {
		out = append(out, opCase{fmt.Sprintf("maxpool2d %+v", p), tensor.Shape{2, 3, 7, 6}, 1, "lsf_maxpool2d",
			func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return p.Forward(c, x) }})
	}
	return append(out, opCase{"dropout", tensor.Shape{4, 50}, 3, "lsf_mul",
		func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return nn.Dropout{P: 0.3}.Forward(c, x) }})
}

// opMatchesVM builds oc.op on an input x (normal values) in a training
// context and the loss Σ op(x)·w for a fixed random w, runs it oc.runs
// times on vm.Machine and on a Machine of sess (gradients accumulating),
// compares the outputs (to tol of their largest entry) and x's gradient,
// and returns the machine's host steps.
func opMatchesVM(t *testing.T, sess *Session, oc opCase, tol float64) []string {
	t.Helper()
	build := func() (*G.ExprGraph, *G.Node, *G.Node) {
		g := G.NewGraph()
		store, err := nn.NewStore(tensor.Float32, 1)
		if err != nil {
			t.Fatal(err)
		}
		c := nn.NewCtx(g, store, nn.CtxOptions{Train: true, NoiseSeed: 7})
		rng := rand.New(rand.NewSource(int64(oc.shape.TotalSize())))
		x := G.NewTensor(g, tensor.Float32, oc.shape.Dims(), G.WithShape(oc.shape...), G.WithName("x"), G.WithValue(randDense(rng, oc.shape)))
		y, err := oc.op(c, x)
		if err != nil {
			t.Fatal(err)
		}
		w := G.NewTensor(g, tensor.Float32, y.Shape().Dims(), G.WithShape(y.Shape()...), G.WithName("w"), G.WithValue(randDense(rng, y.Shape())))
		loss := G.Must(G.Sum(G.Must(G.HadamardProd(y, w))))
		if _, err := G.Grad(loss, x); err != nil {
			t.Fatal(err)
		}
		return g, x, y
	}
	gr, xr, yr := build()
	gg, xg, yg := build()
	cpu, err := vm.New(gr, G.Nodes{xr})
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	m, err := NewMachine(gg, G.Nodes{xg}, WithSession(sess), Fetch(yg))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for r := 0; r < oc.runs; r++ {
		runBoth(t, cpu, m)
		closeTo(t, fmt.Sprintf("%s run %d output", oc.what, r), G.Nodes{yr}, valuesOf(G.Nodes{yg}), valuesOf(G.Nodes{yr}), tol)
	}
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	closeTo(t, oc.what+" gradient", G.Nodes{xr}, gradsOf(t, G.Nodes{xg}), gradsOf(t, G.Nodes{xr}), tol)
	return m.HostSteps()
}

// TestDeviceOpsMatchVM runs deviceOpCases on the fake device (Go
// transcriptions of the new kernels) against vm.Machine: every step runs
// on the device and the case's kernel is launched.
func TestDeviceOpsMatchVM(t *testing.T) {
	for _, oc := range deviceOpCases() {
		dev := newFakeDevice()
		host := opMatchesVM(t, newSession(dev, nil), oc, 1e-6)
		if dev.launches[oc.kernel] == 0 || len(host) != 0 {
			t.Errorf("%s: launches %v, host steps %v: want %s and no host step", oc.what, dev.launches, host, oc.kernel)
		}
	}
}

// randDense is a float32 tensor of normal values.
func randDense(rng *rand.Rand, shape tensor.Shape) *tensor.Dense {
	v := make([]float32, shape.TotalSize())
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}
