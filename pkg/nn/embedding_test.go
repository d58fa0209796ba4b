package nn_test

import (
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

func TestEmbeddingLookup(t *testing.T) {
	// Row i of the table is [10i, 10i+1, 10i+2].
	table := coreSeq(4*3, func(i int) float64 { return float64(10*(i/3) + i%3) })
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		var shape tensor.Shape
		res := coreMustRun(t, dt, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
			y, err := nn.Embedding{Num: 4, Dim: 3}.Forward(c.Sub("emb"), coreIDs(c, "ids", []int{1, 3, 0, 1}, 2, 2))
			if err != nil {
				return coreGraph{}, err
			}
			coreSetParam(t, c, "emb.weight", table)
			shape = y.Shape()
			return coreGraph{outs: G.Nodes{y}}, nil
		})
		if !shape.Eq(tensor.Shape{2, 2, 3}) {
			t.Errorf("output shape %v, want (2, 2, 3)", shape)
		}
		coreClose(t, "lookup", res.vals[0], []float64{10, 11, 12, 30, 31, 32, 0, 1, 2, 10, 11, 12}, 0, 0)
	}
}

func TestEmbeddingGradients(t *testing.T) {
	// Repeated ids check that the backward accumulates (scatter-add);
	// every table entry is compared, including rows that are never used.
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		y, err := nn.Embedding{Num: 5, Dim: 3}.Forward(c.Sub("emb"), coreIDs(c, "ids", []int{1, 3, 1, 4, 1, 0}, 2, 3))
		if err != nil {
			return nil, nil, err
		}
		l, err := nntest.WeightedSum(y, 31)
		return l, nil, err
	}, nntest.Options{Entries: 15, MinChecked: 1})
}

func TestEmbeddingPadding(t *testing.T) {
	ids := []int{2, 0, 2, 1}
	res := coreMustRun(t, tensor.Float64, nn.CtxOptions{Train: true}, func(c *nn.Ctx) (coreGraph, error) {
		y, err := nn.Embedding{Num: 3, Dim: 2, Padding: true, PaddingIdx: 2}.Forward(c.Sub("emb"), coreIDs(c, "ids", ids, 2, 2))
		if err != nil {
			return coreGraph{}, err
		}
		l, err := nntest.WeightedSum(y, 32)
		return coreGraph{outs: G.Nodes{y}, loss: l, wrt: c.Learnables()}, err
	})
	table := res.store.Lookup("emb.weight").Value.Data().([]float64)
	if table[4] != 0 || table[5] != 0 || table[0] == 0 {
		t.Errorf("initial table %v: want the padding row 2 zero and the others Normal(0,1)", table)
	}
	y := res.vals[0]
	if y[0] != 0 || y[1] != 0 || y[4] != 0 || y[5] != 0 {
		t.Errorf("padding positions look up %v, want zeros", y)
	}
	g := res.grads[0]
	if g[4] != 0 || g[5] != 0 {
		t.Errorf("padding row gradient %v, want 0", g[4:6])
	}
	if g[0] == 0 || g[2] == 0 {
		t.Errorf("rows 0 and 1 have gradient %v, want non-zero", g[:4])
	}
}

func TestEmbeddingOutOfRange(t *testing.T) {
	_, err := coreRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
		y, err := nn.Embedding{Num: 5, Dim: 2}.Forward(c.Sub("text").Sub("embed"), coreIDs(c, "ids", []int{1, 2, 3, 4, 7, 0}, 2, 3))
		return coreGraph{outs: G.Nodes{y}}, err
	})
	coreErrContains(t, err, "text.embed", "token id 7", "[1 1]", "[0, 5)")
	_, err = coreRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
		y, err := nn.Embedding{Num: 5, Dim: 2}.Forward(c, coreIDs(c, "ids", []int{-1}, 1, 1))
		return coreGraph{outs: G.Nodes{y}}, err
	})
	coreErrContains(t, err, "token id -1")
}

func TestEmbeddingErrors(t *testing.T) {
	store, _ := nn.NewStore(tensor.Float64, 1)
	c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}).Sub("tok")
	_, err := nn.Embedding{Num: 5, Dim: 2}.Forward(c, coreInput(c, "x", nil, 2, 3))
	coreErrContains(t, err, "tok", "dtype int")
	ids := coreIDs(c, "ids", []int{0}, 1, 1)
	_, err = nn.Embedding{Num: 5, Dim: 2, Padding: true, PaddingIdx: 5}.Forward(c, ids)
	coreErrContains(t, err, "PaddingIdx 5")
	_, err = nn.Embedding{Num: 0, Dim: 2}.Forward(c, ids)
	coreErrContains(t, err, "Num and Dim must be positive")
}
