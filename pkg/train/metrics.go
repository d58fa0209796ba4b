package train

import (
	"fmt"
	"math"
	"sort"
)

// ArgMax returns, for each row of a row-major [rows, cols] matrix, the
// index of its largest element (the first one on ties).
func ArgMax(scores []float64, cols int) ([]int, error) {
	if cols <= 0 || len(scores)%cols != 0 {
		return nil, fmt.Errorf("argmax: %d scores do not form rows of %d", len(scores), cols)
	}
	out := make([]int, len(scores)/cols)
	for r := range out {
		row := scores[r*cols : (r+1)*cols]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		out[r] = best
	}
	return out, nil
}

// Accuracy returns the fraction of pred equal to labels.
func Accuracy(pred, labels []int) (float64, error) {
	if len(pred) != len(labels) || len(pred) == 0 {
		return 0, fmt.Errorf("accuracy: %d predictions for %d labels", len(pred), len(labels))
	}
	ok := 0
	for i := range pred {
		if pred[i] == labels[i] {
			ok++
		}
	}
	return float64(ok) / float64(len(pred)), nil
}

// TopK returns the fraction of rows of scores [rows, cols] whose label is
// among the k highest scores (ties broken by lower index).
func TopK(scores []float64, cols int, labels []int, k int) (float64, error) {
	if cols <= 0 || len(scores) != len(labels)*cols || len(labels) == 0 {
		return 0, fmt.Errorf("top-k: %d scores for %d labels × %d classes", len(scores), len(labels), cols)
	}
	if k <= 0 {
		return 0, fmt.Errorf("top-k: k must be positive, got %d", k)
	}
	hit := 0
	idx := make([]int, cols)
	for r, y := range labels {
		row := scores[r*cols : (r+1)*cols]
		for j := range idx {
			idx[j] = j
		}
		sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
		for _, j := range idx[:min(k, cols)] {
			if j == y {
				hit++
				break
			}
		}
	}
	return float64(hit) / float64(len(labels)), nil
}

// Confusion returns the [classes][classes] confusion matrix: rows are true
// labels, columns predictions.
func Confusion(pred, labels []int, classes int) ([][]int, error) {
	if len(pred) != len(labels) {
		return nil, fmt.Errorf("confusion: %d predictions for %d labels", len(pred), len(labels))
	}
	m := make([][]int, classes)
	for i := range m {
		m[i] = make([]int, classes)
	}
	for i := range pred {
		if labels[i] < 0 || labels[i] >= classes || pred[i] < 0 || pred[i] >= classes {
			return nil, fmt.Errorf("confusion: row %d has label %d / prediction %d outside [0,%d)", i, labels[i], pred[i], classes)
		}
		m[labels[i]][pred[i]]++
	}
	return m, nil
}

// MacroF1 is the unweighted mean over classes of per-class F1 (sklearn's
// f1_score(average="macro")); a class with no true and no predicted samples
// counts as F1 = 0, as sklearn's zero_division=0.
func MacroF1(pred, labels []int, classes int) (float64, error) {
	m, err := Confusion(pred, labels, classes)
	if err != nil {
		return 0, err
	}
	return MacroF1FromConfusion(m), nil
}

// MacroF1FromConfusion is MacroF1 computed from a confusion matrix (rows
// true labels, columns predictions), so metrics can be accumulated batch by
// batch.
func MacroF1FromConfusion(m [][]int) float64 {
	classes := len(m)
	if classes == 0 {
		return 0
	}
	sum := 0.0
	for c := 0; c < classes; c++ {
		tp := m[c][c]
		fp, fn := 0, 0
		for k := 0; k < classes; k++ {
			if k != c {
				fp += m[k][c]
				fn += m[c][k]
			}
		}
		if d := 2*tp + fp + fn; d > 0 {
			sum += 2 * float64(tp) / float64(d)
		}
	}
	return sum / float64(classes)
}

// MSE and MAE compare regression outputs with targets element by element.
func MSE(pred, target []float64) (float64, error) {
	return meanOf(pred, target, func(d float64) float64 { return d * d })
}

// MAE is the mean absolute error.
func MAE(pred, target []float64) (float64, error) {
	return meanOf(pred, target, math.Abs)
}

func meanOf(pred, target []float64, f func(float64) float64) (float64, error) {
	if len(pred) != len(target) || len(pred) == 0 {
		return 0, fmt.Errorf("regression metric: %d predictions for %d targets", len(pred), len(target))
	}
	s := 0.0
	for i := range pred {
		s += f(pred[i] - target[i])
	}
	return s / float64(len(pred)), nil
}
