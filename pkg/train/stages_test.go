package train

import (
	"context"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// TestStagesFreezeAndUnfreeze: stage 1 freezes the fusion and the head
// (they get no update, bit for bit, while the encoders train); stage 2
// trains only the head; stage 3 (epochs 0: until the end) trains all at a
// tenth of the rate. Epoch reports carry the stage names, and the store is
// left unfrozen.
func TestStagesFreezeAndUnfreeze(t *testing.T) {
	tr := newSynth(16, 4)
	cfg := baseConfig()
	cfg.Epochs = 4
	cfg.Stages = []StageConfig{
		{Name: "encoders", Epochs: 1, Freeze: []string{"fusion", "head"}},
		{Name: "head", Epochs: 1, Train: []string{"head"}},
		{Name: "finetune", LRScale: 0.1},
	}
	store := newStore(t, tensor.Float32)
	var snaps []map[string][]float64
	rec := newRecorder()
	h := HookFuncs{EpochEnd: func(EpochInfo) error { snaps = append(snaps, weights(t, store)); return nil }}
	tt, err := New(tinyNet(t, netOpts{}), store, tr, nil, cfg, Options{Hooks: []Hook{h, rec}})
	if err != nil {
		t.Fatal(err)
	}
	w0 := weights(t, store)
	if _, err := tt.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	under := func(prefixes ...string) func(string) bool {
		return func(n string) bool {
			for _, p := range prefixes {
				if strings.HasPrefix(n, p+".") {
					return true
				}
			}
			return false
		}
	}
	not := func(f func(string) bool) func(string) bool { return func(n string) bool { return !f(n) } }
	moved := func(a, b map[string][]float64, keep func(string) bool) bool {
		d, _ := maxDiff(a, b, keep)
		return d != 0
	}
	if moved(w0, snaps[0], under("fusion", "head")) || !moved(w0, snaps[0], under("a", "b")) {
		t.Error("stage 1: fusion/head must stay fixed while the encoders train")
	}
	if moved(snaps[0], snaps[1], not(under("head"))) || !moved(snaps[0], snaps[1], under("head")) {
		t.Error("stage 2: only the head may train")
	}
	if !moved(snaps[1], snaps[2], under("fusion")) || !moved(snaps[1], snaps[2], under("a")) {
		t.Error("stage 3: everything must train")
	}
	var names []string
	for _, e := range rec.epochs {
		names = append(names, e.Stage)
	}
	if got := strings.Join(names, ","); got != "encoders,head,finetune,finetune" {
		t.Errorf("stages %s", got)
	}
	if lr := rec.epochs[3].LR; lr != cfg.LR*0.1 {
		t.Errorf("finetune lr %g, want %g", lr, cfg.LR*0.1)
	}
	for _, p := range store.Params() {
		if p.Frozen {
			t.Fatalf("%s still frozen after the run", p.Name)
		}
	}
}

// TestStageErrors: a misspelt prefix or a stage freezing everything is an
// error naming the stage.
func TestStageErrors(t *testing.T) {
	tr := newSynth(8, 4)
	cfg := baseConfig()
	cfg.Stages = []StageConfig{{Name: "x", Epochs: 1, Freeze: []string{"visoin"}}}
	_, err := New(tinyNet(t, netOpts{}), newStore(t, tensor.Float32), tr, nil, cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), `train.stages[0] (x).freeze: prefix "visoin"`) || !strings.Contains(err.Error(), "a, b, fusion, head") {
		t.Errorf("misspelt prefix: %v", err)
	}
	cfg.Stages = []StageConfig{{Name: "none", Epochs: 1, Freeze: []string{"a", "b", "fusion", "head"}}}
	tt, err := New(tinyNet(t, netOpts{}), newStore(t, tensor.Float32), tr, nil, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tt.Fit(context.Background()); err == nil || !strings.Contains(err.Error(), "every parameter is frozen") {
		t.Errorf("all frozen: %v", err)
	}
}

func TestStagePlanEpochs(t *testing.T) {
	p := newStagePlan([]StageConfig{{Epochs: 2}, {Name: "b", Epochs: 1}, {Name: "c"}})
	for e, want := range []string{"stage1", "stage1", "b", "c", "c"} {
		if got := p.at(e).name; got != want {
			t.Errorf("epoch %d: stage %s, want %s", e, got, want)
		}
	}
	if newStagePlan(nil).configured() || !p.configured() {
		t.Error("configured()")
	}
}
