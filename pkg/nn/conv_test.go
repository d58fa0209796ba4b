package nn_test

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// cvLayer adds a layer under test to c, applied to x.
type cvLayer func(c *nn.Ctx, x *G.Node) (*G.Node, error)

// cvGraph describes one forward (and optionally backward) run of a layer on
// a fresh store (seed 1) of dtype dt. Parameters in set are overwritten
// after the build, before the run.
type cvGraph struct {
	dt     tensor.Dtype
	train  bool
	x      []float64
	xShape []int
	set    map[string][]float64
	layer  cvLayer
	// grads asks for the gradients of Σ y·r (r a fixed random probe of y's
	// shape) with respect to x and every learnable parameter.
	grads bool
	// probe replaces the random probe r (must have y's size).
	probe []float64
	// runs is how many times the graph is run (0: once).
	runs int
	// store, when set, is used instead of a fresh store (its dtype wins).
	store *nn.Store
}

type cvResult struct {
	y     []float64
	shape tensor.Shape
	grads map[string][]float64 // by node name; the input is "x"
	store *nn.Store
}

func cvRun(t testing.TB, g cvGraph) cvResult {
	t.Helper()
	store := g.store
	if store == nil {
		var err error
		if store, err = nn.NewStore(g.dt, 1); err != nil {
			t.Fatal(err)
		}
	}
	g.dt = store.Dtype()
	graph := G.NewGraph()
	c := nn.NewCtx(graph, store, nn.CtxOptions{Train: g.train})
	x := G.NewTensor(graph, g.dt, len(g.xShape), G.WithShape(g.xShape...), G.WithName("x"),
		G.WithValue(nn.NewDense(g.dt, g.xShape, g.x)))
	y, err := g.layer(c, x)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	for name, v := range g.set {
		p := store.Lookup(name)
		if p == nil {
			t.Fatalf("no parameter %q", name)
		}
		if err := nn.SetFromFloat64(p.Value, v); err != nil {
			t.Fatal(err)
		}
	}
	var wrt G.Nodes
	if g.grads {
		pv := g.probe
		if pv == nil {
			pv, _ = nn.ToFloat64(nntest.RandInput(99, 1, y.Shape()...))
		}
		r := G.NewConstant(nn.NewDense(g.dt, y.Shape(), pv), G.WithName("cvprobe"))
		p, err := G.HadamardProd(y, r)
		if err != nil {
			t.Fatal(err)
		}
		loss, err := G.Sum(p)
		if err != nil {
			t.Fatal(err)
		}
		wrt = append(c.Learnables(), x)
		if _, err := G.Grad(loss, wrt...); err != nil {
			t.Fatalf("grad: %v", err)
		}
	}
	vm := G.NewTapeMachine(graph, G.BindDualValues(wrt...))
	defer vm.Close()
	runs := max(g.runs, 1)
	for i := 0; i < runs; i++ {
		if i > 0 {
			vm.Reset()
		}
		if err := vm.RunAll(); err != nil {
			t.Fatalf("run: %v", err)
		}
	}
	res := cvResult{shape: y.Shape().Clone(), grads: map[string][]float64{}, store: store}
	if res.y, err = nn.ToFloat64(y.Value().(tensor.Tensor)); err != nil {
		t.Fatal(err)
	}
	for _, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatalf("%s: %v", n.Name(), err)
		}
		if res.grads[n.Name()], err = nn.ToFloat64(gv.(tensor.Tensor)); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// cvParam returns the current values of a store tensor.
func cvParam(t testing.TB, s *nn.Store, name string) []float64 {
	t.Helper()
	p := s.Lookup(name)
	if p == nil {
		t.Fatalf("no parameter %q", name)
	}
	v, err := nn.ToFloat64(p.Value)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// cvClose asserts |got-want| ≤ atol + rtol·|want| elementwise.
func cvClose(t testing.TB, what string, got, want []float64, rtol, atol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(got[i] - want[i]); !(d <= atol+rtol*math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %.10g, want %.10g (|diff| %.3g)", what, i, got[i], want[i], d)
		}
	}
}

func cvShape(t testing.TB, what string, got tensor.Shape, want ...int) {
	t.Helper()
	if !got.Eq(tensor.Shape(want)) {
		t.Fatalf("%s: shape %v, want %v", what, got, want)
	}
}

// cvErrContains asserts err is non-nil and contains every fragment.
func cvErrContains(t testing.TB, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not contain %q", err, f)
		}
	}
}

// cvBuildErr builds layer on an input of the given shape and returns the
// build error.
func cvBuildErr(train bool, shape []int, layer cvLayer) error {
	store, _ := nn.NewStore(tensor.Float64, 1)
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{Train: train})
	x := c.Input("x", shape...)
	_, err := layer(c, x)
	return err
}

func cvRandVals(seed int64, n int) []float64 {
	rng := rand.New(rand.NewSource(seed))
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

func cvProd(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// cvConvRef is an independent convolution reference: the nested-loop
// definition y[n,o,p] = b[o] + Σ_c Σ_k w[o,c,k]·x[n, g·C/G + c, p·s + k·d − pad]
// over three spatial axes (1-d and 2-d cases use size-1 leading axes).
type cvConvRef struct {
	inC, outC, groups   int
	k, stride, pad, dil [3]int
}

// lift3 returns [B, C, D, H, W] for a 1-d, 2-d or 3-d input shape.
func lift3(s []int) [5]int {
	out := [5]int{s[0], s[1], 1, 1, 1}
	copy(out[5-(len(s)-2):], s[2:])
	return out
}

func (r cvConvRef) forward(x []float64, xs [5]int, w, b []float64) []float64 {
	B, D, H, W := xs[0], xs[2], xs[3], xs[4]
	var o3 [3]int
	in := [3]int{D, H, W}
	for i := range o3 {
		o3[i] = (in[i]+2*r.pad[i]-r.dil[i]*(r.k[i]-1)-1)/r.stride[i] + 1
	}
	cg, og := r.inC/r.groups, r.outC/r.groups
	y := make([]float64, B*r.outC*o3[0]*o3[1]*o3[2])
	i := 0
	for n := 0; n < B; n++ {
		for o := 0; o < r.outC; o++ {
			grp := o / og
			for od := 0; od < o3[0]; od++ {
				for oh := 0; oh < o3[1]; oh++ {
					for ow := 0; ow < o3[2]; ow++ {
						s := 0.0
						if b != nil {
							s = b[o]
						}
						for c := 0; c < cg; c++ {
							for kd := 0; kd < r.k[0]; kd++ {
								for kh := 0; kh < r.k[1]; kh++ {
									for kw := 0; kw < r.k[2]; kw++ {
										id := od*r.stride[0] - r.pad[0] + kd*r.dil[0]
										ih := oh*r.stride[1] - r.pad[1] + kh*r.dil[1]
										iw := ow*r.stride[2] - r.pad[2] + kw*r.dil[2]
										if id < 0 || id >= D || ih < 0 || ih >= H || iw < 0 || iw >= W {
											continue
										}
										wi := (((o*cg+c)*r.k[0]+kd)*r.k[1]+kh)*r.k[2] + kw
										xi := (((n*r.inC+grp*cg+c)*D+id)*H+ih)*W + iw
										s += w[wi] * x[xi]
									}
								}
							}
						}
						y[i] = s
						i++
					}
				}
			}
		}
	}
	return y
}

type cvConvCase struct {
	name   string
	xShape []int
	want   []int // output shape
	layer  cvLayer
	ref    cvConvRef
	bias   bool
}

func cvConvCases() []cvConvCase {
	one := [3]int{1, 1, 1}
	return []cvConvCase{
		{name: "conv1d stride2 pad2 dil2 groups2", xShape: []int{2, 4, 9}, want: []int{2, 6, 5}, bias: true,
			layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
				return nn.Conv1d{InC: 4, OutC: 6, Kernel: 3, Stride: 2, Padding: 2, Dilation: 2, Groups: 2}.Forward(c.Sub("conv"), x)
			},
			ref: cvConvRef{inC: 4, outC: 6, groups: 2, k: [3]int{1, 1, 3}, stride: [3]int{1, 1, 2}, pad: [3]int{0, 0, 2}, dil: [3]int{1, 1, 2}}},
		{name: "conv2d stride2 pad1", xShape: []int{2, 3, 7, 6}, want: []int{2, 4, 4, 3}, bias: true,
			layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
				return nn.Conv2d{InC: 3, OutC: 4, Kernel: 3, Stride: 2, Padding: 1}.Forward(c.Sub("conv"), x)
			},
			ref: cvConvRef{inC: 3, outC: 4, groups: 1, k: [3]int{1, 3, 3}, stride: [3]int{1, 2, 2}, pad: [3]int{0, 1, 1}, dil: one}},
		{name: "conv2d stride3 pad2 no bias", xShape: []int{1, 2, 5, 7}, want: []int{1, 3, 3, 4},
			layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
				return nn.Conv2d{InC: 2, OutC: 3, Kernel: 2, Stride: 3, Padding: 2, NoBias: true}.Forward(c.Sub("conv"), x)
			},
			ref: cvConvRef{inC: 2, outC: 3, groups: 1, k: [3]int{1, 2, 2}, stride: [3]int{1, 3, 3}, pad: [3]int{0, 2, 2}, dil: one}},
		{name: "conv2d depthwise", xShape: []int{2, 4, 5, 5}, want: []int{2, 8, 5, 5}, bias: true,
			layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
				return nn.Conv2d{InC: 4, OutC: 8, Kernel: 3, Padding: 1, Groups: 4}.Forward(c.Sub("conv"), x)
			},
			ref: cvConvRef{inC: 4, outC: 8, groups: 4, k: [3]int{1, 3, 3}, stride: one, pad: [3]int{0, 1, 1}, dil: one}},
		{name: "conv2d pointwise", xShape: []int{2, 3, 4, 3}, want: []int{2, 5, 4, 3}, bias: true,
			layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
				return nn.Conv2d{InC: 3, OutC: 5, Kernel: 1}.Forward(c.Sub("conv"), x)
			},
			ref: cvConvRef{inC: 3, outC: 5, groups: 1, k: one, stride: one, pad: [3]int{}, dil: one}},
		{name: "conv3d pad1", xShape: []int{2, 2, 3, 4, 3}, want: []int{2, 3, 4, 5, 4}, bias: true,
			layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
				return nn.Conv3d{InC: 2, OutC: 3, Kernel: 2, Padding: 1}.Forward(c.Sub("conv"), x)
			},
			ref: cvConvRef{inC: 2, outC: 3, groups: 1, k: [3]int{2, 2, 2}, stride: one, pad: one, dil: one}},
		{name: "conv3d stride2", xShape: []int{1, 2, 5, 6, 5}, want: []int{1, 2, 2, 2, 2}, bias: true,
			layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
				return nn.Conv3d{InC: 2, OutC: 2, Kernel: 3, Stride: 2}.Forward(c.Sub("conv"), x)
			},
			ref: cvConvRef{inC: 2, outC: 2, groups: 1, k: [3]int{3, 3, 3}, stride: [3]int{2, 2, 2}, dil: one}},
		{name: "conv3d stride2 pad1 dil2 groups2", xShape: []int{2, 4, 5, 6, 7}, want: []int{2, 6, 3, 3, 4}, bias: true,
			layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
				return nn.Conv3d{InC: 4, OutC: 6, Kernel: 2, Stride: 2, Padding: 1, Dilation: 2, Groups: 2}.Forward(c.Sub("conv"), x)
			},
			ref: cvConvRef{inC: 4, outC: 6, groups: 2, k: [3]int{2, 2, 2}, stride: [3]int{2, 2, 2}, pad: one, dil: [3]int{2, 2, 2}}},
	}
}

// TestConvForwardMatchesNaive compares every conv configuration, in float64
// and float32, with the nested-loop reference on the same weights.
func TestConvForwardMatchesNaive(t *testing.T) {
	for _, tc := range cvConvCases() {
		t.Run(tc.name, func(t *testing.T) {
			x := cvRandVals(7, cvProd(tc.xShape))
			for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				res := cvRun(t, cvGraph{dt: dt, x: x, xShape: tc.xShape, layer: tc.layer})
				cvShape(t, tc.name, res.shape, tc.want...)
				w := cvParam(t, res.store, "conv.weight")
				var b []float64
				if tc.bias {
					b = cvParam(t, res.store, "conv.bias")
				} else if res.store.Lookup("conv.bias") != nil {
					t.Fatalf("NoBias layer created a bias")
				}
				xs := x
				if dt == tensor.Float32 { // the reference sees what the float32 graph saw
					xs = make([]float64, len(x))
					for i, v := range x {
						xs[i] = float64(float32(v))
					}
				}
				want := tc.ref.forward(xs, lift3(tc.xShape), w, b)
				tol := 1e-12
				if dt == tensor.Float32 {
					tol = 1e-5
				}
				cvClose(t, dt.String()+" y", res.y, want, tol, tol)
			}
		})
	}
}

// TestConvGradients checks d/dx, d/dw and d/db of every conv configuration
// by central differences (float64), and that the float32 kernels give the
// same gradients to float32 precision.
func TestConvGradients(t *testing.T) {
	for i, tc := range cvConvCases() {
		t.Run(tc.name, func(t *testing.T) {
			nParams := 3 // x, weight, bias
			if !tc.bias {
				nParams = 2
			}
			nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
				x := G.NewTensor(c.Graph(), c.Dtype(), len(tc.xShape), G.WithShape(tc.xShape...), G.WithName("x"),
					G.WithValue(nntest.RandInput(int64(10+i), 1, tc.xShape...)))
				y, err := tc.layer(c, x)
				if err != nil {
					return nil, nil, err
				}
				loss, err := nntest.WeightedSum(y, 5)
				return loss, G.Nodes{x}, err
			}, nntest.Options{MinChecked: nParams, Entries: 40})

			x := cvRandVals(int64(20+i), cvProd(tc.xShape))
			g64 := cvRun(t, cvGraph{dt: tensor.Float64, x: x, xShape: tc.xShape, layer: tc.layer, grads: true})
			g32 := cvRun(t, cvGraph{dt: tensor.Float32, x: x, xShape: tc.xShape, layer: tc.layer, grads: true})
			if len(g64.grads) != nParams {
				t.Fatalf("got gradients for %d nodes, want %d", len(g64.grads), nParams)
			}
			for name, want := range g64.grads {
				cvClose(t, "float32 d/d"+name, g32.grads[name], want, 1e-4, 1e-4)
			}
		})
	}
}

// TestConvHandComputed checks two convolutions small enough to do by hand.
func TestConvHandComputed(t *testing.T) {
	// 1-d: x = [1 2 3 4], w = [1 0 −1], padding 1:
	// y[i] = x[i−1] − x[i+1] = [0−2, 1−3, 2−4, 3−0] = [−2 −2 −2 3].
	res := cvRun(t, cvGraph{dt: tensor.Float64, x: []float64{1, 2, 3, 4}, xShape: []int{1, 1, 4},
		set: map[string][]float64{"c1.weight": {1, 0, -1}},
		layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv1d{InC: 1, OutC: 1, Kernel: 3, Padding: 1, NoBias: true}.Forward(c.Sub("c1"), x)
		}})
	cvClose(t, "conv1d", res.y, []float64{-2, -2, -2, 3}, 0, 1e-12)

	// 2-d: x = 1..9 as 3×3, a 2×2 kernel of ones sums each 2×2 block:
	// [1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9] = [12 16 24 28], plus bias 0.5.
	res = cvRun(t, cvGraph{dt: tensor.Float32, x: []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}, xShape: []int{1, 1, 3, 3},
		set: map[string][]float64{"c2.weight": {1, 1, 1, 1}, "c2.bias": {0.5}},
		layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv2d{InC: 1, OutC: 1, Kernel: 2}.Forward(c.Sub("c2"), x)
		}})
	cvShape(t, "conv2d", res.shape, 1, 1, 2, 2)
	cvClose(t, "conv2d", res.y, []float64{12.5, 16.5, 24.5, 28.5}, 0, 1e-6)
}

// TestConvParamsPyTorchLayout checks parameter names, shapes and the
// PyTorch default init ranges: weight U(±1/√fanIn) (kaiming_uniform with
// a=√5 gives bound √(6/((1+5)·fanIn)) = 1/√fanIn), bias U(±1/√fanIn).
func TestConvParamsPyTorchLayout(t *testing.T) {
	res := cvRun(t, cvGraph{dt: tensor.Float64, x: cvRandVals(1, 2*4*6*6), xShape: []int{2, 4, 6, 6},
		layer: func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv2d{InC: 4, OutC: 6, Kernel: 3, Groups: 2}.Forward(c.Sub("dw"), x)
		}})
	w, b := res.store.Lookup("dw.weight"), res.store.Lookup("dw.bias")
	if w == nil || b == nil {
		t.Fatal("missing dw.weight or dw.bias")
	}
	cvShape(t, "weight", w.Value.Shape(), 6, 2, 3, 3)
	cvShape(t, "bias", b.Value.Shape(), 6)
	bound := 1 / math.Sqrt(2*3*3) // fanIn = InC/Groups·K² = 18
	for name, p := range map[string]*nn.Param{"weight": w, "bias": b} {
		v, _ := nn.ToFloat64(p.Value)
		maxAbs := 0.0
		for _, e := range v {
			maxAbs = math.Max(maxAbs, math.Abs(e))
		}
		if maxAbs > bound || maxAbs < bound/3 {
			t.Errorf("%s: max |value| %.4f, want within (bound/3, bound] with bound %.4f", name, maxAbs, bound)
		}
	}
}

func TestConvErrors(t *testing.T) {
	cases := []struct {
		name  string
		shape []int
		layer cvLayer
		want  []string
	}{
		{"channels", []int{2, 1, 28, 28}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv2d{InC: 3, OutC: 8, Kernel: 3}.Forward(c.Sub("vision").Sub("conv1"), x)
		}, []string{"vision.conv1: conv2d expects [B,3,H,W], got [2,1,28,28]"}},
		{"rank", []int{2, 3}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv1d{InC: 3, OutC: 8, Kernel: 3}.Forward(c.Sub("audio"), x)
		}, []string{"audio: conv1d expects [B,3,L], got [2,3]"}},
		{"kernel larger than padded input", []int{1, 1, 4, 4}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv2d{InC: 1, OutC: 1, Kernel: 7, Padding: 1}.Forward(c.Sub("c"), x)
		}, []string{"c: conv2d: kernel spans 7 on axis H but the padded input has 6"}},
		{"dilated kernel larger", []int{1, 1, 6}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv1d{InC: 1, OutC: 1, Kernel: 3, Dilation: 3}.Forward(c, x)
		}, []string{"conv1d: kernel spans 7 on axis L"}},
		{"groups in", []int{1, 3, 5, 5}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv2d{InC: 3, OutC: 4, Kernel: 3, Groups: 2}.Forward(c.Sub("c"), x)
		}, []string{"c: conv2d: in channels 3 not divisible by groups 2"}},
		{"groups out", []int{1, 4, 5, 5}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv2d{InC: 4, OutC: 6, Kernel: 3, Groups: 4}.Forward(c, x)
		}, []string{"conv2d: out channels 6 not divisible by groups 4"}},
		{"zero kernel", []int{1, 2, 3, 3, 3}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv3d{InC: 2, OutC: 2}.Forward(c, x)
		}, []string{"conv3d: kernel size must be positive, got 0"}},
		{"conv3d rank", []int{1, 2, 3, 3}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv3d{InC: 2, OutC: 2, Kernel: 1}.Forward(c, x)
		}, []string{"conv3d expects [B,2,D,H,W], got [1,2,3,3]"}},
		{"negative padding", []int{1, 2, 8}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv1d{InC: 2, OutC: 2, Kernel: 3, Padding: -1}.Forward(c, x)
		}, []string{"conv1d: padding must be non-negative, got -1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cvErrContains(t, cvBuildErr(false, tc.shape, tc.layer), tc.want...)
		})
	}
}

// benchConv2d times one forward+backward of a float32 Conv2d on the
// bench-small vision shapes.
func benchConv2d(b *testing.B, layer nn.Conv2d, shape []int) {
	store, err := nn.NewStore(tensor.Float32, 1)
	if err != nil {
		b.Fatal(err)
	}
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{Train: true})
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(shape...), G.WithName("x"),
		G.WithValue(nn.NewDense(tensor.Float32, shape, cvRandVals(1, cvProd(shape)))))
	y, err := layer.Forward(c.Sub("conv"), x)
	if err != nil {
		b.Fatal(err)
	}
	loss, err := G.Sum(y)
	if err != nil {
		b.Fatal(err)
	}
	wrt := c.Learnables()
	if _, err := G.Grad(loss, wrt...); err != nil {
		b.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(wrt...))
	defer vm.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
		vm.Reset()
	}
}

// BenchmarkConv2dSmall1to16 is bench-small's first vision conv: B=32,
// 1→16 channels, 3×3, stride 2, padding 1, on 28×28.
func BenchmarkConv2dSmall1to16(b *testing.B) {
	benchConv2d(b, nn.Conv2d{InC: 1, OutC: 16, Kernel: 3, Stride: 2, Padding: 1}, []int{32, 1, 28, 28})
}

// BenchmarkConv2dSmall16to32 is the second: B=32, 16→32, 3×3, stride 2,
// padding 1, on 14×14.
func BenchmarkConv2dSmall16to32(b *testing.B) {
	benchConv2d(b, nn.Conv2d{InC: 16, OutC: 32, Kernel: 3, Stride: 2, Padding: 1}, []int{32, 16, 14, 14})
}
