package train

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// synth is an in-memory dataset of a 3-class problem with two modalities:
// "a" (4 values) carries the class — a[c] = 1.5 plus noise — and "b"
// (3 values) is pure noise, so removing "a" must cost accuracy and
// removing "b" must not.
type synth struct {
	samples []data.Sample
	// nanAt, when ≥ 0, makes sample nanAt's "a" input NaN, or its target
	// when regress (a diverging batch).
	nanAt int
	// regress labels each sample with the one-hot vector of its class (a
	// regression target) instead of the class.
	regress bool
}

func newSynth(n int, seed int64) *synth {
	r := rand.New(rand.NewSource(seed))
	s := &synth{nanAt: -1}
	for i := 0; i < n; i++ {
		c := r.Intn(3)
		a := make([]float32, 4)
		for j := range a {
			a[j] = float32(0.3 * r.NormFloat64())
		}
		a[c] += 1.5
		b := make([]float32, 3)
		for j := range b {
			b[j] = float32(r.NormFloat64())
		}
		s.samples = append(s.samples, data.Sample{Index: i,
			Inputs:  map[string]data.Tensor{"a": {Shape: []int{4}, Data: a}, "b": {Shape: []int{3}, Data: b}},
			Present: map[string]bool{"a": true, "b": true},
			Label:   data.Label{Class: c}})
	}
	return s
}

func (s *synth) Len() int { return len(s.samples) }

func (s *synth) Get(i int) (data.Sample, error) {
	if i < 0 || i >= len(s.samples) {
		return data.Sample{}, fmt.Errorf("index %d out of range", i)
	}
	smp := s.samples[i]
	if s.regress {
		v := make([]float32, 3)
		v[smp.Label.Class] = 1
		if i == s.nanAt {
			v[0] = float32(math.NaN())
		}
		smp.Label = data.Label{Class: data.NoClass, Vector: v}
		return smp, nil
	}
	if i == s.nanAt {
		a := smp.Inputs["a"].Clone()
		a.Data[0] = float32(math.NaN())
		smp.Inputs = map[string]data.Tensor{"a": a, "b": smp.Inputs["b"]}
	}
	return smp, nil
}

// netOpts vary the tiny network of the tests.
type netOpts struct {
	noisy      bool   // fusion dropout and modality dropout (random ops)
	regression bool   // a regression head of 3 outputs
	strategy   string // fusion strategy (default early)
}

// tinyNet is a two-modality network small enough that an epoch of a few
// dozen samples takes milliseconds: MLP preprocessors, one LIF layer of 8
// neurons over 2 steps, a CfC of 8 units, early fusion with learned
// modality weights and missing embeddings.
func tinyNet(t testing.TB, o netOpts) *model.Network {
	t.Helper()
	enc := model.EncoderConfig{EncoderDim: 8, SpikingUnits: 8, SpikingLayers: 1, NumSpikeSteps: 2, Threshold: 0.5,
		LiquidUnits: 8, BackboneUnits: 8}
	cfg := model.NetworkConfig{
		Modalities: map[string]model.ModalityConfig{
			"a": {Preprocessor: modality.Config{Kind: modality.KindMLP, OutputDim: 8, MLP: modality.MLPConfig{InputDim: 4}}, Encoder: enc},
			"b": {Preprocessor: modality.Config{Kind: modality.KindMLP, OutputDim: 8, MLP: modality.MLPConfig{InputDim: 3}}, Encoder: enc},
		},
		Fusion:    fusion.Config{Strategy: fusion.Early, Dim: 8, ModalityWeights: true, MissingEmbedding: true},
		OutputDim: 3,
	}
	if o.regression {
		cfg.Head = model.HeadRegression
	}
	if o.strategy != "" {
		cfg.Fusion.Strategy = o.strategy
	}
	if o.noisy {
		cfg.Fusion.Dropout = 0.2
		cfg.Fusion.ModalityDropout = map[string]float64{"b": 0.3}
	}
	net, err := model.NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func newStore(t testing.TB, dt tensor.Dtype) *nn.Store {
	t.Helper()
	s, err := nn.NewStore(dt, 7)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newStoreFor returns a fresh float32 store holding net's parameters (at
// their initial values), ready for model.LoadCheckpoint.
func newStoreFor(t testing.TB, net *model.Network) *nn.Store {
	t.Helper()
	s := newStore(t, tensor.Float32)
	if _, err := net.Build(nn.NewCtx(G.NewGraph(), s, nn.CtxOptions{}), 1); err != nil {
		t.Fatal(err)
	}
	return s
}

// baseConfig is a short run: the tests change what they exercise.
func baseConfig() Config {
	cfg := DefaultConfig()
	cfg.Epochs = 2
	cfg.BatchSize = 4
	cfg.LR = 1e-2
	cfg.Seed = 3
	cfg.LogEvery = 1
	return cfg
}

// fit builds a trainer and runs it, failing the test on error.
func fit(t testing.TB, net *model.Network, store *nn.Store, tr, val data.Dataset, cfg Config, opts Options) Result {
	t.Helper()
	tt, err := New(net, store, tr, val, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tt.Fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// weights returns every parameter and buffer of store as float64.
func weights(t testing.TB, store *nn.Store) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for _, p := range store.Params() {
		v, err := nn.ToFloat64(p.Value)
		if err != nil {
			t.Fatal(err)
		}
		out[p.Name] = v
	}
	return out
}

// maxDiff returns the largest absolute difference between two weight
// sets over the parameters whose name satisfies keep (nil: all), and the
// name where it occurs.
func maxDiff(a, b map[string][]float64, keep func(string) bool) (float64, string) {
	worst, where := 0.0, ""
	for name, va := range a {
		if keep != nil && !keep(name) {
			continue
		}
		vb := b[name]
		if len(vb) != len(va) {
			return math.Inf(1), name
		}
		for i := range va {
			d := math.Abs(va[i] - vb[i])
			if d > worst || math.IsNaN(d) {
				worst, where = d, name
			}
		}
	}
	return worst, where
}

// stepRecorder is a hook that keeps every StepInfo and EpochInfo.
type stepRecorder struct {
	HookFuncs
	steps  []StepInfo
	epochs []EpochInfo
	starts []StartInfo
	ends   []FinishInfo
}

func newRecorder() *stepRecorder {
	r := &stepRecorder{}
	r.HookFuncs = HookFuncs{
		Start:    func(i StartInfo) error { r.starts = append(r.starts, i); return nil },
		Step:     func(i StepInfo) error { r.steps = append(r.steps, i); return nil },
		EpochEnd: func(i EpochInfo) error { r.epochs = append(r.epochs, i); return nil },
		Finish:   func(i FinishInfo) error { r.ends = append(r.ends, i); return nil },
	}
	return r
}
