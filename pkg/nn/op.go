package nn

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Kernel describes a custom Gorgonia op by its forward computation and,
// when differentiable, its backward as graph nodes (Gorgonia's TapeMachine
// differentiates symbolically: DESIGN.md fact 5). Apply turns it into a
// node. Kernels are how lsfuse replaces Gorgonia ops whose gradients are
// wrong and how it fuses multi-step blocks.
type Kernel struct {
	// Name identifies the computation, including every parameter that
	// changes it: Gorgonia merges nodes whose op hashes and children are
	// equal, so two kernels with different parameters must differ in Name.
	Name string
	// Shape returns the output shape for the input shapes. It must not be a
	// scalar shape.
	Shape func(in []tensor.Shape) (tensor.Shape, error)
	// Forward computes the output. Inputs are dense, row-major tensors of the
	// graph's float dtype (or tensor.Int for index inputs); it must not
	// modify them. dst is nil or a tensor of the output's shape and dtype,
	// with arbitrary contents and sharing no memory with the inputs, that
	// the result may be written to (pkg/vm hands each node its previous
	// output); Forward returns the tensor holding the result, dst or a new
	// one. FloatKernel and Output handle dst.
	Forward func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error)
	// Backward returns, for each input, a node holding d(loss)/d(input)
	// given grad = d(loss)/d(output); nil for inputs that need none. A nil
	// Backward makes the kernel non-differentiable.
	Backward func(in G.Nodes, out, grad *G.Node) (G.Nodes, error)
	// NoGrad marks inputs that are never differentiated (indices, masks);
	// nil means every input is differentiable when Backward is set.
	NoGrad []bool
}

// Apply adds the kernel as a node over inputs.
func Apply(k *Kernel, inputs ...*G.Node) (*G.Node, error) {
	if len(inputs) == 0 {
		return nil, fmt.Errorf("%s: no inputs", k.Name)
	}
	shapes := make([]tensor.Shape, len(inputs))
	for i, n := range inputs {
		shapes[i] = n.Shape().Clone()
	}
	out, err := k.Shape(shapes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.Name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: kernels may not return scalars", k.Name)
	}
	dt := inputs[0].Dtype()
	for _, n := range inputs {
		if n.Dtype() != tensor.Int {
			dt = n.Dtype()
			break
		}
	}
	op := &kernelOp{k: k, arity: len(inputs), outShape: out, dt: dt}
	return G.ApplyOp(op, inputs...)
}

type kernelOp struct {
	k        *Kernel
	arity    int
	outShape tensor.Shape
	dt       tensor.Dtype
	// in is the input slice handed to Forward, reused across calls (a node
	// runs once at a time).
	in []*tensor.Dense
}

func (o *kernelOp) Arity() int { return o.arity }

func (o *kernelOp) Type() hm.Type {
	ts := make([]hm.Type, 0, o.arity+1)
	// Inputs get private type variables: Gorgonia's own inference names the
	// return type 'b', so 'a'+i would tie the output type to input 1.
	for i := 0; i < o.arity; i++ {
		ts = append(ts, hm.TypeVariable(rune(0x10000+i)))
	}
	ts = append(ts, G.TensorType{Dims: len(o.outShape), Of: o.dt})
	return hm.NewFnType(ts...)
}

func (o *kernelOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return o.outShape.Clone(), nil
}

func (o *kernelOp) Do(vals ...G.Value) (G.Value, error) { return o.run(nil, vals) }

// UsePreallocDo computes the output into prealloc when it is a dense tensor
// of the output's shape and dtype that shares no memory with an input (the
// kernel's Forward decides whether it can use it; either way the result is
// returned). lsfuse's executor (pkg/vm) passes each node's buffer from the
// previous step, so steady-state steps allocate no outputs.
func (o *kernelOp) UsePreallocDo(prealloc G.Value, vals ...G.Value) (G.Value, error) {
	dst, _ := prealloc.(*tensor.Dense)
	if dst != nil && (dst.Dtype() != o.dt || !dst.Shape().Eq(o.outShape)) {
		dst = nil
	}
	if dst != nil {
		for _, v := range vals {
			if d, ok := v.(*tensor.Dense); ok && overlaps(dst, d) {
				dst = nil
				break
			}
		}
	}
	return o.run(dst, vals)
}

func (o *kernelOp) run(dst *tensor.Dense, vals []G.Value) (G.Value, error) {
	in := o.in[:0]
	for i, v := range vals {
		d, ok := v.(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("%s: input %d is %T, want *tensor.Dense", o.k.Name, i, v)
		}
		in = append(in, d)
	}
	out, err := o.k.Forward(in, dst)
	clear(in)
	o.in = in
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.k.Name, err)
	}
	return out, nil
}

// overlaps reports whether two dense tensors' backing arrays share memory.
func overlaps(a, b *tensor.Dense) bool {
	as, ae := a.Uintptr(), a.Uintptr()+a.MemSize()
	bs, be := b.Uintptr(), b.Uintptr()+b.MemSize()
	return as < be && bs < ae
}

func (o *kernelOp) ReturnsPtr() bool     { return false }
func (o *kernelOp) CallsExtern() bool    { return false }
func (o *kernelOp) OverwritesInput() int { return -1 }
func (o *kernelOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "kernel:%s:%v", o.k.Name, o.outShape)
}
func (o *kernelOp) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}
func (o *kernelOp) String() string { return o.k.Name }

func (o *kernelOp) DiffWRT(n int) []bool {
	out := make([]bool, n)
	if o.k.Backward == nil {
		return out
	}
	for i := range out {
		out[i] = o.k.NoGrad == nil || i >= len(o.k.NoGrad) || !o.k.NoGrad[i]
	}
	return out
}

func (o *kernelOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	if o.k.Backward == nil {
		return nil, fmt.Errorf("%s is not differentiable", o.k.Name)
	}
	gs, err := o.k.Backward(in, out, grad)
	if err != nil {
		return nil, fmt.Errorf("%s backward: %w", o.k.Name, err)
	}
	if len(gs) != len(in) {
		return nil, fmt.Errorf("%s backward: %d gradients for %d inputs", o.k.Name, len(gs), len(in))
	}
	return gs, nil
}
