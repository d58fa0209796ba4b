package vm

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Machine runs every node of a Gorgonia expression graph in topological
// order, keeping each node's output tensor from one run to the next: ops
// that can write into a preallocated value (Gorgonia's UsePreallocDoer,
// which every nn.Kernel op implements) get their previous output back, so
// a steady-state run allocates almost nothing. Values stay bound to their
// nodes after a run (Node.Value works for every node, not only roots).
//
// Gradients: for each node passed as learnable, the value of its gradient
// node (set by G.Grad before New) is added after every run into a gradient
// buffer bound to the node as G.WithGrad does, so Node.Grad() returns the
// sum over runs until it is zeroed — the accumulation a G.TapeMachine made
// with G.BindDualValues performs (DESIGN.md fact 4).
//
// A Machine is not safe for concurrent use; inputs are rebound with G.Let
// between runs as with the TapeMachine.
type Machine struct {
	steps []step
	grads []gradSink
	// train is what ops implementing G.TrainModeOp are told.
	train bool
}

// step is one node to execute: its op, the nodes it reads, and the output
// kept from the previous run.
type step struct {
	node *G.Node
	op   G.Op
	in   G.Nodes
	args []G.Value
	// pre is set when the op can write into its previous output.
	pre G.UsePreallocDoer
	out G.Value
}

// gradSink adds a learnable's gradient node value into its gradient buffer.
type gradSink struct {
	of, grad *G.Node
	acc      *tensor.Dense
}

// Option configures a Machine.
type Option func(*Machine)

// EvalMode tells ops implementing G.TrainModeOp that they run for
// evaluation (the TapeMachine's G.EvalMode). lsfuse's own kernels take the
// mode from nn.Ctx when the graph is built.
func EvalMode() Option { return func(m *Machine) { m.train = false } }

// New compiles g for execution. learn are the parameter nodes whose
// gradients accumulate (G.Grad must already have added the gradient
// nodes); it may be empty for inference graphs.
func New(g *G.ExprGraph, learn G.Nodes, opts ...Option) (*Machine, error) {
	sorted, err := G.Sort(g)
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	m := &Machine{train: true}
	for _, o := range opts {
		o(m)
	}
	for i := len(sorted) - 1; i >= 0; i-- {
		n := sorted[i]
		op := n.Op()
		if op == nil {
			continue // an input or parameter: its bound value is read as is
		}
		if tm, ok := op.(G.TrainModeOp); ok {
			tm.SetTraining(m.train)
		}
		s := step{node: n, op: op}
		for it := g.From(n.ID()); it.Next(); {
			s.in = append(s.in, it.Node().(*G.Node))
		}
		if len(s.in) == 0 && n.Value() != nil {
			continue // a constant: its value is bound at construction
		}
		s.args = make([]G.Value, len(s.in))
		// Gorgonia's ReturnsPtr means "returns a tensor", not "returns a
		// view": its elementwise ops honour the preallocated value only
		// when it is true. Views are caught on the first run (aliasesInput).
		if pd, ok := op.(G.UsePreallocDoer); ok {
			s.pre = pd
		}
		m.steps = append(m.steps, s)
	}
	for _, w := range learn {
		sink, err := newGradSink(w)
		if err != nil {
			return nil, err
		}
		m.grads = append(m.grads, sink)
	}
	return m, nil
}

// newGradSink binds a zeroed gradient buffer of w's shape and dtype to w
// (replacing the one a TapeMachine may have bound).
func newGradSink(w *G.Node) (gradSink, error) {
	wv, ok := w.Value().(*tensor.Dense)
	if !ok {
		return gradSink{}, fmt.Errorf("vm: learnable %s has value %T, want a dense tensor", w.Name(), w.Value())
	}
	acc := tensor.New(tensor.Of(wv.Dtype()), tensor.WithShape(wv.Shape().Clone()...))
	if err := nn.Catch("bind gradient of "+w.Name(), func() error { G.WithGrad(acc)(w); return nil }); err != nil {
		return gradSink{}, fmt.Errorf("vm: %w", err)
	}
	return gradSink{of: w, grad: w.Deriv(), acc: acc}, nil
}

// RunAll executes every node once and adds the learnables' gradients into
// their buffers.
func (m *Machine) RunAll() error {
	for i := range m.steps {
		if err := m.steps[i].run(); err != nil {
			return err
		}
	}
	for _, s := range m.grads {
		if s.grad == nil {
			continue // the loss does not depend on it: its gradient is 0
		}
		if err := accumulate(s.acc, s.grad.Value()); err != nil {
			return fmt.Errorf("vm: gradient of %s: %w", s.of.Name(), err)
		}
	}
	return nil
}

func (s *step) run() error {
	for i, n := range s.in {
		v := n.Value()
		if v == nil {
			return fmt.Errorf("vm: node %s: input %d (%s) has no value", s.node.Name(), i, n.Name())
		}
		s.args[i] = v
	}
	var v G.Value
	var err error
	if s.pre != nil && s.out != nil {
		v, err = s.pre.UsePreallocDo(s.out, s.args...)
	} else {
		v, err = s.op.Do(s.args...)
	}
	if err != nil {
		return fmt.Errorf("vm: node %s (%v): %w", s.node.Name(), s.op, err)
	}
	if s.out == nil && s.pre != nil && aliasesInput(v, s.args) {
		s.pre = nil // an op that returns (part of) an input: never write into it
	}
	clear(s.args)
	if v != s.out {
		if err := G.UnsafeLet(s.node, v); err != nil {
			return fmt.Errorf("vm: node %s: %w", s.node.Name(), err)
		}
		s.out = v
	}
	return nil
}

// aliasesInput reports whether v shares memory with one of args.
func aliasesInput(v G.Value, args []G.Value) bool {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return false
	}
	for _, a := range args {
		if ad, ok := a.(*tensor.Dense); ok && overlaps(d, ad) {
			return true
		}
	}
	return false
}

func overlaps(a, b *tensor.Dense) bool {
	as, ae := a.Uintptr(), a.Uintptr()+a.MemSize()
	bs, be := b.Uintptr(), b.Uintptr()+b.MemSize()
	return as < be && bs < ae
}

// accumulate adds g into acc elementwise.
func accumulate(acc *tensor.Dense, g G.Value) error {
	gd, ok := g.(*tensor.Dense)
	if !ok {
		return fmt.Errorf("value %T, want a dense tensor", g)
	}
	if gd.Dtype() != acc.Dtype() || gd.Shape().TotalSize() != acc.Shape().TotalSize() {
		return fmt.Errorf("%v %v into a buffer of %v %v", gd.Dtype(), gd.Shape(), acc.Dtype(), acc.Shape())
	}
	if !gd.IsNativelyAccessible() || gd.RequiresIterator() {
		gd = gd.Materialize().(*tensor.Dense)
	}
	switch acc.Dtype() {
	case tensor.Float64:
		addInto(nn.Slice[float64](acc), nn.Slice[float64](gd))
	case tensor.Float32:
		addInto(nn.Slice[float32](acc), nn.Slice[float32](gd))
	default:
		return fmt.Errorf("unsupported dtype %v", acc.Dtype())
	}
	return nil
}

func addInto[T nn.Float](acc, g []T) {
	g = g[:len(acc)]
	for i, v := range g {
		acc[i] += v
	}
}

// Reset is a no-op kept for G.VM: outputs are overwritten by the next run.
func (m *Machine) Reset() {}

// Close drops the machine's references to its buffers.
func (m *Machine) Close() error {
	m.steps, m.grads = nil, nil
	return nil
}

var _ G.VM = (*Machine)(nil)
