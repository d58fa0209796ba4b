package nn_test

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// TestMaxPoolHandComputed checks window placement, −∞ padding, the default
// stride and where the gradient goes, on inputs small enough to do by hand.
func TestMaxPoolHandComputed(t *testing.T) {
	pool1 := func(p nn.MaxPool1d) cvLayer {
		return func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return p.Forward(c, x) }
	}
	cases := []struct {
		name         string
		x            []float64
		shape        []int
		layer        cvLayer
		probe        []float64
		wantY, wantD []float64
	}{
		// Padded [−∞ 1 3 2 5 4 −∞], windows of 3 at 0, 2, 4: max 3, 5, 5.
		// dy = [1 10 100] lands on x[1] (3) and twice on x[3] (5).
		{"k3 s2 p1", []float64{1, 3, 2, 5, 4}, []int{1, 1, 5}, pool1(nn.MaxPool1d{Kernel: 3, Stride: 2, Padding: 1}),
			[]float64{1, 10, 100}, []float64{3, 5, 5}, []float64{0, 1, 0, 110, 0}},
		// Ties go to the first element of the window; stride 0 means Kernel.
		{"ties", []float64{2, 2, -1, -1}, []int{1, 1, 4}, pool1(nn.MaxPool1d{Kernel: 2}),
			[]float64{1, 10}, []float64{2, -1}, []float64{1, 0, 10, 0}},
		// Padding is −∞, not 0: an all-negative input keeps its values at the
		// edges ([−∞ −1] → −1, [−3 −∞] → −3).
		{"negative edges", []float64{-1, -2, -3}, []int{1, 1, 3}, pool1(nn.MaxPool1d{Kernel: 2, Stride: 1, Padding: 1}),
			[]float64{1, 10, 100, 1000}, []float64{-1, -1, -2, -3}, []float64{11, 100, 1000}},
		// 4×4 holding 0..15, 2×2 windows, default stride 2: each window's
		// bottom-right element.
		{"2d default stride", cvSeq(16), []int{1, 1, 4, 4}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.MaxPool2d{Kernel: 2}.Forward(c, x)
		}, []float64{1, 2, 3, 4}, []float64{5, 7, 13, 15},
			[]float64{0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				res := cvRun(t, cvGraph{dt: dt, x: tc.x, xShape: tc.shape, layer: tc.layer, grads: true, probe: tc.probe})
				cvClose(t, dt.String()+" y", res.y, tc.wantY, 0, 0)
				cvClose(t, dt.String()+" dx", res.grads["x"], tc.wantD, 0, 0)
			}
		})
	}
}

func cvSeq(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i)
	}
	return v
}

func TestMaxPoolNaNPropagates(t *testing.T) {
	res := cvRun(t, cvGraph{dt: tensor.Float32, x: []float64{1, math.NaN(), 3, 0}, xShape: []int{1, 1, 4},
		layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return nn.MaxPool1d{Kernel: 2}.Forward(c, x) }})
	if !math.IsNaN(res.y[0]) || res.y[1] != 3 {
		t.Fatalf("y = %v, want [NaN 3] (PyTorch propagates NaN)", res.y)
	}
}

// naiveMaxPool2d is the definition: max over the window, skipping padding.
func naiveMaxPool2d(x []float64, s []int, k, stride, pad int) []float64 {
	B, C, H, W := s[0], s[1], s[2], s[3]
	OH, OW := (H+2*pad-k)/stride+1, (W+2*pad-k)/stride+1
	var y []float64
	for p := 0; p < B*C; p++ {
		for oh := 0; oh < OH; oh++ {
			for ow := 0; ow < OW; ow++ {
				m := math.Inf(-1)
				for u := 0; u < k; u++ {
					for v := 0; v < k; v++ {
						h, w := oh*stride-pad+u, ow*stride-pad+v
						if h >= 0 && h < H && w >= 0 && w < W {
							m = math.Max(m, x[(p*H+h)*W+w])
						}
					}
				}
				y = append(y, m)
			}
		}
	}
	return y
}

func TestMaxPool2dMatchesNaive(t *testing.T) {
	shape := []int{2, 3, 7, 6}
	x := cvRandVals(3, cvProd(shape))
	for _, p := range []nn.MaxPool2d{{Kernel: 3, Stride: 2, Padding: 1}, {Kernel: 2}, {Kernel: 3, Stride: 1}} {
		stride := p.Stride
		if stride == 0 {
			stride = p.Kernel
		}
		want := naiveMaxPool2d(x, shape, p.Kernel, stride, p.Padding)
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			res := cvRun(t, cvGraph{dt: dt, x: x, xShape: shape,
				layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return p.Forward(c, x) }})
			oh, ow := (7+2*p.Padding-p.Kernel)/stride+1, (6+2*p.Padding-p.Kernel)/stride+1
			cvShape(t, "maxpool2d", res.shape, 2, 3, oh, ow)
			cvClose(t, dt.String()+" maxpool2d", res.y, want, 1e-7, 0)
		}
	}
}

func TestMaxPoolGradients(t *testing.T) {
	cases := []struct {
		name  string
		shape []int
		layer cvLayer
	}{
		{"1d k3 s2 p1", []int{2, 3, 9}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.MaxPool1d{Kernel: 3, Stride: 2, Padding: 1}.Forward(c, x)
		}},
		{"2d k3 s2 p1", []int{2, 2, 5, 6}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.MaxPool2d{Kernel: 3, Stride: 2, Padding: 1}.Forward(c, x)
		}},
		{"2d k2 overlapping", []int{1, 2, 4, 5}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.MaxPool2d{Kernel: 2, Stride: 1}.Forward(c, x)
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Random normal inputs have no near-ties, so the max is smooth
			// at the 1e-6 finite-difference step.
			nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
				x := G.NewTensor(c.Graph(), c.Dtype(), len(tc.shape), G.WithShape(tc.shape...), G.WithName("x"),
					G.WithValue(nntest.RandInput(int64(30+i), 1, tc.shape...)))
				y, err := tc.layer(c, x)
				if err != nil {
					return nil, nil, err
				}
				loss, err := nntest.WeightedSum(y, 6)
				return loss, G.Nodes{x}, err
			}, nntest.Options{MinChecked: 1, Entries: 60})
		})
	}
}

// TestConvPoolChainGradients checks a small vision stack end to end:
// conv → batch norm → max pool → conv (depthwise) → global average pool.
func TestConvPoolChainGradients(t *testing.T) {
	nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		x := G.NewTensor(c.Graph(), c.Dtype(), 4, G.WithShape(2, 1, 6, 6), G.WithName("x"),
			G.WithValue(nntest.RandInput(40, 1, 2, 1, 6, 6)))
		h, err := nn.Conv2d{InC: 1, OutC: 4, Kernel: 3, Padding: 1}.Forward(c.Sub("conv1"), x)
		if err != nil {
			return nil, nil, err
		}
		if h, err = (nn.BatchNorm{Features: 4}).Forward(c.Sub("bn1"), h); err != nil {
			return nil, nil, err
		}
		if h, err = (nn.MaxPool2d{Kernel: 2}).Forward(c, h); err != nil {
			return nil, nil, err
		}
		if h, err = (nn.Conv2d{InC: 4, OutC: 4, Kernel: 3, Padding: 1, Groups: 4}).Forward(c.Sub("dw"), h); err != nil {
			return nil, nil, err
		}
		if h, err = nn.GlobalAvgPool(c, h); err != nil {
			return nil, nil, err
		}
		loss, err := nntest.WeightedSum(h, 7)
		return loss, G.Nodes{x}, err
	}, nntest.Options{MinChecked: 7, Train: true, Entries: 10})
}

func TestGlobalAvgPoolAndMeanAxisValues(t *testing.T) {
	// [B=1, C=2, L=3] = [[1 2 3] [4 5 9]] → means [2 6]; with dy = [1 10]
	// each x gets dy/3.
	res := cvRun(t, cvGraph{dt: tensor.Float64, x: []float64{1, 2, 3, 4, 5, 9}, xShape: []int{1, 2, 3},
		layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return nn.GlobalAvgPool(c, x) },
		grads: true, probe: []float64{1, 10}})
	cvShape(t, "gap", res.shape, 1, 2)
	cvClose(t, "gap y", res.y, []float64{2, 6}, 0, 1e-12)
	third := 1.0 / 3
	cvClose(t, "gap dx", res.grads["x"], []float64{third, third, third, 10 * third, 10 * third, 10 * third}, 1e-12, 0)

	// 5-D against a direct mean per (n, c).
	shape := []int{2, 3, 2, 2, 3}
	x := cvRandVals(5, cvProd(shape))
	res = cvRun(t, cvGraph{dt: tensor.Float32, x: x, xShape: shape,
		layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return nn.GlobalAvgPool(c, x) }})
	cvShape(t, "gap5", res.shape, 2, 3)
	want := make([]float64, 6)
	for i := range want {
		for _, v := range x[i*12 : (i+1)*12] {
			want[i] += v / 12
		}
	}
	cvClose(t, "gap5 y", res.y, want, 1e-5, 1e-6)

	// MeanAxis on [2,3,4] over each axis against a direct loop.
	shape = []int{2, 3, 4}
	x = cvRandVals(6, 24)
	at := func(i, j, k int) float64 { return x[(i*3+j)*4+k] }
	for axis, wantShape := range [][]int{{3, 4}, {2, 4}, {2, 3}} {
		res := cvRun(t, cvGraph{dt: tensor.Float64, x: x, xShape: shape,
			layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return nn.MeanAxis(x, axis) }})
		cvShape(t, "mean axis", res.shape, wantShape...)
		var want []float64
		for a := 0; a < wantShape[0]; a++ {
			for b := 0; b < wantShape[1]; b++ {
				s := 0.0
				for r := 0; r < shape[axis]; r++ {
					switch axis {
					case 0:
						s += at(r, a, b)
					case 1:
						s += at(a, r, b)
					case 2:
						s += at(a, b, r)
					}
				}
				want = append(want, s/float64(shape[axis]))
			}
		}
		cvClose(t, "mean axis", res.y, want, 1e-12, 1e-12)
	}
}

func TestGlobalAvgPoolAndMeanAxisGradients(t *testing.T) {
	cases := []struct {
		name  string
		shape []int
		layer cvLayer
	}{
		{"gap 3d", []int{2, 3, 5}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return nn.GlobalAvgPool(c, x) }},
		{"gap 4d", []int{2, 3, 2, 3}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return nn.GlobalAvgPool(c, x) }},
		{"gap 5d", []int{2, 2, 2, 3, 2}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return nn.GlobalAvgPool(c, x) }},
		{"mean axis 0", []int{3, 2, 4}, func(_ *nn.Ctx, x *G.Node) (*G.Node, error) { return nn.MeanAxis(x, 0) }},
		{"mean axis 1", []int{3, 2, 4}, func(_ *nn.Ctx, x *G.Node) (*G.Node, error) { return nn.MeanAxis(x, 1) }},
		{"mean axis last", []int{3, 2, 4}, func(_ *nn.Ctx, x *G.Node) (*G.Node, error) { return nn.MeanAxis(x, 2) }},
		{"mean axis 2d", []int{5, 3}, func(_ *nn.Ctx, x *G.Node) (*G.Node, error) { return nn.MeanAxis(x, 1) }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
				x := G.NewTensor(c.Graph(), c.Dtype(), len(tc.shape), G.WithShape(tc.shape...), G.WithName("x"),
					G.WithValue(nntest.RandInput(int64(50+i), 1, tc.shape...)))
				y, err := tc.layer(c, x)
				if err != nil {
					return nil, nil, err
				}
				loss, err := nntest.WeightedSum(y, 8)
				return loss, G.Nodes{x}, err
			}, nntest.Options{MinChecked: 1, Entries: 30})
		})
	}
}

func TestPoolErrors(t *testing.T) {
	cases := []struct {
		name  string
		shape []int
		layer cvLayer
		want  string
	}{
		{"padding over half", []int{1, 2, 8, 8}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.MaxPool2d{Kernel: 3, Padding: 2}.Forward(c.Sub("pool"), x)
		}, "pool: maxpool2d: padding 2 must be at most half the kernel 3"},
		{"rank", []int{2, 3, 4, 5}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.MaxPool1d{Kernel: 2}.Forward(c.Sub("pool"), x)
		}, "pool: maxpool1d expects [B,C,L], got [2,3,4,5]"},
		{"kernel larger", []int{1, 1, 3, 3}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.MaxPool2d{Kernel: 4}.Forward(c, x)
		}, "maxpool2d: kernel spans 4 on axis H but the padded input has 3"},
		{"zero kernel", []int{1, 1, 3}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.MaxPool1d{}.Forward(c, x)
		}, "maxpool1d: kernel size must be positive, got 0"},
		{"gap rank", []int{4, 3}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.GlobalAvgPool(c.Sub("head"), x)
		}, "head: global average pool expects [B,C,spatial...] (rank at least 3), got [4,3]"},
		{"mean axis range", []int{4, 3}, func(_ *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.MeanAxis(x, 2)
		}, "mean axis: axis 2 out of range for shape [4,3]"},
		{"mean axis rank 1", []int{4}, func(_ *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.MeanAxis(x, 0)
		}, "mean axis: input [4] has rank 1, need at least 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cvErrContains(t, cvBuildErr(false, tc.shape, tc.layer), tc.want)
		})
	}
}
