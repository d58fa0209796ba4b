package config

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// paramShapes builds net on a fresh float32 store and lists its
// parameters as "name [shape]", sorted.
func paramShapes(t *testing.T, net *model.Network) []string {
	t.Helper()
	store, err := nn.NewStore(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Build(nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}), 1); err != nil {
		t.Fatalf("build: %v", err)
	}
	var out []string
	for _, p := range store.Params() {
		out = append(out, fmt.Sprintf("%s %v", p.Name, p.Value.Shape()))
	}
	sort.Strings(out)
	return out
}

// TestShippedConfigs loads, validates and resolves every file in configs/
// and builds its model. Sizes only the data can tell are filled as a run
// would (10 classes; a vocabulary of 50 where one is built).
func TestShippedConfigs(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"audio_video.yaml", "bench-small.yaml", "quickstart.yaml", "robot.yaml", "trimodal.yaml", "vision_text.yaml"}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("configs/ holds %v, want %v (add a case for every config)", got, want)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg := mustLoad(t, LoadOptions{Files: []string{f}})
			vocab := map[string]int{}
			for name := range cfg.Model.Modalities {
				vocab[name] = 50
			}
			cfg.SetDataSizes(10, vocab)
			res, err := Resolve(cfg)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if err := res.Train.Validate(); err != nil {
				t.Errorf("train config: %v", err)
			}
			net, err := model.NewNetwork(res.Network)
			if err != nil {
				t.Fatalf("NewNetwork: %v", err)
			}
			if len(net.Names()) < 2 {
				t.Errorf("%s fuses %v: every shipped experiment is multimodal", f, net.Names())
			}
			if res.RunDir != filepath.Join("runs", strings.TrimSuffix(filepath.Base(f), ".yaml")) {
				t.Errorf("run dir %q", res.RunDir)
			}
			plan := cfg.DataPlan()
			if f != "../../configs/bench-small.yaml" && plan.Train.Path == "" {
				t.Errorf("no training data configured")
			}
		})
	}
}

// TestBenchSmallMatchesReference checks that configs/bench-small.yaml is
// exactly model.BenchSmallConfig: same parameters with the same shapes,
// 315,210 of them (../shared/bench/ref_torch.py).
func TestBenchSmallMatchesReference(t *testing.T) {
	cfg := mustLoad(t, LoadOptions{Files: []string{"../../configs/bench-small.yaml"}})
	res, err := Resolve(cfg)
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNetwork(res.Network)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := model.NewNetwork(model.BenchSmallConfig())
	if err != nil {
		t.Fatal(err)
	}
	n, err := net.NumParams()
	if err != nil || n != model.BenchSmallParams {
		t.Errorf("bench-small.yaml has %d parameters (%v), want %d", n, err, model.BenchSmallParams)
	}
	got, want := paramShapes(t, net), paramShapes(t, ref)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("parameters differ from model.BenchSmallConfig:\nconfig:\n%s\nreference:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The settings that do not show in the parameters.
	for name, m := range res.Network.Modalities {
		r := model.BenchSmallConfig().Modalities[name]
		e, re := m.Encoder, r.Encoder
		if e.NumSpikeSteps != re.NumSpikeSteps || e.Beta != re.Beta || e.Threshold != re.Threshold || e.Reset != re.Reset ||
			e.Backbone != re.Backbone || e.CfCMode != re.CfCMode || e.SpikingLayers != re.SpikingLayers {
			t.Errorf("%s encoder %+v, reference %+v", name, e, re)
		}
		if m.Preprocessor.Text.PadID != r.Preprocessor.Text.PadID || m.Preprocessor.Text.Pooling != r.Preprocessor.Text.Pooling {
			t.Errorf("%s text preprocessing %+v, reference %+v", name, m.Preprocessor.Text, r.Preprocessor.Text)
		}
	}
	if f := res.Network.Fusion; f.Strategy != "hybrid" || f.Dim != 128 || f.Heads != 4 || res.Network.OutputDim != 10 {
		t.Errorf("fusion %+v output %d", f, res.Network.OutputDim)
	}
}

func TestResolve(t *testing.T) {
	cfg := mustLoad(t, LoadOptions{Files: []string{"../../configs/quickstart.yaml"}})
	if _, err := Resolve(cfg); err == nil || !strings.Contains(err.Error(), "model.output_dim: is 0") ||
		!strings.Contains(err.Error(), "model.modalities.text.preprocessing.vocab_size: is 0") {
		t.Errorf("Resolve before SetDataSizes: %v", err)
	}
	cfg.SetDataSizes(10, map[string]int{"text": 31})
	res, err := Resolve(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Network.OutputDim != 10 || res.Network.Modalities["text"].Preprocessor.Text.VocabSize != 31 {
		t.Errorf("data sizes not applied: %d, %d", res.Network.OutputDim, res.Network.Modalities["text"].Preprocessor.Text.VocabSize)
	}
	if res.Run.Device != "auto" || res.Train.Seed != 1 || res.Train.Epochs != 25 || res.Train.Schedule.Kind != "cosine" {
		t.Errorf("resolved run %+v train %+v", res.Run, res.Train)
	}
	p := res.Data
	if p.SplitColumn != "split" || p.Train.Columns["image"].Modality != "vision" || p.Train.Columns["text"].Text.Tokenizer != "char" ||
		p.Train.Columns["audio"].Audio.Length != 6400 || p.Val.Path != "" {
		t.Errorf("data plan %+v", p)
	}
	// Whether cuda can run is the command's question (openDevice), not the
	// config's: the checkpoint of a GPU run resolves anywhere.
	cfg.Run.Device = "cuda"
	if res, err := Resolve(cfg); err != nil || res.Run.Device != "cuda" {
		t.Errorf("cuda: %v, resolved %q", err, res.Run.Device)
	}
}
