package nn_test

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

func TestLayerNormForward(t *testing.T) {
	// PyTorch: nn.LayerNorm(4) with weight [1,2,−1,0.5], bias [0,1,0.5,−2].
	want := []float64{-1.341635419968927, 0.10557638668738178, 0.052788193343691114, -1.3291822900155366,
		-0.7808684285316947, 0.06295788576196637, 0.9685210571190168, -1.1410447286151357}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		res := coreMustRun(t, dt, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
			y, err := nn.LayerNorm{Features: 4}.Forward(c.Sub("ln"), coreInput(c, "x", []float64{1, 2, 3, 4, -1, 0, 0, 7}, 2, 4))
			coreSetParam(t, c, "ln.weight", []float64{1, 2, -1, 0.5})
			coreSetParam(t, c, "ln.bias", []float64{0, 1, 0.5, -2})
			return coreGraph{outs: G.Nodes{y}}, err
		})
		tol := 1e-14
		if dt == tensor.Float32 {
			tol = 1e-6
		}
		coreClose(t, "layernorm "+dt.String(), res.vals[0], want, tol, tol)
	}
}

func TestLayerNormDefaultParamsNormalise(t *testing.T) {
	// With the initial weight 1 and bias 0 every row has mean 0 and
	// variance var/(var+eps); rank 3 input, rows of very different scale.
	x := coreSeq(2*3*5, func(i int) float64 { return math.Pow(10, float64(i/5-2)) * math.Sin(float64(i)) })
	res := coreMustRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
		y, err := nn.LayerNorm{Features: 5, Eps: 1e-6}.Forward(c, coreInput(c, "x", x, 2, 3, 5))
		return coreGraph{outs: G.Nodes{y}}, err
	})
	for r := 0; r < 6; r++ {
		row, in := res.vals[0][5*r:5*r+5], x[5*r:5*r+5]
		var m, v, mi, vi float64
		for j := range row {
			m += row[j] / 5
			mi += in[j] / 5
		}
		for j := range row {
			v += (row[j] - m) * (row[j] - m) / 5
			vi += (in[j] - mi) * (in[j] - mi) / 5
		}
		if math.Abs(m) > 1e-12 || math.Abs(v-vi/(vi+1e-6)) > 1e-9 {
			t.Errorf("row %d: mean %g, variance %g, want 0 and %g", r, m, v, vi/(vi+1e-6))
		}
	}
}

func TestLayerNormGradients(t *testing.T) {
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		x := coreInput(c, "x", nntest.RandInput(11, 1.5, 2, 3, 6).Data().([]float64), 2, 3, 6)
		y, err := nn.LayerNorm{Features: 6}.Forward(c.Sub("ln"), x)
		if err != nil {
			return nil, nil, err
		}
		// Non-trivial weight and bias, so a backward that ignores either
		// one cannot pass.
		coreSetParam(t, c, "ln.weight", nntest.RandInput(12, 1, 6).Data().([]float64))
		coreSetParam(t, c, "ln.bias", nntest.RandInput(13, 1, 6).Data().([]float64))
		l, err := nntest.WeightedSum(y, 14)
		return l, G.Nodes{x}, err
	}, nntest.Options{Entries: 36, MinChecked: 3})
}

func TestLayerNormErrors(t *testing.T) {
	store, _ := nn.NewStore(tensor.Float64, 1)
	c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}).Sub("text").Sub("norm")
	x := coreInput(c, "x", nil, 2, 5)
	_, err := nn.LayerNorm{Features: 4}.Forward(c, x)
	coreErrContains(t, err, "text.norm", "[..., 4]", "(2, 5)")
	_, err = nn.LayerNorm{}.Forward(c, x)
	coreErrContains(t, err, "text.norm", "Features must be positive")
	_, err = nn.LayerNorm{Features: 5, Eps: -1}.Forward(c, x)
	coreErrContains(t, err, "Eps")
	_, err = nn.LayerNorm{Features: 5}.Forward(c, nil)
	coreErrContains(t, err, "nil input")
}
