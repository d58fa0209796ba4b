package modality_test

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// mustNew builds a preprocessor or fails the test.
func mustNew(t testing.TB, cfg modality.Config) modality.Preprocessor {
	t.Helper()
	p, err := modality.New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Kind, err)
	}
	return p
}

// inputNode adds the input "x" holding vals (float, of dtype dt) or ids
// (tensor.Int) to the graph.
func inputNode(g *G.ExprGraph, dt tensor.Dtype, shape []int, vals []float64, ids []int) *G.Node {
	if ids != nil {
		v := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]int(nil), ids...)))
		return G.NewTensor(g, tensor.Int, len(shape), G.WithShape(shape...), G.WithName("x"), G.WithValue(v))
	}
	return G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithName("x"), G.WithValue(nn.NewDense(dt, shape, vals)))
}

// runResult is the output of one forward run.
type runResult struct {
	y     []float64
	shape tensor.Shape
	store *nn.Store
}

// forward builds p under scope "pre" on a fresh store (seed 1) and runs it
// once on the input. store, when not nil, is reused (to share parameters
// between runs).
func forward(t testing.TB, p modality.Preprocessor, dt tensor.Dtype, train bool, shape []int, vals []float64, ids []int, store *nn.Store) runResult {
	t.Helper()
	if store == nil {
		var err error
		if store, err = nn.NewStore(dt, 1); err != nil {
			t.Fatal(err)
		}
	}
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{Train: train})
	x := inputNode(g, dt, shape, vals, ids)
	var y *G.Node
	if err := nn.Catch("test", func() error {
		var err error
		y, err = p.Forward(c.Sub("pre"), x)
		return err
	}); err != nil {
		t.Fatalf("build: %v", err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatalf("run: %v", err)
	}
	out, err := nn.ToFloat64(y.Value().(tensor.Tensor))
	if err != nil {
		t.Fatal(err)
	}
	return runResult{y: out, shape: y.Shape().Clone(), store: store}
}

// buildErr builds p on input x of the given shape/dtype and returns the
// build error (nil if it built).
func buildErr(p modality.Preprocessor, dt tensor.Dtype, shape []int) error {
	store, err := nn.NewStore(tensor.Float64, 1)
	if err != nil {
		return err
	}
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{})
	x := G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithName("x"))
	return nn.Catch("test", func() error {
		_, err := p.Forward(c.Sub("pre"), x)
		return err
	})
}

// gradCheck runs nntest.Check on Σ r·p(x) in training mode (batch
// statistics, fixed dropout masks), checking 3 random entries of every
// parameter and, for float inputs, of x.
func gradCheck(t *testing.T, p modality.Preprocessor, shape []int, vals []float64, ids []int, minChecked int) nntest.Result {
	t.Helper()
	return gradCheckN(t, p, shape, vals, ids, minChecked, 3)
}

// gradCheckN is gradCheck with entries entries per tensor.
func gradCheckN(t *testing.T, p modality.Preprocessor, shape []int, vals []float64, ids []int, minChecked, entries int) nntest.Result {
	t.Helper()
	res := nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		x := inputNode(c.Graph(), tensor.Float64, shape, vals, ids)
		y, err := p.Forward(c.Sub("pre"), x)
		if err != nil {
			return nil, nil, err
		}
		if got := y.Shape(); got.Dims() != 2 || got[0] != shape[0] || got[1] != p.OutputDim() {
			return nil, nil, fmt.Errorf("output shape %v, want [%d %d]", got, shape[0], p.OutputDim())
		}
		loss, err := nntest.WeightedSum(y, 7)
		if ids != nil {
			return loss, nil, err
		}
		return loss, G.Nodes{x}, err
	}, nntest.Options{Train: true, Entries: entries, MinChecked: minChecked})
	t.Logf("gradcheck: %d tensors, %d entries, max error/tolerance %.3g", res.Checked, res.Entries, res.MaxError)
	return res
}

// randVals returns n N(0, scale²) values from seed.
func randVals(seed int64, scale float64, n int) []float64 {
	rng := rand.New(rand.NewSource(seed))
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * rng.NormFloat64()
	}
	return v
}

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// wantErr fails unless err is non-nil and contains every substring.
func wantErr(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

// assertClose fails unless a and b agree to atol + rtol·|b| elementwise.
func assertClose(t *testing.T, what string, got, want []float64, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(got[i] - want[i]); d > atol+rtol*math.Abs(want[i]) || math.IsNaN(got[i]) {
			t.Fatalf("%s[%d] = %.12g, want %.12g (|diff| %.3g)", what, i, got[i], want[i], d)
		}
	}
}

// param returns a stored parameter's values as float64.
func param(t testing.TB, s *nn.Store, name string) []float64 {
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

// paramShapes maps each stored tensor's name to its shape.
func paramShapes(s *nn.Store) map[string]string {
	m := map[string]string{}
	for _, p := range s.Params() {
		m[p.Name] = fmt.Sprintf("%v", []int(p.Value.Shape()))
	}
	return m
}
