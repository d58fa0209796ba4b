package cuda

import (
	"fmt"
	"unsafe"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// runHost is the host fallback of a step: its inputs' values on the host
// (inputs as bound, everything else downloaded: the downloads are queued
// behind the work before them and waited for with one Sync), the op's
// own Do (or UsePreallocDo into the previous output), and the output
// uploaded.
func (m *Machine) runHost(st *xstep) error {
	queued := false
	for i, s := range st.in {
		v, q, err := m.hostValueAsync(s)
		if err != nil {
			return err
		}
		st.args[i], queued = v, queued || q
	}
	if queued {
		if err := m.dev.Sync(); err != nil {
			clear(st.args)
			return err
		}
	}
	v, err := doHost(st)
	if err != nil {
		clear(st.args)
		return err
	}
	for _, s := range st.in {
		if s.mutable { // the op updated the mirror in place (running statistics)
			if err := m.dev.upload(s.buf, nn.Slice[float32](s.host.(*tensor.Dense))); err != nil {
				return err
			}
		}
	}
	if d, ok := v.(*tensor.Dense); ok && d.IsNativelyAccessible() && !d.RequiresIterator() && !sharesMemory(d, st.args) {
		st.out.host = d // reused by the next run's UsePreallocDo
	}
	clear(st.args)
	f, err := floats(v)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if len(f) != st.out.buf.N {
		return fmt.Errorf("output has %d values, the graph expects %d", len(f), st.out.buf.N)
	}
	return m.dev.upload(st.out.buf, f)
}

// indexStep plans an op computing integer ids from integer inputs
// (indexFamilies): it runs on the host from the inputs' bound values, its
// result is bound to the node and uploaded as int32, and the ops reading
// it treat it as an input (host values for their checks, no download).
func (m *Machine) indexStep(st *xstep) error {
	for _, s := range st.in {
		if !s.input || !s.ints {
			return fmt.Errorf("cuda: node %s (%v): integer op on %s, which is not an integer input", st.node.Name(), st.op, s.node.Name())
		}
	}
	out := st.out
	out.ints, out.input, out.hostKnown = true, true, true
	var err error
	if out.buf, err = m.alloc(size(st.node)); err != nil {
		return err
	}
	st.kind = Host
	st.args = make([]G.Value, len(st.in))
	st.run = func() error { return m.runIndex(st) }
	m.steps = append(m.steps, st)
	return nil
}

// runIndex runs an index step (indexStep).
func (m *Machine) runIndex(st *xstep) error {
	for i, s := range st.in {
		if st.args[i] = s.node.Value(); st.args[i] == nil {
			return fmt.Errorf("input %s has no value", s.node.Name())
		}
	}
	v, err := st.op.Do(st.args...)
	clear(st.args)
	if err != nil {
		return err
	}
	if err := G.UnsafeLet(st.node, v); err != nil {
		return err
	}
	ints, err := int32s(v, st.out.scratch)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	st.out.scratch = ints
	if len(ints) != st.out.buf.N {
		return fmt.Errorf("output has %d values, the graph expects %d", len(ints), st.out.buf.N)
	}
	return m.dev.uploadInts(st.out.buf, ints)
}

// doHost runs the op's CPU code on st.args (UsePreallocDo into the
// previous output when it can), turning a panic of the op (Gorgonia's
// engine panics on some bad values) into an error.
func doHost(st *xstep) (G.Value, error) {
	if st.pre != nil && st.out.host != nil {
		return recoverDo(st.op, func() (G.Value, error) { return st.pre.UsePreallocDo(st.out.host, st.args...) })
	}
	return recoverDo(st.op, func() (G.Value, error) { return st.op.Do(st.args...) })
}

// recoverDo runs do, an op's CPU code, turning a panic into an error.
func recoverDo(op G.Op, do func() (G.Value, error)) (v G.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("host code of %v panicked: %v", op, r)
		}
	}()
	return do()
}

// sharesMemory reports whether d's data overlaps one of vals (an op that
// returned its input, or part of it: never write into that).
func sharesMemory(d *tensor.Dense, vals []G.Value) bool {
	lo, hi := d.Uintptr(), d.Uintptr()+d.MemSize()
	for _, v := range vals {
		if v == nil {
			continue
		}
		vlo := v.Uintptr()
		if vlo < hi && lo < vlo+v.MemSize() {
			return true
		}
	}
	return false
}

// hostValueAsync returns a node's value on the host: the bound value of
// an input or a constant as is, else the slot's mirror with the download
// of its device buffer queued (queued true): the mirror holds the value
// after the next Sync.
func (m *Machine) hostValueAsync(s *slot) (v G.Value, queued bool, err error) {
	if s.hostKnown {
		if v := s.node.Value(); v != nil {
			return v, false, nil
		}
		return nil, false, fmt.Errorf("input %s has no value", s.node.Name())
	}
	if s.host == nil || !sameShape(s.host, s.node) {
		s.host = mirror(s.node)
	}
	f, err := floats(s.host)
	if err != nil {
		return nil, false, err
	}
	if err := m.dev.downloadAsync(f, s.buf); err != nil {
		return nil, false, fmt.Errorf("download %s: %w", s.node.Name(), err)
	}
	return s.host, true, nil
}

// mirror allocates a host value for n: a float32 scalar or a dense
// tensor of n's shape.
func mirror(n *G.Node) G.Value {
	if n.Shape().Dims() == 0 {
		return G.NewF32(0)
	}
	return tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(n.Shape().Clone()...))
}

// sameShape reports whether v has n's shape.
func sameShape(v G.Value, n *G.Node) bool {
	if n.Shape().Dims() == 0 {
		_, ok := v.(*G.F32)
		return ok
	}
	d, ok := v.(*tensor.Dense)
	return ok && d.Shape().Eq(n.Shape())
}

// floats returns the float32 values of v (a contiguous copy when v is a
// view): the slice aliases v when it can, so downloading into it fills v.
func floats(v G.Value) ([]float32, error) {
	switch x := v.(type) {
	case *G.F32:
		return unsafe.Slice((*float32)(x), 1), nil
	case *tensor.Dense:
		if x.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("value of dtype %v, want float32", x.Dtype())
		}
		if !x.IsNativelyAccessible() || x.RequiresIterator() {
			x = x.Materialize().(*tensor.Dense)
		}
		return nn.Slice[float32](x), nil
	}
	return nil, fmt.Errorf("value %T, want float32 data", v)
}

// int32s converts an integer index value to int32, reusing buf.
func int32s(v G.Value, buf []int32) ([]int32, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("value %T, want an integer tensor", v)
	}
	if !d.IsNativelyAccessible() || d.RequiresIterator() {
		d = d.Materialize().(*tensor.Dense)
	}
	buf = buf[:0]
	switch x := d.Data().(type) {
	case []int:
		for _, i := range x {
			buf = append(buf, int32(i))
		}
	case []int64:
		for _, i := range x {
			buf = append(buf, int32(i))
		}
	case []int32:
		buf = append(buf, x...)
	default:
		return nil, fmt.Errorf("index data %T, want []int", x)
	}
	return buf, nil
}

// hostInts returns the integer values of an input slot as bound on the
// host (labels, token ids), or nil when the slot is not an input.
func hostInts(s *slot) []int {
	if !s.input {
		return nil
	}
	d, ok := s.node.Value().(*tensor.Dense)
	if !ok {
		return nil
	}
	x, _ := d.Data().([]int)
	return x
}
