package train

import (
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/model"
)

// TestEvaluate: after training, Evaluate reproduces the trainer's last
// validation loss exactly (same batch size), gives the same metrics with
// a batch size that leaves a remainder of 1 (every sample counted once),
// fills the confusion matrix, and the ablation shows that the network
// reads modality "a" (the informative one) and not "b" (noise). The
// network trains with modality dropout on "b", so its missing embedding is
// a learned stand-in.
func TestEvaluate(t *testing.T) {
	net := tinyNet(t, netOpts{noisy: true})
	store := newStore(t, tensor.Float32)
	cfg := baseConfig()
	cfg.Epochs, cfg.BatchSize, cfg.LR = 8, 8, 2e-2
	val := newSynth(45, 2)
	res := fit(t, net, store, newSynth(96, 1), val, cfg, Options{})

	same, err := Evaluate(net, store, val, 8, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if same.Loss != res.Last.Val.Loss || same.Accuracy != res.Last.Val.Accuracy {
		t.Errorf("Evaluate loss %v acc %v, trainer's validation %v %v", same.Loss, same.Accuracy, res.Last.Val.Loss, res.Last.Val.Accuracy)
	}
	r, err := Evaluate(net, store, val, 4, EvalOptions{Ablate: true, Workers: 2}) // 11 batches of 4 and one of 1
	if err != nil {
		t.Fatal(err)
	}
	if r.N != 45 || math.Abs(r.Loss-same.Loss) > 1e-6 || r.Accuracy != same.Accuracy || r.MacroF1 != same.MacroF1 {
		t.Errorf("batch 4: n %d loss %v acc %v f1 %v; batch 8: n %d loss %v acc %v f1 %v", r.N, r.Loss, r.Accuracy, r.MacroF1, same.N, same.Loss, same.Accuracy, same.MacroF1)
	}
	total, diag := 0, 0
	for i, row := range r.Confusion {
		for j, v := range row {
			total += v
			if i == j {
				diag += v
			}
		}
	}
	if len(r.Confusion) != 3 || total != 45 || float64(diag)/45 != r.Accuracy {
		t.Errorf("confusion %v (total %d) does not match accuracy %v", r.Confusion, total, r.Accuracy)
	}
	if r.Top5 != 1 {
		t.Errorf("top-5 of 3 classes is %v, want 1", r.Top5)
	}
	t.Logf("accuracy %.3f; without a %.3f, without b %.3f", r.Accuracy, r.PerModalityAblation["a"], r.PerModalityAblation["b"])
	if r.Accuracy < 0.9 || r.PerModalityAblation["a"] > 0.6 || r.PerModalityAblation["b"] < r.Accuracy-0.1 {
		t.Errorf("ablation %v: removing a must hurt, removing b must not (accuracy %v)", r.PerModalityAblation, r.Accuracy)
	}
}

// TestEvaluateRegression: MSE and MAE of a regression head, checked against
// the loss (the head's loss is the MSE).
func TestEvaluateRegression(t *testing.T) {
	net := tinyNet(t, netOpts{regression: true})
	ds := newSynth(10, 3)
	ds.regress = true
	r, err := Evaluate(net, newStoreFor(t, net), ds, 4, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.N != 10 || r.MSE <= 0 || math.Abs(r.MSE-r.Loss) > 1e-6 || r.MAE <= 0 || r.Accuracy != 0 || r.Confusion != nil {
		t.Errorf("regression result %+v", r)
	}
}

// TestBatchFeedErrors: every mismatch between a batch and the network
// names the modality (or the labels) and what is expected.
func TestBatchFeedErrors(t *testing.T) {
	net := tinyNet(t, netOpts{})
	eg, err := buildEvalGraph(net, newStoreFor(t, net), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer eg.close()
	collate := func(edit func(*data.Sample)) data.Batch {
		ds := newSynth(2, 1)
		var ss []data.Sample
		for i := range 2 {
			s, _ := ds.Get(i)
			s.Inputs = map[string]data.Tensor{"a": s.Inputs["a"].Clone(), "b": s.Inputs["b"].Clone()}
			edit(&s)
			ss = append(ss, s)
		}
		b, err := data.Collate(ss)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name string
		edit func(*data.Sample)
		want string
	}{
		{"missing modality", func(s *data.Sample) { delete(s.Inputs, "b"); s.Present = nil }, `modality "b": the batch has no input for it`},
		{"wrong shape", func(s *data.Sample) { s.Inputs["a"] = data.Tensor{Shape: []int{5}, Data: make([]float32, 5)} }, `modality "a": batch input has shape [2 5], the network expects [2 4]`},
		{"no labels", func(s *data.Sample) { s.Label = data.Label{Class: data.NoClass} }, "labels: the samples carry no class label"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := batchFeed(eg.mg, model.HeadClassification, collate(c.edit), "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	// Presence: an absent modality becomes a 0 in the presence input.
	f, err := batchFeed(eg.mg, model.HeadClassification, collate(func(s *data.Sample) {
		if s.Index == 1 {
			s.Present["b"] = false
		}
	}), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Present["b"].Data().([]float32); got[0] != 1 || got[1] != 0 {
		t.Errorf("presence of b %v, want [1 0]", got)
	}
}
