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

// spikeForwardBackward runs Spike on the values xs (a [1,len] tensor of
// dtype dt) and returns the forward values and d(Σ r·spike)/dx for the
// probe weights r.
func spikeForwardBackward(t *testing.T, dt tensor.Dtype, sur nn.Surrogate, xs, r []float64) (fwd, grad []float64) {
	t.Helper()
	g := G.NewGraph()
	shape := []int{1, len(xs)}
	x := G.NewTensor(g, dt, 2, G.WithShape(shape...), G.WithName("x"), G.WithValue(nn.NewDense(dt, shape, xs)))
	y, err := nn.Spike(x, sur)
	if err != nil {
		t.Fatal(err)
	}
	probe := G.NewConstant(nn.NewDense(dt, shape, r))
	p, err := G.HadamardProd(y, probe)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := G.Sum(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := G.Grad(loss, x); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(x))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	if fwd, err = nn.ToFloat64(y.Value().(tensor.Tensor)); err != nil {
		t.Fatal(err)
	}
	gv, err := x.Grad()
	if err != nil {
		t.Fatal(err)
	}
	if grad, err = nn.ToFloat64(gv.(tensor.Tensor)); err != nil {
		t.Fatal(err)
	}
	return fwd, grad
}

func closeTo(t *testing.T, what string, got, want, rtol float64) {
	t.Helper()
	if math.Abs(got-want) > rtol*math.Max(1, math.Abs(want)) || math.IsNaN(got) {
		t.Errorf("%s = %.15g, want %.15g", what, got, want)
	}
}

func TestSpikeForwardIsStrictHeaviside(t *testing.T) {
	xs := []float64{-1, -1e-300, 0, 1e-300, 0.5, 3}
	want := []float64{0, 0, 0, 1, 1, 1}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		fwd, _ := spikeForwardBackward(t, dt, nn.Surrogate{}, xs, make([]float64, len(xs)))
		if dt == tensor.Float32 {
			want[3] = 0 // 1e-300 underflows to +0 in float32
		}
		for i := range xs {
			if fwd[i] != want[i] {
				t.Errorf("%v: H(%g) = %g, want %g", dt, xs[i], fwd[i], want[i])
			}
		}
	}
}

func TestSpikeSurrogateBackward(t *testing.T) {
	// Hand-checkable points for each surrogate. r weights the probe loss so
	// the gradient is r·s(x).
	cases := []struct {
		sur  nn.Surrogate
		xs   []float64
		want []float64 // s(x)
	}{
		// 1/(1+25|x|)²: x=±0.04 → 1/4, x=0 → 1, x=0.36 → 1/100.
		{nn.Surrogate{}, []float64{0.04, -0.04, 0, 0.36}, []float64{0.25, 0.25, 1, 0.01}},
		// slope 1: x=1 → 1/4.
		{nn.Surrogate{Kind: "fast_sigmoid", Slope: 1}, []float64{1, -3}, []float64{0.25, 1.0 / 16}},
		// α/2/(1+(π/2·α·x)²), α=2: x=0 → 1, x=±1/π → 1/2.
		{nn.Surrogate{Kind: "atan"}, []float64{0, 1 / math.Pi, -1 / math.Pi}, []float64{1, 0.5, 0.5}},
		// k·σ(kx)(1−σ(kx)), k=25: x=0 → 25/4; x=ln(3)/25 → σ=3/4 → 25·3/16.
		{nn.Surrogate{Kind: "sigmoid"}, []float64{0, math.Log(3) / 25, -math.Log(3) / 25}, []float64{6.25, 25 * 3.0 / 16, 25 * 3.0 / 16}},
		// Stable at extreme inputs: e^{-25·40} underflows to 0, never NaN.
		{nn.Surrogate{Kind: "sigmoid"}, []float64{40, -40}, []float64{0, 0}},
		// k·max(0,1−k|x|), k=1: x=±0.5 → 0.5, |x|≥1 → 0; k=2: x=0.25 → 1.
		{nn.Surrogate{Kind: "triangular"}, []float64{0.5, -0.5, 1, -1.5}, []float64{0.5, 0.5, 0, 0}},
		{nn.Surrogate{Kind: "triangular", Slope: 2}, []float64{0.25, 0}, []float64{1, 2}},
		{nn.Surrogate{Kind: "straight_through"}, []float64{-7, 0, 7}, []float64{1, 1, 1}},
		// Scale multiplies; Off zeroes.
		{nn.Surrogate{Scale: 3}, []float64{0.04}, []float64{0.75}},
		{nn.Surrogate{Kind: "atan", Off: true}, []float64{0, 0.1}, []float64{0, 0}},
	}
	for _, tc := range cases {
		r := make([]float64, len(tc.xs))
		for i := range r {
			r[i] = float64(i) + 0.5
		}
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			_, grad := spikeForwardBackward(t, dt, tc.sur, tc.xs, r)
			tol := 1e-14
			if dt == tensor.Float32 {
				tol = 1e-6
			}
			for i := range tc.xs {
				closeTo(t, tc.sur.Kind+"/"+dt.String()+" grad", grad[i], r[i]*tc.want[i], tol)
			}
		}
	}
}

func TestSurrogateSmoothForwardIsAntiderivative(t *testing.T) {
	// Central differences of SmoothForward must equal Deriv everywhere except
	// at the triangle's kinks (where the second derivative jumps, the first
	// is still continuous).
	for _, kind := range []string{"fast_sigmoid", "atan", "sigmoid", "triangular", "straight_through"} {
		s, err := nn.Surrogate{Kind: kind, Scale: 1.5, Smooth: true}.Resolved()
		if err != nil {
			t.Fatal(err)
		}
		for x := -2.013; x < 2; x += 0.0371 {
			h := 1e-6
			num := (s.SmoothForward(x+h) - s.SmoothForward(x-h)) / (2 * h)
			closeTo(t, kind+" F'(x)", num, s.Deriv(x), 1e-6)
		}
		if kind != "straight_through" && s.SmoothForward(-1e6) > 1e-4 {
			t.Errorf("%s: F(-inf) = %g, want ≈0", kind, s.SmoothForward(-1e6))
		}
	}
}

func TestSpikeSmoothGradcheck(t *testing.T) {
	// With Smooth, a graph of linear → spike → linear must pass a
	// finite-difference check: the forward's derivative is the backward.
	for _, kind := range []string{"fast_sigmoid", "atan", "sigmoid", "triangular", "straight_through"} {
		t.Run(kind, func(t *testing.T) {
			nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
				x := G.NewTensor(c.Graph(), c.Dtype(), 2, G.WithShape(3, 4), G.WithName("x"), G.WithValue(nntest.RandInput(7, 0.3, 3, 4)))
				h, err := nn.Linear{In: 4, Out: 5}.Forward(c.Sub("a"), x)
				if err != nil {
					return nil, nil, err
				}
				s, err := nn.Spike(h, nn.Surrogate{Kind: kind, Slope: 2, Smooth: true})
				if err != nil {
					return nil, nil, err
				}
				loss, err := nntest.WeightedSum(s, 3)
				return loss, G.Nodes{x}, err
			}, nntest.Options{MinChecked: 3})
		})
	}
}

func TestSurrogateErrors(t *testing.T) {
	cases := []struct {
		sur  nn.Surrogate
		want string
	}{
		{nn.Surrogate{Kind: "relu"}, `unknown kind "relu"`},
		{nn.Surrogate{Kind: "atan", Slope: -1}, "slope must be a positive number"},
		{nn.Surrogate{Scale: math.Inf(1)}, "scale must be finite"},
	}
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(1, 2), G.WithName("x"))
	for _, tc := range cases {
		_, err := nn.Spike(x, tc.sur)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Spike(%+v) error %v, want it to contain %q", tc.sur, err, tc.want)
		}
	}
	s, err := nn.Surrogate{}.Resolved()
	if err != nil || s.Kind != "fast_sigmoid" || s.Slope != 25 || s.Scale != 1 {
		t.Errorf("zero Surrogate resolves to %+v, %v; want fast_sigmoid slope 25 scale 1", s, err)
	}
}

func TestHeavisideHasNoGradient(t *testing.T) {
	// y = x + H(x): the gradient through the detached step is zero, so
	// d(Σy)/dx = 1 exactly.
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(1, 3), G.WithName("x"), G.WithValue(nn.NewDense(tensor.Float64, []int{1, 3}, []float64{-1, 0, 2})))
	h, err := nn.Heaviside(x)
	if err != nil {
		t.Fatal(err)
	}
	y := G.Must(G.Add(x, h))
	loss := G.Must(G.Sum(y))
	if _, err := G.Grad(loss, x); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(x))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	hv, _ := nn.ToFloat64(h.Value().(tensor.Tensor))
	gv, _ := x.Grad()
	gs, _ := nn.ToFloat64(gv.(tensor.Tensor))
	for i, want := range []float64{0, 0, 1} {
		if hv[i] != want || gs[i] != 1 {
			t.Errorf("element %d: H = %g (want %g), grad = %g (want 1)", i, hv[i], want, gs[i])
		}
	}
}
