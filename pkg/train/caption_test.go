package train

import (
	"math"
	"testing"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// classCaptions are the label tokens of each class of synth: <bos> (2)
// words <eos> (3) padding (0) over a vocabulary of 9. Every caption has
// at least 4 words: BLEU-4 of shorter ones is 0 (no 4-gram).
var classCaptions = [][]int{
	{2, 4, 5, 6, 7, 3, 0},
	{2, 4, 6, 5, 8, 7, 3},
	{2, 5, 4, 8, 6, 3, 0},
}

// captionSynth is synth with each class's caption as the label.
type captionSynth struct{ *synth }

func (s captionSynth) Get(i int) (data.Sample, error) {
	smp, err := s.synth.Get(i)
	if err != nil {
		return smp, err
	}
	smp.Label = data.Label{Class: data.NoClass, Tokens: append([]int(nil), classCaptions[smp.Label.Class]...)}
	return smp, nil
}

// captionNet is tinyNet with the caption head (and a gentler surrogate,
// which keeps the tiny encoders trainable at this learning rate).
func captionNet(t testing.TB) *model.Network {
	t.Helper()
	enc := model.EncoderConfig{EncoderDim: 8, SpikingUnits: 8, SpikingLayers: 1, NumSpikeSteps: 2, Threshold: 0.5,
		LiquidUnits: 8, BackboneUnits: 8, Surrogate: nn.Surrogate{Slope: 5}}
	net, err := model.NewNetwork(model.NetworkConfig{
		Modalities: map[string]model.ModalityConfig{
			"a": {Preprocessor: modality.Config{Kind: modality.KindMLP, OutputDim: 8, MLP: modality.MLPConfig{InputDim: 4}}, Encoder: enc},
			"b": {Preprocessor: modality.Config{Kind: modality.KindMLP, OutputDim: 8, MLP: modality.MLPConfig{InputDim: 3}}, Encoder: enc},
		},
		Fusion: fusion.Config{Strategy: fusion.Early, Dim: 8}, Head: model.HeadCaption, OutputDim: 9, TokenLen: 7,
		Caption: model.CaptionConfig{EmbedDim: 8, Units: 16},
	})
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// TestCaptionTrainEvaluate trains a caption head with the trainer (teacher
// forcing through batchFeed and the token metrics), then Evaluate
// generates every caption: the learned captions match the references, so
// BLEU-4 is 1, and the shifted token accuracy is 1; before training BLEU
// is below 0.5.
func TestCaptionTrainEvaluate(t *testing.T) {
	net := captionNet(t)
	store := newStore(t, tensor.Float32)
	val := captionSynth{newSynth(21, 2)}
	before, err := Evaluate(net, newStoreFor(t, net), val, 8, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig()
	cfg.Epochs, cfg.BatchSize, cfg.LR = 25, 8, 1e-2
	res := fit(t, net, store, captionSynth{newSynth(48, 1)}, nil, cfg, Options{})
	r, err := Evaluate(net, store, val, 8, EvalOptions{Ablate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("train loss %.4f (token accuracy %.3f); eval loss %.4f, token accuracy %.3f, BLEU-4 %.3f (before training %.3f); ablation %v",
		res.Last.Train.Loss, res.Last.Train.Accuracy, r.Loss, r.Accuracy, r.BLEU4, before.BLEU4, r.PerModalityAblation)
	if r.N != 21 || len(r.Captions) != 21 || r.BLEU == nil || r.BLEU.Score != r.BLEU4 {
		t.Fatalf("caption result: n %d, %d captions, bleu %+v", r.N, len(r.Captions), r.BLEU)
	}
	for i, c := range r.Captions {
		smp, _ := val.Get(c.Index)
		want := classCaptions[val.samples[c.Index].Label.Class]
		if ref := want[1:index(want, 3)]; !equalIDs(c.Reference, ref) {
			t.Fatalf("caption %d (sample %d): reference %v, want %v (label %v)", i, c.Index, c.Reference, ref, smp.Label.Tokens)
		}
	}
	if r.BLEU4 != 1 || r.Accuracy != 1 {
		t.Errorf("after training: BLEU-4 %v, token accuracy %v; want 1 and 1", r.BLEU4, r.Accuracy)
	}
	if !(before.BLEU4 < 0.5) || math.IsNaN(before.Loss) {
		t.Errorf("before training: BLEU-4 %v, loss %v", before.BLEU4, before.Loss)
	}
	if r.PerModalityAblation["a"] > 0.9 {
		t.Errorf("removing the informative modality a leaves token accuracy %v", r.PerModalityAblation["a"])
	}
}

func index(x []int, v int) int {
	for i, e := range x {
		if e == v {
			return i
		}
	}
	return len(x)
}
