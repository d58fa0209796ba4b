package train

import (
	"math"
	"testing"
)

func TestClassificationMetrics(t *testing.T) {
	// 3 classes; hand-computed: per-class F1 = 2/3 (c0: tp1 fp0 fn1),
	// 2/3 (c1: tp1 fp1 fn0), 1 (c2: tp1) → macro 7/9.
	labels := []int{0, 0, 1, 2}
	scores := []float64{
		0.9, 0.05, 0.05,
		0.2, 0.7, 0.1,
		0.1, 0.8, 0.1,
		0.0, 0.3, 0.7,
	}
	pred, err := ArgMax(scores, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 1, 2}; !equalInts(pred, want) {
		t.Fatalf("argmax %v, want %v", pred, want)
	}
	acc, _ := Accuracy(pred, labels)
	if acc != 0.75 {
		t.Errorf("accuracy %g, want 0.75", acc)
	}
	f1, _ := MacroF1(pred, labels, 3)
	if math.Abs(f1-7.0/9) > 1e-12 {
		t.Errorf("macro-F1 %g, want %g", f1, 7.0/9)
	}
	top2, _ := TopK(scores, 3, labels, 2)
	if top2 != 1 {
		t.Errorf("top-2 %g, want 1", top2)
	}
	top1, _ := TopK(scores, 3, labels, 1)
	if top1 != acc {
		t.Errorf("top-1 %g != accuracy %g", top1, acc)
	}
	if _, err := Confusion([]int{0}, []int{5}, 3); err == nil {
		t.Error("label outside range accepted")
	}
}

func TestRegressionMetrics(t *testing.T) {
	mse, _ := MSE([]float64{1, 2, 3}, []float64{1, 4, 0})
	if mse != (0+4+9)/3.0 {
		t.Errorf("mse %g", mse)
	}
	mae, _ := MAE([]float64{1, 2, 3}, []float64{1, 4, 0})
	if mae != 5/3.0 {
		t.Errorf("mae %g", mae)
	}
	if _, err := MSE([]float64{1}, nil); err == nil {
		t.Error("length mismatch accepted")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
