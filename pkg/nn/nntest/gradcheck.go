// Package nntest checks Gorgonia graphs built with pkg/nn: float64
// central-difference gradient checks of every trainable parameter (and
// optionally of float inputs) against the graph's symbolic gradients.
package nntest

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Options tune a gradient check. The zero value is usable.
type Options struct {
	// Seed seeds parameter init and the choice of checked entries (0: 1).
	Seed int64
	// Entries is how many random entries per tensor are checked (0: 6).
	Entries int
	// Step is the central-difference step (0: 1e-6).
	Step float64
	// RTol and ATol: |analytic-numeric| <= ATol + RTol·max(|a|,|n|)
	// (0: 1e-5 and 1e-8).
	RTol, ATol float64
	// Train builds the graph in training mode (batch statistics, fixed
	// dropout masks).
	Train bool
	// Skip lists parameter names that are not checked, with the reason in
	// the caller's comment (e.g. parameters behind a non-smooth op).
	Skip map[string]bool
	// MinChecked fails the check when fewer parameters than this were
	// checked (guards against a graph that silently uses no parameters).
	MinChecked int
}

// Build adds a scalar loss to the graph behind c and returns it together
// with any float input nodes whose gradients should also be checked (their
// values must be bound with G.Let or WithValue inside build).
type Build func(c *nn.Ctx) (loss *G.Node, inputs G.Nodes, err error)

// Result reports what a check covered.
type Result struct {
	Checked  int     // tensors checked
	Entries  int     // entries compared
	MaxError float64 // largest |a-n| / (ATol + RTol·max(|a|,|n|)); must be ≤ 1
}

// Check builds the graph in float64, computes symbolic gradients of the loss
// with respect to every learnable parameter and every returned input, and
// compares random entries with central differences of the loss. It reports
// every mismatch with t.Errorf and returns what it covered.
func Check(t testing.TB, build Build, opt Options) Result {
	t.Helper()
	res, err := check(build, opt, t)
	if err != nil {
		t.Fatalf("gradcheck: %v", err)
	}
	if res.Checked < opt.MinChecked {
		t.Errorf("gradcheck: checked %d tensors, want at least %d", res.Checked, opt.MinChecked)
	}
	return res
}

func check(build Build, opt Options, t testing.TB) (Result, error) {
	if opt.Seed == 0 {
		opt.Seed = 1
	}
	if opt.Entries == 0 {
		opt.Entries = 6
	}
	if opt.Step == 0 {
		opt.Step = 1e-6
	}
	if opt.RTol == 0 {
		opt.RTol = 1e-5
	}
	if opt.ATol == 0 {
		opt.ATol = 1e-8
	}
	store, err := nn.NewStore(tensor.Float64, opt.Seed)
	if err != nil {
		return Result{}, err
	}
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{Train: opt.Train, FixedNoise: true, NoiseSeed: opt.Seed})
	var loss *G.Node
	var inputs G.Nodes
	if err := nn.Catch("gradcheck", func() error {
		var err error
		loss, inputs, err = build(c)
		return err
	}); err != nil {
		return Result{}, err
	}
	if !loss.IsScalar() {
		return Result{}, fmt.Errorf("loss has shape %v, want a scalar", loss.Shape())
	}
	var wrt G.Nodes
	for _, n := range c.Learnables() {
		if !opt.Skip[n.Name()] {
			wrt = append(wrt, n)
		}
	}
	wrt = append(wrt, inputs...)
	if len(wrt) == 0 {
		return Result{}, fmt.Errorf("nothing to check")
	}
	if _, err := G.Grad(loss, wrt...); err != nil {
		return Result{}, fmt.Errorf("symbolic gradient: %w", err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(wrt...))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return Result{}, fmt.Errorf("forward/backward: %w", err)
	}
	analytic := make([][]float64, len(wrt))
	for i, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			return Result{}, fmt.Errorf("%s: no gradient: %w", n.Name(), err)
		}
		if analytic[i], err = nn.ToFloat64(gv.(tensor.Tensor)); err != nil {
			return Result{}, err
		}
	}
	vm.Reset()
	evalLoss := func() (float64, error) {
		defer vm.Reset()
		if err := vm.RunAll(); err != nil {
			return 0, err
		}
		return nn.ScalarValue(loss)
	}
	rng := rand.New(rand.NewSource(opt.Seed))
	res := Result{}
	for i, n := range wrt {
		val, ok := n.Value().(*tensor.Dense)
		if !ok {
			return res, fmt.Errorf("%s: value is %T", n.Name(), n.Value())
		}
		data := val.Data().([]float64)
		idx := pick(len(data), opt.Entries, rng)
		for _, j := range idx {
			orig := data[j]
			data[j] = orig + opt.Step
			lp, err := evalLoss()
			if err != nil {
				return res, err
			}
			data[j] = orig - opt.Step
			lm, err := evalLoss()
			data[j] = orig
			if err != nil {
				return res, err
			}
			num := (lp - lm) / (2 * opt.Step)
			a := analytic[i][j]
			tol := opt.ATol + opt.RTol*math.Max(math.Abs(a), math.Abs(num))
			e := math.Abs(a-num) / tol
			if math.IsNaN(e) {
				e = math.Inf(1)
			}
			if e > res.MaxError {
				res.MaxError = e
			}
			if e > 1 {
				t.Errorf("gradcheck %s[%d]: analytic %.10g, numeric %.10g (|diff| %.3g > tol %.3g)", n.Name(), j, a, num, math.Abs(a-num), tol)
			}
			res.Entries++
		}
		res.Checked++
	}
	return res, nil
}

func pick(n, k int, rng *rand.Rand) []int {
	if k >= n {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	return rng.Perm(n)[:k]
}

// RandInput returns a float64 tensor of the given shape with N(0, scale²)
// entries from seed, for binding to graph inputs in tests.
func RandInput(seed int64, scale float64, shape ...int) *tensor.Dense {
	rng := rand.New(rand.NewSource(seed))
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * rng.NormFloat64()
	}
	return nn.NewDense(tensor.Float64, shape, v)
}

// WeightedSum returns Σ x·r with r a fixed random tensor of x's shape: a
// scalar loss whose gradient reaches every element of x with a different
// weight (a plain sum would hide permutation errors).
func WeightedSum(x *G.Node, seed int64) (*G.Node, error) {
	r := G.NewConstant(RandInput(seed, 1, x.Shape()...), G.WithName(fmt.Sprintf("probe%d", seed)))
	p, err := G.HadamardProd(x, r)
	if err != nil {
		return nil, err
	}
	return G.Sum(p)
}
