package modality_test

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// seqConfigs are small audio and video preprocessors with per-step
// features, and their input shapes.
func seqConfigs() []struct {
	name  string
	cfg   modality.Config
	shape []int
	steps int
} {
	audio := modality.Config{Kind: "audio", OutputDim: 5, Audio: modality.AudioConfig{
		SampleRate: 8000, Samples: 640, NFFT: 64, Hop: 32, NMels: 8, Channels: []int{4, 6}}}
	video := func(temporal string) modality.Config {
		return modality.Config{Kind: "video", OutputDim: 5, Video: modality.VideoConfig{
			Frames: 3, Temporal: temporal, FrameDim: 4,
			Frame: modality.VisionConfig{InChannels: 1, Height: 8, Width: 8, Channels: []int{3}}}}
	}
	// 640 samples, hop 32, centred: 21 frames; two pools of 2 leave 5.
	return []struct {
		name  string
		cfg   modality.Config
		shape []int
		steps int
	}{
		{"audio mel", audio, []int{2, 640}, 5},
		{"video conv", video("conv"), []int{2, 3, 1, 8, 8}, 3},
		{"video mean", video("mean"), []int{2, 3, 1, 8, 8}, 3},
	}
}

// TestSequenceMeanIsForward checks that the per-step features have shape
// [B, steps, out], an all-ones mask, and average over the steps to
// Forward's output with the same parameters.
func TestSequenceMeanIsForward(t *testing.T) {
	for _, tc := range seqConfigs() {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, tc.cfg).(modality.SequencePreprocessor)
			rng := rand.New(rand.NewSource(3))
			vals := make([]float64, prodInts(tc.shape))
			for i := range vals {
				vals[i] = rng.NormFloat64()
			}
			want := forward(t, p, tensor.Float64, false, tc.shape, vals, nil, nil)
			g := G.NewGraph()
			c := nn.NewCtx(g, want.store, nn.CtxOptions{})
			x := inputNode(g, tensor.Float64, tc.shape, vals, nil)
			seq, mask, err := p.ForwardSequence(c.Sub("pre"), x)
			if err != nil {
				t.Fatal(err)
			}
			if s := seq.Shape(); !s.Eq(tensor.Shape{tc.shape[0], tc.steps, 5}) {
				t.Fatalf("sequence shape %v, want [%d %d 5]", s, tc.shape[0], tc.steps)
			}
			vm := G.NewTapeMachine(g)
			defer vm.Close()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			got, _ := nn.ToFloat64(seq.Value().(tensor.Tensor))
			m, _ := nn.ToFloat64(mask.Value().(tensor.Tensor))
			for i, v := range m {
				if v != 1 {
					t.Fatalf("mask[%d] = %g, want 1", i, v)
				}
			}
			b, l := tc.shape[0], tc.steps
			for bi := 0; bi < b; bi++ {
				for k := 0; k < 5; k++ {
					mean := 0.0
					for s := 0; s < l; s++ {
						mean += got[(bi*l+s)*5+k] / float64(l)
					}
					if w := want.y[bi*5+k]; math.Abs(mean-w) > 1e-9*(1+math.Abs(w)) {
						t.Errorf("sample %d feature %d: mean over steps %g, Forward %g", bi, k, mean, w)
					}
				}
			}
		})
	}
}

func TestSequenceGradients(t *testing.T) {
	tc := seqConfigs()[1] // video conv: swap, conv over frames, swap, per-frame fc
	p := mustNew(t, tc.cfg).(modality.SequencePreprocessor)
	vals, _ := nn.ToFloat64(nntest.RandInput(5, 1, tc.shape...))
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		x := inputNode(c.Graph(), tensor.Float64, tc.shape, vals, nil)
		seq, _, err := p.ForwardSequence(c.Sub("pre"), x)
		if err != nil {
			return nil, nil, err
		}
		loss, err := nntest.WeightedSum(seq, 7)
		return loss, G.Nodes{x}, err
	}, nntest.Options{Train: true, Entries: 3, MinChecked: 5})
}

func TestSequenceRejectsPooledVideo(t *testing.T) {
	for _, arch := range []string{"conv3d", "liquid"} {
		cfg := seqConfigs()[1].cfg
		if arch == "conv3d" {
			cfg.Architecture = "conv3d"
		} else {
			cfg.Video.Temporal = "liquid"
			cfg.Video.Cell = noCell{}
		}
		p := mustNew(t, cfg).(modality.SequencePreprocessor)
		store, _ := nn.NewStore(tensor.Float64, 1)
		g := G.NewGraph()
		x := inputNode(g, tensor.Float64, []int{1, 3, 1, 8, 8}, make([]float64, 192), nil)
		_, _, err := p.ForwardSequence(nn.NewCtx(g, store, nn.CtxOptions{}).Sub("video"), x)
		if err == nil || !strings.Contains(err.Error(), "per-frame features need architecture frames") {
			t.Errorf("%s: error %v, want the per-frame features message", arch, err)
		}
	}
}

// noCell is a TemporalCell that is never run.
type noCell struct{}

func (noCell) Run(c *nn.Ctx, steps []*G.Node) (*G.Node, error) { return steps[0], nil }

func prodInts(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}
