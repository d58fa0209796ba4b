package vm_test

import (
	"math/rand"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/vm"
)

// mixedGraph builds loss = Σ tanh(x·W + b)·c + Σ (x·W)² over a mix of
// Gorgonia's own ops (MatMul, broadcast add, Tanh, HadamardProd, Sum, a
// constant, a view-returning Reshape) and lsfuse kernels (nn.Linear's
// fused op via nn.Reshape and nn.Add), so the Machine runs both kinds.
func mixedGraph(t *testing.T, seed int64) (g *G.ExprGraph, x, loss *G.Node, learn G.Nodes) {
	t.Helper()
	g = G.NewGraph()
	rng := rand.New(rand.NewSource(seed))
	fill := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	x = G.NewMatrix(g, tensor.Float64, G.WithShape(4, 3), G.WithName("x"))
	w := G.NewMatrix(g, tensor.Float64, G.WithShape(3, 5), G.WithName("w"),
		G.WithValue(tensor.New(tensor.WithShape(3, 5), tensor.WithBacking(fill(15)))))
	b := G.NewVector(g, tensor.Float64, G.WithShape(5), G.WithName("b"),
		G.WithValue(tensor.New(tensor.WithShape(5), tensor.WithBacking(fill(5)))))
	c := G.NewConstant(tensor.New(tensor.WithShape(4, 5), tensor.WithBacking(fill(20))), G.WithName("c"))
	xw := G.Must(G.Mul(x, w))
	pre := G.Must(G.BroadcastAdd(xw, b, nil, []byte{0}))
	act := G.Must(G.Tanh(pre))
	flat := G.Must(G.Reshape(act, tensor.Shape{20}))
	back := G.Must(nn.Reshape(flat, 4, 5))
	sum := G.Must(nn.Add(back, G.Must(G.HadamardProd(xw, xw))))
	loss = G.Must(G.Sum(G.Must(G.HadamardProd(sum, c))))
	learn = G.Nodes{w, b}
	if _, err := G.Grad(loss, learn...); err != nil {
		t.Fatal(err)
	}
	return g, x, loss, learn
}

func letInput(t *testing.T, x *G.Node, seed int64) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	v := make([]float64, 12)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	if err := G.Let(x, tensor.New(tensor.WithShape(4, 3), tensor.WithBacking(v))); err != nil {
		t.Fatal(err)
	}
}

func grads(t *testing.T, learn G.Nodes) [][]float64 {
	t.Helper()
	var out [][]float64
	for _, n := range learn {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]float64(nil), nn.Slice[float64](gv.(*tensor.Dense))...))
	}
	return out
}

// TestMachineMatchesTapeMachineOnGorgoniaOps runs the mixed graph three
// times with different inputs on both machines: losses agree exactly on
// every run, and gradients accumulate over the runs (no zeroing between
// them) to exactly the same sums. The third run reuses every buffer.
func TestMachineMatchesTapeMachineOnGorgoniaOps(t *testing.T) {
	gt, xt, lt, learnT := mixedGraph(t, 1)
	gm, xm, lm, learnM := mixedGraph(t, 1)
	tape := G.NewTapeMachine(gt, G.BindDualValues(learnT...))
	defer tape.Close()
	m, err := vm.New(gm, learnM)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for run := int64(0); run < 3; run++ {
		letInput(t, xt, 10+run)
		letInput(t, xm, 10+run)
		if err := tape.RunAll(); err != nil {
			t.Fatal(err)
		}
		tape.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		a, _ := nn.ScalarValue(lt)
		b, _ := nn.ScalarValue(lm)
		if a != b || a == 0 {
			t.Fatalf("run %d: Machine loss %.17g, TapeMachine %.17g", run, b, a)
		}
	}
	want, got := grads(t, learnT), grads(t, learnM)
	for i := range want {
		for j := range want[i] {
			if want[i][j] != got[i][j] {
				t.Fatalf("%s[%d]: Machine gradient %.17g, TapeMachine %.17g", learnT[i].Name(), j, got[i][j], want[i][j])
			}
		}
	}
}

// TestMachineGradientIsAccumulatedSum checks the accumulation contract on
// its own: after two runs on the same input the gradient is twice that of
// one run, and zeroing the buffer restarts the sum.
func TestMachineGradientIsAccumulatedSum(t *testing.T) {
	g, x, _, learn := mixedGraph(t, 2)
	m, err := vm.New(g, learn)
	if err != nil {
		t.Fatal(err)
	}
	letInput(t, x, 3)
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	once := grads(t, learn)
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	twice := grads(t, learn)
	for i := range once {
		for j := range once[i] {
			if twice[i][j] != 2*once[i][j] {
				t.Fatalf("%s[%d]: two runs gave %g, one run %g", learn[i].Name(), j, twice[i][j], once[i][j])
			}
		}
	}
	for _, n := range learn {
		gv, _ := n.Grad()
		gv.(*tensor.Dense).Zero()
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	again := grads(t, learn)
	for i := range once {
		for j := range once[i] {
			if again[i][j] != once[i][j] {
				t.Fatalf("%s[%d] after zeroing: %g, want %g", learn[i].Name(), j, again[i][j], once[i][j])
			}
		}
	}
}

// TestMachineKeepsIntermediateValues: every node's value stays readable
// after a run and is recomputed in place on the next one (the TapeMachine
// may hand an intermediate node's register to a later op).
func TestMachineKeepsIntermediateValues(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 2), G.WithName("x"))
	y := G.Must(nn.Add(x, x))
	z := G.Must(nn.Add(y, y))
	m, err := vm.New(g, nil, vm.EvalMode())
	if err != nil {
		t.Fatal(err)
	}
	var first *tensor.Dense
	for run, v := range []float64{1, 5} {
		if err := G.Let(x, tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{v, v, v, v}))); err != nil {
			t.Fatal(err)
		}
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		yv, zv := y.Value().(*tensor.Dense), z.Value().(*tensor.Dense)
		if got := nn.Slice[float64](yv)[3]; got != 2*v {
			t.Errorf("run %d: y = %g, want %g", run, got, 2*v)
		}
		if got := nn.Slice[float64](zv)[0]; got != 4*v {
			t.Errorf("run %d: z = %g, want %g", run, got, 4*v)
		}
		if run == 0 {
			first = yv
		} else if yv != first {
			t.Errorf("run %d: y got a new buffer; want its previous output reused", run)
		}
	}
}

// TestMachineNamesUnboundInput: running without a bound input is an error
// naming the node that needed it, not a panic.
func TestMachineNamesUnboundInput(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 2), G.WithName("images"))
	if _, err := nn.Add(x, x); err != nil {
		t.Fatal(err)
	}
	m, err := vm.New(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = m.RunAll()
	if err == nil || !strings.Contains(err.Error(), "images") {
		t.Fatalf("RunAll without input: %v, want an error naming images", err)
	}
}
