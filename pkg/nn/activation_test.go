package nn_test

import (
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// Reference values in these tests come from PyTorch 1.13 in float64
// (torch.nn.functional.gelu/silu/sigmoid, torch.tanh, and
// 1.7159·torch.tanh(0.666·x)) unless a comment derives them by hand.

// coreGraph is a built test graph: outputs to read after a run and
// optionally a scalar loss whose gradients with respect to wrt are taken.
type coreGraph struct {
	outs G.Nodes
	loss *G.Node
	wrt  G.Nodes
}

// coreResult holds what one run of a coreGraph produced.
type coreResult struct {
	store *nn.Store
	vals  [][]float64 // values of outs
	grads [][]float64 // gradients of wrt
}

// coreRun builds a graph in a fresh store of dtype dt (seed 1) with the
// given options and runs it once (forward, and backward when a loss is
// set). Build errors fail the test; run errors are returned, so tests can
// assert on them.
func coreRun(t *testing.T, dt tensor.Dtype, opt nn.CtxOptions, build func(c *nn.Ctx) (coreGraph, error)) (coreResult, error) {
	t.Helper()
	store, err := nn.NewStore(dt, 1)
	if err != nil {
		t.Fatal(err)
	}
	g := G.NewGraph()
	c := nn.NewCtx(g, store, opt)
	var cg coreGraph
	if err := nn.Catch("test", func() error {
		var err error
		cg, err = build(c)
		return err
	}); err != nil {
		t.Fatalf("build: %v", err)
	}
	var vmOpts []G.VMOpt
	if cg.loss != nil {
		if _, err := G.Grad(cg.loss, cg.wrt...); err != nil {
			t.Fatalf("grad: %v", err)
		}
		vmOpts = append(vmOpts, G.BindDualValues(cg.wrt...))
	}
	vm := G.NewTapeMachine(g, vmOpts...)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return coreResult{}, err
	}
	res := coreResult{store: store}
	for _, n := range cg.outs {
		res.vals = append(res.vals, coreValues(t, n.Value()))
	}
	for _, n := range cg.wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatalf("%s: %v", n.Name(), err)
		}
		res.grads = append(res.grads, coreValues(t, gv))
	}
	return res, nil
}

// coreMustRun is coreRun for graphs that must run without error.
func coreMustRun(t *testing.T, dt tensor.Dtype, opt nn.CtxOptions, build func(c *nn.Ctx) (coreGraph, error)) coreResult {
	t.Helper()
	res, err := coreRun(t, dt, opt, build)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func coreValues(t *testing.T, v G.Value) []float64 {
	t.Helper()
	switch x := v.(type) {
	case *G.F64:
		return []float64{float64(*x)}
	case *G.F32:
		return []float64{float64(*x)}
	case tensor.Tensor:
		f, err := nn.ToFloat64(x)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	t.Fatalf("value of type %T", v)
	return nil
}

// coreInput adds a float input of the graph's dtype holding vals.
func coreInput(c *nn.Ctx, name string, vals []float64, shape ...int) *G.Node {
	return G.NewTensor(c.Graph(), c.Dtype(), len(shape), G.WithShape(shape...), G.WithName(name),
		G.WithValue(nn.NewDense(c.Dtype(), shape, vals)))
}

// coreIDs adds an int input (token ids, labels) holding ids.
func coreIDs(c *nn.Ctx, name string, ids []int, shape ...int) *G.Node {
	return G.NewTensor(c.Graph(), tensor.Int, len(shape), G.WithShape(shape...), G.WithName(name),
		G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]int(nil), ids...)))))
}

// coreSetParam overwrites the store tensor of the full parameter name.
func coreSetParam(t *testing.T, c *nn.Ctx, name string, vals []float64) {
	t.Helper()
	p := c.Store().Lookup(name)
	if p == nil {
		t.Fatalf("no parameter %q", name)
	}
	if err := nn.SetFromFloat64(p.Value, vals); err != nil {
		t.Fatal(err)
	}
}

// coreClose fails unless got and want agree elementwise within
// atol + rtol·|want|.
func coreClose(t *testing.T, what string, got, want []float64, rtol, atol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(got[i] - want[i]); !(d <= atol+rtol*math.Abs(want[i])) {
			t.Errorf("%s[%d] = %.17g, want %.17g", what, i, got[i], want[i])
		}
	}
}

// coreErrContains fails unless err is non-nil and contains every part.
func coreErrContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func coreSeq(n int, f func(i int) float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = f(i)
	}
	return v
}

func TestActivationValues(t *testing.T) {
	x := []float64{-3, -1, -0.5, 0.5, 1, 2.5}
	cases := []struct {
		name string
		want []float64
	}{
		{"relu", []float64{0, 0, 0, 0.5, 1, 2.5}},
		{"gelu", []float64{-0.00404969409489031, -0.15865525393145702, -0.15426876936299344, 0.34573123063700656, 0.841344746068543, 2.4844758366855597}},
		{"silu", []float64{-0.14227761953270035, -0.2689414213699951, -0.1887703343990727, 0.3112296656009273, 0.7310585786300049, 2.3103545499468914}},
		{"tanh", []float64{-0.9950547536867305, -0.7615941559557649, -0.46211715726000974, 0.46211715726000974, 0.7615941559557649, 0.9866142981514303}},
		{"sigmoid", []float64{0.04742587317756678, 0.2689414213699951, 0.3775406687981454, 0.6224593312018546, 0.7310585786300049, 0.9241418199787566}},
		{"lecun_tanh", []float64{-1.6539319970975412, -0.9992415499901803, -0.5511708091614279, 0.5511708091614279, 0.9992415499901803, 1.5973099289035562}},
		{"identity", x},
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, tc := range cases {
			t.Run(tc.name+"/"+dt.String(), func(t *testing.T) {
				f, err := nn.ActivationByName(tc.name)
				if err != nil {
					t.Fatal(err)
				}
				res := coreMustRun(t, dt, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
					y, err := f(coreInput(c, "x", x, 2, 3))
					return coreGraph{outs: G.Nodes{y}}, err
				})
				tol := 1e-15
				if dt == tensor.Float32 {
					tol = 1e-6
				}
				coreClose(t, tc.name, res.vals[0], tc.want, tol, tol)
			})
		}
	}
}

// TestActivationDerivatives reads the analytic gradients of Σ f(x) at fixed
// points, including x = −40 where a naive sigmoid derivative underflows to
// a wrong value or NaN.
func TestActivationDerivatives(t *testing.T) {
	x := []float64{-40, -1, 1, 2.5}
	cases := []struct {
		f    func(*G.Node) (*G.Node, error)
		name string
		want []float64
	}{
		{nn.GELU, "gelu", []float64{0, -0.08331547058768635, 1.0833154705876864, 1.037611085908145}},
		{nn.SiLU, "silu", []float64{-1.6568581595637197e-16, 0.07232948812851325, 0.9276705118714869, 1.0994011113415267}},
		{nn.Sigmoid, "sigmoid", []float64{4.248354255291589e-18, 0.19661193324148185, 0.19661193324148185, 0.07010371654510807}},
		{nn.LeCunTanh, "lecun_tanh", []float64{0, 0.7552434312949274, 0.7552434312949274, 0.1525034043262389}},
		{nn.Tanh, "tanh", []float64{0, 0.41997434161402614, 0.41997434161402614, 0.02659222668316057}},
		{nn.ReLU, "relu", []float64{0, 0, 1, 1}},
	}
	for _, tc := range cases {
		res := coreMustRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
			in := coreInput(c, "x", x, 4)
			y, err := tc.f(in)
			if err != nil {
				return coreGraph{}, err
			}
			l, err := G.Sum(y)
			return coreGraph{loss: l, wrt: G.Nodes{in}}, err
		})
		coreClose(t, "d"+tc.name, res.grads[0], tc.want, 1e-13, 1e-300)
	}
}

func TestActivationSigmoidLargeInputs(t *testing.T) {
	// σ(±800) must be exactly 0 and 1 (a naive 1/(1+e^800) is fine, but
	// e^800/(1+e^800) is NaN); σ(−40) keeps full relative precision.
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		res := coreMustRun(t, dt, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
			y, err := nn.Sigmoid(coreInput(c, "x", []float64{-800, -40, 40, 800}, 4))
			return coreGraph{outs: G.Nodes{y}}, err
		})
		want := []float64{0, 4.248354255291589e-18, 1, 1}
		coreClose(t, "sigmoid "+dt.String(), res.vals[0], want, 1e-6, 0)
	}
}

func TestActivationGradients(t *testing.T) {
	for _, name := range []string{"relu", "gelu", "silu", "tanh", "sigmoid", "lecun_tanh"} {
		t.Run(name, func(t *testing.T) {
			f, err := nn.ActivationByName(name)
			if err != nil {
				t.Fatal(err)
			}
			nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
				// Entries at least 0.1 away from ReLU's kink; ±12 probes the
				// saturated tails.
				vals := coreSeq(24, func(i int) float64 { return 0.1 + 0.37*float64(i%8) - 1.4*float64(i%3) })
				vals[5], vals[17] = 12, -12
				x := coreInput(c, "x", vals, 2, 3, 4)
				y, err := f(x)
				if err != nil {
					return nil, nil, err
				}
				l, err := nntest.WeightedSum(y, 7)
				return l, G.Nodes{x}, err
			}, nntest.Options{Entries: 24, MinChecked: 1})
		})
	}
}

func TestActivationByNameErrors(t *testing.T) {
	_, err := nn.ActivationByName("swish")
	coreErrContains(t, err, `"swish"`, "relu", "gelu", "silu", "tanh", "sigmoid", "lecun_tanh", "identity")
	if f, err := nn.ActivationByName(" LeCun_Tanh "); err != nil || f == nil {
		t.Errorf("case-insensitive lookup failed: %v", err)
	}
	_, err = nn.ReLU(nil)
	coreErrContains(t, err, "nil input")
}

func TestSoftmaxValues(t *testing.T) {
	// Rows: [1,2,3] (PyTorch values), a row of large logits that overflow a
	// naive exp, and a constant row (uniform by symmetry).
	x := []float64{1, 2, 3, 1000, 1001, 1000, -7, -7, -7}
	res := coreMustRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
		in := coreInput(c, "x", x, 3, 3)
		s, err := nn.Softmax(in)
		if err != nil {
			return coreGraph{}, err
		}
		ls, err := nn.LogSoftmax(in)
		return coreGraph{outs: G.Nodes{s, ls}}, err
	})
	e := math.E
	big := []float64{1 / (2 + e), e / (2 + e), 1 / (2 + e)}
	want := append([]float64{0.09003057317038045, 0.2447284710547976, 0.6652409557748218}, big...)
	want = append(want, 1.0/3, 1.0/3, 1.0/3)
	coreClose(t, "softmax", res.vals[0], want, 1e-14, 0)
	for r := 0; r < 3; r++ {
		var s float64
		for j := 0; j < 3; j++ {
			s += res.vals[0][3*r+j]
			if got, w := res.vals[1][3*r+j], math.Log(want[3*r+j]); math.Abs(got-w) > 1e-13 {
				t.Errorf("logsoftmax[%d][%d] = %g, want %g", r, j, got, w)
			}
		}
		if math.Abs(s-1) > 1e-15 {
			t.Errorf("softmax row %d sums to %.17g", r, s)
		}
	}
}

func TestSoftmaxGradients(t *testing.T) {
	for _, f := range []func(*G.Node) (*G.Node, error){nn.Softmax, nn.LogSoftmax} {
		nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
			x := coreInput(c, "x", nntest.RandInput(4, 2, 2, 3, 5).Data().([]float64), 2, 3, 5)
			y, err := f(x)
			if err != nil {
				return nil, nil, err
			}
			l, err := nntest.WeightedSum(y, 8)
			return l, G.Nodes{x}, err
		}, nntest.Options{Entries: 30, MinChecked: 1})
	}
}

// TestReLULargeSplitsOverCores runs ReLU forward and backward on a tensor
// above ParallelRange's threshold (2^15 elements), where the loops are
// split over the cores, and checks every element against the definition.
func TestReLULargeSplitsOverCores(t *testing.T) {
	const n = 1<<15 + 123
	vals := coreSeq(n, func(i int) float64 { return float64(i%7) - 3 })
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 1, G.WithShape(n), G.WithName("x"), G.WithValue(nn.NewDense(tensor.Float64, []int{n}, vals)))
	y, err := nn.ReLU(x)
	if err != nil {
		t.Fatal(err)
	}
	w := coreSeq(n, func(i int) float64 { return float64(i%5) + 1 })
	wn := G.NewTensor(g, tensor.Float64, 1, G.WithShape(n), G.WithName("w"), G.WithValue(nn.NewDense(tensor.Float64, []int{n}, w)))
	loss, err := G.Sum(G.Must(G.HadamardProd(y, wn)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := G.Grad(loss, x); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g, G.BindDualValues(x))
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	gv, err := x.Grad()
	if err != nil {
		t.Fatal(err)
	}
	dx := nn.Slice[float64](gv.(*tensor.Dense))
	for i, v := range vals {
		wantDx := 0.0
		if v > 0 {
			wantDx = w[i]
		}
		if dx[i] != wantDx {
			t.Fatalf("dx[%d] = %g, want %g (x = %g)", i, dx[i], wantDx, v)
		}
	}
	want := 0.0
	for i, v := range vals {
		want += max(v, 0) * w[i]
	}
	if got, _ := nn.ScalarValue(loss); got != want {
		t.Fatalf("Σ relu(x)·w = %g, want %g", got, want)
	}
}
