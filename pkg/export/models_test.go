package export

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// exportCase is one tiny network, exported with opts.
type exportCase struct {
	name string
	cfg  model.NetworkConfig
	opts ONNXOptions
}

func mods(kv ...any) map[string]model.ModalityConfig {
	out := map[string]model.ModalityConfig{}
	for i := 0; i < len(kv); i += 3 {
		out[kv[i].(string)] = model.ModalityConfig{Preprocessor: kv[i+1].(modality.Config), Encoder: kv[i+2].(model.EncoderConfig)}
	}
	return out
}

func exportCases() []exportCase {
	zeroReset, twoLayers, pure, ltc, learnT := zeroResetEnc(), twoLayerEnc(), pureEnc(), ltcEnc(), learnThresholdEnc()
	return []exportCase{
		{name: "early", cfg: model.NetworkConfig{
			Modalities: mods("feat", mlpPre, enc(), "image", visionSimple, zeroReset, "clip", videoLiquid, enc()),
			Fusion:     fusion.Config{Strategy: fusion.Early, Dim: 8, ModalityWeights: true}, OutputDim: 3}},
		{name: "late", cfg: model.NetworkConfig{
			Modalities: mods("words", textMean, twoLayers, "speech", audioMel, enc()),
			Fusion:     fusion.Config{Strategy: fusion.Late, Dim: 4, ModalityWeights: true, MissingEmbedding: true},
			OutputDim:  3, HeadHidden: 5}},
		{name: "hybrid", cfg: model.NetworkConfig{
			Modalities: mods("imu", sensorAttn, pure, "clip", videoFrames, learnT),
			Fusion:     fusion.Config{Strategy: fusion.Hybrid, Dim: 6, Heads: 2},
			OutputDim:  2, Head: model.HeadRegression}},
		{name: "hierarchical_opset13_fixed_batch", opts: ONNXOptions{Opset: 13, Batch: 3}, cfg: model.NetworkConfig{
			Modalities: mods("a_img", visionResnet, ltc, "b_wave", audioRaw, enc(), "c_txt", textMax, zeroReset),
			Fusion:     fusion.Config{Strategy: fusion.Hierarchical, Dim: 4, Heads: 2, ModalityWeights: true},
			OutputDim:  6, Head: model.HeadTokens, TokenLen: 2}},
		{name: "hybrid_opset21", opts: ONNXOptions{Opset: 21}, cfg: model.NetworkConfig{
			Modalities: mods("cam", visionEfficient, enc(), "vol", video3D, twoLayers, "ids", textFirst, pure),
			Fusion:     fusion.Config{Strategy: fusion.Hybrid, Dim: 3, Heads: 1, ModalityWeights: true},
			OutputDim:  3, HeadHidden: 4}},
		{name: "bench_small", cfg: model.BenchSmallConfig()},
		{name: "late_tokens", cfg: model.NetworkConfig{
			Modalities: mods("frames", videoMean, enc(), "series", sensorPlain, ltc, "plain", textPlainMean, learnT),
			Fusion:     fusion.Config{Strategy: fusion.Late, Dim: 4},
			OutputDim:  5, Head: model.HeadTokens, TokenLen: 3, HeadHidden: 3}},
	}
}

// buildCase builds the network of c on a float32 store, with every
// parameter and buffer moved away from its initial value (running
// statistics, zero biases, uniform modality weights would otherwise hide
// mistakes).
func buildCase(t *testing.T, c exportCase) (*model.Network, *nn.Store) {
	t.Helper()
	net, err := model.NewNetwork(c.cfg)
	if err != nil {
		t.Fatalf("%s: NewNetwork: %v", c.name, err)
	}
	store, err := nn.NewStore(tensor.Float32, 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Build(nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}), 1); err != nil {
		t.Fatalf("%s: Build: %v", c.name, err)
	}
	perturb(t, store, 11)
	// Amplify the encoders' input projections so the spike trains follow
	// the inputs rather than the biases.
	for _, p := range store.Params() {
		if strings.HasSuffix(p.Name, ".encoder.proj.weight") {
			vals, err := nn.ToFloat64(p.Value)
			if err != nil {
				t.Fatal(err)
			}
			for i := range vals {
				vals[i] *= 4
			}
			if err := nn.SetFromFloat64(p.Value, vals); err != nil {
				t.Fatal(err)
			}
		}
	}
	return net, store
}

// sampleInputs returns deterministic inputs for batch samples (see
// randomInput; floats have standard deviation 3).
func sampleInputs(net *model.Network, batch int, seed int64) map[string]*tensor.Dense {
	rng := rand.New(rand.NewSource(seed))
	out := map[string]*tensor.Dense{}
	for _, name := range net.Names() {
		p := net.Preprocessor(name)
		out[name] = randomInput(rng, p.InputShape(batch), p.IntInput(), 3, 11)
	}
	return out
}

// reference runs the Gorgonia evaluation graph and returns the output, its
// shape, and the mean firing rate of each modality's last spiking layer.
func reference(t *testing.T, net *model.Network, store *nn.Store, in map[string]*tensor.Dense, batch int) ([]float64, []int, map[string]float64) {
	t.Helper()
	g := G.NewGraph()
	gr, err := net.Build(nn.NewCtx(g, store, nn.CtxOptions{}), batch)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if err := gr.Bind(model.Feed{Inputs: in}); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatalf("RunAll: %v", err)
	}
	out, err := nn.ToFloat64(gr.Output.Value().(*tensor.Dense))
	if err != nil {
		t.Fatal(err)
	}
	rates := map[string]float64{}
	for name, e := range gr.Encoders {
		r, err := nn.ToFloat64(e.Rates[len(e.Rates)-1].Value().(*tensor.Dense))
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for _, v := range r {
			sum += math.Abs(v)
		}
		rates[name] = sum / float64(len(r))
	}
	return out, []int(gr.Output.Shape()), rates
}
