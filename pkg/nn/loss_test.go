package nn_test

import (
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

func TestCrossEntropyValue(t *testing.T) {
	// PyTorch: cross_entropy([[1,2,3],[1,1,1]], [2,0]) = 0.7531091265562451
	// (= (−log softmax([1,2,3])[2] + log 3)/2). Row 3 has logits that
	// overflow a naive exp: its loss is exactly 1000 for label 1.
	cases := []struct {
		logits []float64
		labels []int
		want   float64
	}{
		{[]float64{1, 2, 3, 1, 1, 1}, []int{2, 0}, 0.7531091265562451},
		{[]float64{1000, 0}, []int{0}, 0},
		{[]float64{1000, 0}, []int{1}, 1000},
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, tc := range cases {
			b := len(tc.labels)
			res := coreMustRun(t, dt, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
				l, err := nn.CrossEntropy(coreInput(c, "logits", tc.logits, b, len(tc.logits)/b), coreIDs(c, "y", tc.labels, b))
				if err == nil && !l.IsScalar() {
					t.Errorf("loss shape %v, want a scalar", l.Shape())
				}
				return coreGraph{outs: G.Nodes{l}}, err
			})
			coreClose(t, "cross entropy "+dt.String(), res.vals[0], []float64{tc.want}, 1e-6, 1e-6)
		}
	}
}

func TestCrossEntropyGradients(t *testing.T) {
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		x := coreInput(c, "x", nntest.RandInput(51, 1, 4, 3).Data().([]float64), 4, 3)
		logits, err := nn.Linear{In: 3, Out: 5}.Forward(c.Sub("head"), x)
		if err != nil {
			return nil, nil, err
		}
		l, err := nn.CrossEntropy(logits, coreIDs(c, "y", []int{4, 0, 2, 4}, 4))
		return l, G.Nodes{x}, err
	}, nntest.Options{Entries: 12, MinChecked: 3})
}

func TestCrossEntropySeq(t *testing.T) {
	// [B=2, L=3, V=4] with two tokens ignored (−100): the loss equals
	// CrossEntropy over the four remaining rows.
	logits := nntest.RandInput(52, 2, 2, 3, 4).Data().([]float64)
	labels := []int{3, -100, 0, 1, 2, -100}
	var kept []float64
	var keptLabels []int
	for p, y := range labels {
		if y != -100 {
			kept = append(kept, logits[4*p:4*p+4]...)
			keptLabels = append(keptLabels, y)
		}
	}
	res := coreMustRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
		seq, err := nn.CrossEntropySeq(coreInput(c, "logits", logits, 2, 3, 4), coreIDs(c, "y", labels, 2, 3), -100)
		if err != nil {
			return coreGraph{}, err
		}
		flat, err := nn.CrossEntropy(coreInput(c, "kept", kept, 4, 4), coreIDs(c, "ky", keptLabels, 4))
		return coreGraph{outs: G.Nodes{seq, flat}}, err
	})
	coreClose(t, "sequence loss", res.vals[0], res.vals[1], 1e-15, 0)
	if res.vals[0][0] <= 0 {
		t.Errorf("loss %g, want positive", res.vals[0][0])
	}

	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		x := coreInput(c, "x", logits, 2, 3, 4)
		l, err := nn.CrossEntropySeq(x, coreIDs(c, "y", labels, 2, 3), -100)
		return l, G.Nodes{x}, err
	}, nntest.Options{Entries: 24, MinChecked: 1})

	// Every token ignored: loss 0 and zero gradient, not NaN.
	res = coreMustRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
		x := coreInput(c, "x", logits[:8], 1, 2, 4)
		l, err := nn.CrossEntropySeq(x, coreIDs(c, "y", []int{0, 0}, 1, 2), 0)
		return coreGraph{outs: G.Nodes{l}, loss: l, wrt: G.Nodes{x}}, err
	})
	coreClose(t, "all-ignored loss", res.vals[0], []float64{0}, 0, 0)
	coreClose(t, "all-ignored gradient", res.grads[0], make([]float64, 8), 0, 0)
}

func TestCrossEntropyLabelOutOfRange(t *testing.T) {
	_, err := coreRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
		l, err := nn.CrossEntropy(coreInput(c, "x", make([]float64, 6), 2, 3), coreIDs(c, "y", []int{0, 5}, 2))
		return coreGraph{outs: G.Nodes{l}}, err
	})
	coreErrContains(t, err, "label 5", "position [1]", "[0, 3)")
	_, err = coreRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
		l, err := nn.CrossEntropySeq(coreInput(c, "x", make([]float64, 12), 2, 2, 3), coreIDs(c, "y", []int{0, -100, -1, 2}, 2, 2), -100)
		return coreGraph{outs: G.Nodes{l}}, err
	})
	coreErrContains(t, err, "label -1", "position [1 0]", "[0, 3)")
}

func TestCrossEntropyShapeErrors(t *testing.T) {
	store, _ := nn.NewStore(tensor.Float64, 1)
	c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{})
	x := coreInput(c, "x", nil, 2, 3)
	_, err := nn.CrossEntropy(x, coreIDs(c, "y3", []int{0, 1, 2}, 3))
	coreErrContains(t, err, "logits [batch, classes]", "int labels [batch]", "(3)")
	_, err = nn.CrossEntropy(x, coreInput(c, "yf", nil, 2))
	coreErrContains(t, err, "labels float64 (2)")
	_, err = nn.CrossEntropySeq(x, coreIDs(c, "y2", []int{0, 1}, 2), -100)
	coreErrContains(t, err, "logits [batch, seq, vocab]")
}

func TestMSE(t *testing.T) {
	// ((1−0)² + (−2−1)² + (0.5−0.5)² + (3−1)²)/4 = (1+9+0+4)/4 = 3.5
	pred, target := []float64{1, -2, 0.5, 3}, []float64{0, 1, 0.5, 1}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		res := coreMustRun(t, dt, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
			p := coreInput(c, "p", pred, 2, 2)
			l, err := nn.MSE(p, coreInput(c, "t", target, 2, 2))
			return coreGraph{outs: G.Nodes{l}, loss: l, wrt: G.Nodes{p}}, err
		})
		coreClose(t, "mse", res.vals[0], []float64{3.5}, 1e-7, 0)
		// d/dpred = 2(pred − target)/4
		coreClose(t, "mse gradient", res.grads[0], []float64{0.5, -1.5, 0, 1}, 1e-7, 0)
	}
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		p := coreInput(c, "p", nntest.RandInput(61, 1, 3, 4).Data().([]float64), 3, 4)
		tg := coreInput(c, "t", nntest.RandInput(62, 1, 3, 4).Data().([]float64), 3, 4)
		l, err := nn.MSE(p, tg)
		return l, G.Nodes{p, tg}, err
	}, nntest.Options{Entries: 12, MinChecked: 2})

	store, _ := nn.NewStore(tensor.Float64, 1)
	c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{})
	_, err := nn.MSE(coreInput(c, "a", nil, 2, 3), coreInput(c, "b", nil, 3, 2))
	coreErrContains(t, err, "same shape", "(2, 3)", "(3, 2)")
}
