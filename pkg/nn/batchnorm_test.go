package nn_test

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// bnChannelStats returns each channel's mean and biased variance of x
// viewed as [B, C, S].
func bnChannelStats(x []float64, B, C, S int) (mean, variance []float64) {
	mean, variance = make([]float64, C), make([]float64, C)
	n := float64(B * S)
	for c := 0; c < C; c++ {
		for b := 0; b < B; b++ {
			for s := 0; s < S; s++ {
				mean[c] += x[(b*C+c)*S+s] / n
			}
		}
		for b := 0; b < B; b++ {
			for s := 0; s < S; s++ {
				d := x[(b*C+c)*S+s] - mean[c]
				variance[c] += d * d / n
			}
		}
	}
	return mean, variance
}

// bnNormalise is y = γ(x−μ)/√(σ²+eps) + β per channel.
func bnNormalise(x []float64, B, C, S int, gamma, beta, mean, variance []float64, eps float64) []float64 {
	y := make([]float64, len(x))
	for b := 0; b < B; b++ {
		for c := 0; c < C; c++ {
			for s := 0; s < S; s++ {
				i := (b*C+c)*S + s
				y[i] = gamma[c]*(x[i]-mean[c])/math.Sqrt(variance[c]+eps) + beta[c]
			}
		}
	}
	return y
}

func bnLayer(l nn.BatchNorm) cvLayer {
	return func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return l.Forward(c.Sub("bn"), x) }
}

// TestBatchNormTrainForwardAndRunningStats runs a training graph twice and
// checks the output (batch statistics) and the running buffers:
// with momentum m, after two identical batches
// running_mean = (1−(1−m)²)·μ and running_var = (1−m)²·1 + (1−(1−m)²)·σ²·N/(N−1).
func TestBatchNormTrainForwardAndRunningStats(t *testing.T) {
	const B, C, S = 4, 2, 3
	x := cvRandVals(11, B*C*S)
	for i := range x {
		x[i] = 2*x[i] + 1 // mean ≈ 1, variance ≈ 4: far from the initial buffers
	}
	gamma, beta := []float64{2, 0.5}, []float64{0.1, -0.3}
	mean, variance := bnChannelStats(x, B, C, S)
	n := float64(B * S)
	for _, tc := range []struct {
		name     string
		layer    nn.BatchNorm
		momentum float64
		eps      float64
	}{
		{"defaults", nn.BatchNorm{Features: C}, 0.1, 1e-5},
		{"momentum 0.3 eps 0.01", nn.BatchNorm{Features: C, Momentum: 0.3, Eps: 0.01}, 0.3, 0.01},
	} {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			res := cvRun(t, cvGraph{dt: dt, train: true, x: x, xShape: []int{B, C, S}, runs: 2,
				set:   map[string][]float64{"bn.weight": gamma, "bn.bias": beta},
				layer: bnLayer(tc.layer)})
			tol := 1e-12
			if dt == tensor.Float32 {
				tol = 1e-5
			}
			want := bnNormalise(x, B, C, S, gamma, beta, mean, variance, tc.eps)
			cvClose(t, tc.name+" "+dt.String()+" y", res.y, want, tol, tol)
			keep := (1 - tc.momentum) * (1 - tc.momentum)
			wantRM, wantRV := make([]float64, C), make([]float64, C)
			for c := range wantRM {
				wantRM[c] = (1 - keep) * mean[c]
				wantRV[c] = keep + (1-keep)*variance[c]*n/(n-1)
			}
			cvClose(t, tc.name+" running_mean", cvParam(t, res.store, "bn.running_mean"), wantRM, tol, tol)
			cvClose(t, tc.name+" running_var", cvParam(t, res.store, "bn.running_var"), wantRV, tol, tol)
		}
	}
}

// TestBatchNormEvalUsesRunningStats checks that evaluation normalises with
// the buffers, leaves them unchanged, and sees what a training graph on the
// same store wrote.
func TestBatchNormEvalUsesRunningStats(t *testing.T) {
	const B, C, S = 2, 3, 4
	x := cvRandVals(12, B*C*S)
	rm, rv := []float64{1, -1, 0.5}, []float64{4, 0.25, 1}
	gamma, beta := []float64{1.5, -1, 0.5}, []float64{0, 1, 2}
	res := cvRun(t, cvGraph{dt: tensor.Float64, x: x, xShape: []int{B, C, 2, 2},
		set:   map[string][]float64{"bn.running_mean": rm, "bn.running_var": rv, "bn.weight": gamma, "bn.bias": beta},
		layer: bnLayer(nn.BatchNorm{Features: C})})
	cvClose(t, "eval y", res.y, bnNormalise(x, B, C, S, gamma, beta, rm, rv, 1e-5), 1e-12, 1e-12)
	cvClose(t, "eval running_mean unchanged", cvParam(t, res.store, "bn.running_mean"), rm, 0, 0)
	cvClose(t, "eval running_var unchanged", cvParam(t, res.store, "bn.running_var"), rv, 0, 0)

	// A training run on a store, then an evaluation graph on the same store.
	store, err := nn.NewStore(tensor.Float64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cvRun(t, cvGraph{store: store, train: true, x: x, xShape: []int{B, C, S}, layer: bnLayer(nn.BatchNorm{Features: C})})
	mean, variance := bnChannelStats(x, B, C, S)
	n := float64(B * S)
	for c := range mean {
		mean[c] *= 0.1
		variance[c] = 0.9 + 0.1*variance[c]*n/(n-1)
	}
	ev := cvRun(t, cvGraph{store: store, x: x, xShape: []int{B, C, S}, layer: bnLayer(nn.BatchNorm{Features: C})})
	ones, zeros := []float64{1, 1, 1}, []float64{0, 0, 0}
	cvClose(t, "eval after train", ev.y, bnNormalise(x, B, C, S, ones, zeros, mean, variance, 1e-5), 1e-12, 1e-12)
}

func TestBatchNormGradients(t *testing.T) {
	cases := []struct {
		name  string
		shape []int
		train bool
	}{
		{"train [B,C]", []int{5, 3}, true},
		{"train [B,C,H,W]", []int{2, 3, 2, 3}, true},
		{"train [B,C,D,H,W]", []int{2, 2, 2, 2, 2}, true},
		{"eval [B,C,L]", []int{2, 3, 4}, false},
		{"eval [B,C,D,H,W]", []int{2, 2, 2, 2, 3}, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
				x := G.NewTensor(c.Graph(), c.Dtype(), len(tc.shape), G.WithShape(tc.shape...), G.WithName("x"),
					G.WithValue(nntest.RandInput(int64(60+i), 1.5, tc.shape...)))
				y, err := nn.BatchNorm{Features: tc.shape[1]}.Forward(c.Sub("bn"), x)
				if err != nil {
					return nil, nil, err
				}
				// Non-trivial affine parameters and running statistics.
				for name, v := range map[string]float64{"weight": 1.7, "bias": -0.4, "running_mean": 0.3, "running_var": 2.5} {
					vals := make([]float64, tc.shape[1])
					for j := range vals {
						vals[j] = v + 0.1*float64(j)
					}
					if err := nn.SetFromFloat64(c.Store().Lookup("bn."+name).Value, vals); err != nil {
						return nil, nil, err
					}
				}
				loss, err := nntest.WeightedSum(y, 9)
				return loss, G.Nodes{x}, err
			}, nntest.Options{MinChecked: 3, Train: tc.train, Entries: 30})
		})
	}
}

// TestBatchNormFloat32MatchesFloat64 runs the training backward in both
// dtypes.
func TestBatchNormFloat32MatchesFloat64(t *testing.T) {
	shape := []int{4, 3, 5}
	x := cvRandVals(13, cvProd(shape))
	g64 := cvRun(t, cvGraph{dt: tensor.Float64, train: true, x: x, xShape: shape, grads: true, layer: bnLayer(nn.BatchNorm{Features: 3})})
	g32 := cvRun(t, cvGraph{dt: tensor.Float32, train: true, x: x, xShape: shape, grads: true, layer: bnLayer(nn.BatchNorm{Features: 3})})
	if len(g64.grads) != 3 {
		t.Fatalf("gradients for %d nodes, want 3 (x, bn.weight, bn.bias)", len(g64.grads))
	}
	for name, want := range g64.grads {
		cvClose(t, "float32 d/d"+name, g32.grads[name], want, 1e-4, 1e-5)
	}
}

func TestBatchNormErrors(t *testing.T) {
	cases := []struct {
		name  string
		shape []int
		train bool
		layer nn.BatchNorm
		want  string
	}{
		{"features", []int{2, 3, 5}, false, nn.BatchNorm{Features: 4},
			"bn: batchnorm expects [B,4] or [B,4,spatial...] (rank 2 to 5), got [2,3,5]"},
		{"rank 6", []int{1, 2, 1, 1, 1, 1}, false, nn.BatchNorm{Features: 2}, "got [1,2,1,1,1,1]"},
		{"rank 1", []int{2}, false, nn.BatchNorm{Features: 2}, "got [2]"},
		{"one value per channel", []int{1, 3}, true, nn.BatchNorm{Features: 3},
			"bn: batchnorm: training needs more than one value per channel, got input [1,3]"},
		{"momentum", []int{2, 3}, true, nn.BatchNorm{Features: 3, Momentum: 1.5}, "momentum must be in (0, 1], got 1.5"},
		{"no features", []int{2, 3}, true, nn.BatchNorm{}, "features must be positive, got 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cvErrContains(t, cvBuildErr(tc.train, tc.shape, bnLayer(tc.layer)), tc.want)
		})
	}
	// A single value per channel is fine in evaluation.
	if err := cvBuildErr(false, []int{1, 3}, bnLayer(nn.BatchNorm{Features: 3})); err != nil {
		t.Fatalf("eval with batch 1: %v", err)
	}
}
