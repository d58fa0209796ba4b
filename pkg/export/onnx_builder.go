package export

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// ONNX element types (TensorProto.DataType) the exporter uses.
type dtype int32

const (
	tFloat dtype = 1
	tInt64 dtype = 7
	tBool  dtype = 9
)

// value is a tensor of the graph under construction: its ONNX name,
// element type and shape. A dimension of -1 is the dynamic batch axis.
type value struct {
	name  string
	dt    dtype
	shape []int
}

// rank returns the number of axes of v.
func (v value) rank() int { return len(v.shape) }

// last returns the size of v's last axis.
func (v value) last() int { return v.shape[len(v.shape)-1] }

// attribute is one AttributeProto (float, int, ints or tensor).
type attribute struct {
	name string
	typ  int
	i    int64
	f    float32
	ints []int64
	t    *tensorData
}

func intAttr(name string, v int) attribute { return attribute{name: name, typ: attrInt, i: int64(v)} }

func floatAttr(name string, v float64) attribute {
	return attribute{name: name, typ: attrFloat, f: float32(v)}
}

func intsAttr(name string, vs ...int) attribute {
	a := attribute{name: name, typ: attrInts, ints: make([]int64, len(vs))}
	for i, v := range vs {
		a.ints[i] = int64(v)
	}
	return a
}

// tensorData is one TensorProto (an initializer or a tensor attribute),
// its elements little-endian in raw.
type tensorData struct {
	name string
	dt   dtype
	dims []int
	raw  []byte
}

// nodeProto is one NodeProto.
type nodeProto struct {
	op, name        string
	inputs, outputs []string
	attrs           []attribute
}

// builder collects the nodes, initializers, inputs and outputs of one
// graph. Its first error sticks: after it every op returns an empty value
// and adds nothing, so emitters need not check errors after each op.
type builder struct {
	opset int
	// batch is the batch size of the inputs, or -1 for a dynamic batch axis.
	batch int
	store *nn.Store
	nodes []nodeProto
	inits []tensorData
	// initShape maps initializer names to their shapes (deduplication).
	initShape map[string][]int
	inputs    []value
	outputs   []value
	// used records the store parameters the graph references.
	used  map[string]bool
	count map[string]int
	err   error
}

func newBuilder(store *nn.Store, opset, batch int) *builder {
	return &builder{opset: opset, batch: batch, store: store, initShape: map[string][]int{},
		used: map[string]bool{}, count: map[string]int{}}
}

// scope is a position in the model's module tree: parameter names and
// node names are prefixed with its dotted path, errors name it.
type scope struct {
	b    *builder
	path string
}

func (s scope) sub(name string) scope {
	if s.path == "" {
		return scope{s.b, name}
	}
	return scope{s.b, s.path + "." + name}
}

func (s scope) subf(format string, args ...any) scope { return s.sub(fmt.Sprintf(format, args...)) }

// fail records an error naming the scope (the first one wins).
func (s scope) fail(format string, args ...any) {
	if s.b.err != nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if s.path != "" {
		msg = s.path + ": " + msg
	}
	s.b.err = fmt.Errorf("export onnx: %s", msg)
}

func (s scope) failed() bool { return s.b.err != nil }

// param returns the initializer of the store parameter name (relative to
// the scope), checking that it exists with the given shape.
func (s scope) param(name string, shape ...int) value {
	full := s.sub(name).path
	if s.failed() {
		return value{}
	}
	p := s.b.store.Lookup(full)
	if p == nil {
		s.fail("parameter %q is not in the store (load the checkpoint of this model, or build the network on the store, before exporting)", full)
		return value{}
	}
	if got := []int(p.Value.Shape()); !equalInts(got, shape) {
		s.fail("parameter %q has shape %v, the exported layer needs %v", full, got, shape)
		return value{}
	}
	s.b.used[full] = true
	if _, ok := s.b.initShape[full]; !ok {
		vals, err := nn.ToFloat64(p.Value)
		if err != nil {
			s.fail("parameter %q: %v", full, err)
			return value{}
		}
		s.b.addInit(full, tFloat, shape, float32Bytes(vals))
	}
	return value{name: full, dt: tFloat, shape: append([]int(nil), shape...)}
}

// constant adds a float initializer that is not a store parameter (a
// fixed matrix such as the DFT) named name under the scope.
func (s scope) constant(name string, shape []int, vals []float64) value {
	full := s.sub(name).path
	if s.failed() {
		return value{}
	}
	if _, ok := s.b.initShape[full]; ok {
		s.fail("constant %q defined twice", full)
		return value{}
	}
	s.b.addInit(full, tFloat, shape, float32Bytes(vals))
	return value{name: full, dt: tFloat, shape: append([]int(nil), shape...)}
}

func (b *builder) addInit(name string, dt dtype, shape []int, raw []byte) {
	b.initShape[name] = append([]int(nil), shape...)
	b.inits = append(b.inits, tensorData{name: name, dt: dt, dims: append([]int(nil), shape...), raw: raw})
}

// scalar returns a shared float32 scalar constant.
func (b *builder) scalar(v float64) value {
	name := "const.f32." + strconv.FormatFloat(float64(float32(v)), 'g', -1, 32)
	if _, ok := b.initShape[name]; !ok {
		b.addInit(name, tFloat, []int{}, float32Bytes([]float64{v}))
	}
	return value{name: name, dt: tFloat, shape: []int{}}
}

// ints returns a shared int64 constant of the given shape.
func (b *builder) ints(shape []int, vs ...int) value {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.Itoa(v)
	}
	name := fmt.Sprintf("const.i64%v.%s", shape, strings.Join(parts, "_"))
	if _, ok := b.initShape[name]; !ok {
		b.addInit(name, tInt64, shape, int64Bytes(vs))
	}
	return value{name: name, dt: tInt64, shape: append([]int(nil), shape...)}
}

// intConst adds an int64 initializer (an index table) named name under
// the scope.
func (s scope) intConst(name string, shape []int, vals []int) value {
	full := s.sub(name).path
	if s.failed() {
		return value{}
	}
	if _, ok := s.b.initShape[full]; ok {
		s.fail("constant %q defined twice", full)
		return value{}
	}
	s.b.addInit(full, tInt64, shape, int64Bytes(vals))
	return value{name: full, dt: tInt64, shape: append([]int(nil), shape...)}
}

// vec returns a shared 1-D int64 constant.
func (b *builder) vec(vs ...int) value { return b.ints([]int{len(vs)}, vs...) }

// input declares a graph input.
func (b *builder) input(name string, dt dtype, shape []int) value {
	v := value{name: name, dt: dt, shape: append([]int(nil), shape...)}
	b.inputs = append(b.inputs, v)
	return v
}

// output declares v as a graph output called name (an Identity node
// gives it that name).
func (s scope) output(name string, v value) {
	if s.failed() {
		return
	}
	out := value{name: name, dt: v.dt, shape: v.shape}
	s.b.nodes = append(s.b.nodes, nodeProto{op: "Identity", name: name + "/Identity", inputs: []string{v.name}, outputs: []string{name}})
	s.b.outputs = append(s.b.outputs, out)
}

// op adds a node with one output of the given type and shape.
func (s scope) op(opType string, ins []value, dt dtype, shape []int, attrs ...attribute) value {
	if s.failed() {
		return value{}
	}
	for _, in := range ins {
		if in.name == "" {
			s.fail("%s: missing input", opType)
			return value{}
		}
	}
	key := s.path + "/" + opType
	n := s.b.count[key]
	s.b.count[key] = n + 1
	name := fmt.Sprintf("%s_%d", key, n)
	node := nodeProto{op: opType, name: name, outputs: []string{name}, attrs: attrs}
	for _, in := range ins {
		node.inputs = append(node.inputs, in.name)
	}
	s.b.nodes = append(s.b.nodes, node)
	return value{name: name, dt: dt, shape: append([]int(nil), shape...)}
}

// unary adds an elementwise op that keeps type and shape.
func (s scope) unary(opType string, x value, attrs ...attribute) value {
	return s.op(opType, []value{x}, x.dt, x.shape, attrs...)
}

// binary adds an elementwise op with numpy broadcasting.
func (s scope) binary(opType string, a, b value, dt dtype) value {
	if s.failed() {
		return value{}
	}
	shape, err := broadcast(a.shape, b.shape)
	if err != nil {
		s.fail("%s: %v", opType, err)
		return value{}
	}
	return s.op(opType, []value{a, b}, dt, shape)
}

func (s scope) add(a, b value) value  { return s.binary("Add", a, b, a.dt) }
func (s scope) sub2(a, b value) value { return s.binary("Sub", a, b, a.dt) }
func (s scope) mul(a, b value) value  { return s.binary("Mul", a, b, a.dt) }
func (s scope) div(a, b value) value  { return s.binary("Div", a, b, a.dt) }

// scaleBy returns x·v for a float constant v.
func (s scope) scaleBy(x value, v float64) value { return s.mul(x, s.b.scalar(v)) }

// greaterZero returns the float step H(x) = 1 if x > 0 else 0 (Greater +
// Cast), the forward of nn.Spike and nn.Heaviside.
func (s scope) greaterZero(x value) value {
	g := s.binary("Greater", x, s.b.scalar(0), tBool)
	return s.cast(g, tFloat)
}

func (s scope) cast(x value, to dtype) value {
	return s.op("Cast", []value{x}, to, x.shape, intAttr("to", int(to)))
}

// broadcast returns the numpy broadcast of two shapes (-1: batch axis).
func broadcast(a, b []int) ([]int, error) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		x, y := 1, 1
		if j := len(a) - n + i; j >= 0 {
			x = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			y = b[j]
		}
		switch {
		case x == y:
			out[i] = x
		case x == 1:
			out[i] = y
		case y == 1:
			out[i] = x
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// matmul adds MatMul (numpy matmul semantics for rank ≥ 2 operands).
func (s scope) matmul(a, b value) value {
	if s.failed() {
		return value{}
	}
	if a.rank() < 2 || b.rank() < 2 || a.last() != b.shape[b.rank()-2] {
		s.fail("MatMul of %v and %v", a.shape, b.shape)
		return value{}
	}
	batch, err := broadcast(a.shape[:a.rank()-2], b.shape[:b.rank()-2])
	if err != nil {
		s.fail("MatMul: %v", err)
		return value{}
	}
	shape := append(batch, a.shape[a.rank()-2], b.last())
	return s.op("MatMul", []value{a, b}, a.dt, shape)
}

// gemm adds x·wᵀ + bias for x [B, In], w [Out, In] (store layout).
func (s scope) gemm(x, w value, bias *value) value {
	if s.failed() {
		return value{}
	}
	if x.rank() != 2 || w.rank() != 2 || x.shape[1] != w.shape[1] {
		s.fail("Gemm of %v with weight %v", x.shape, w.shape)
		return value{}
	}
	ins := []value{x, w}
	if bias != nil {
		ins = append(ins, *bias)
	}
	return s.op("Gemm", ins, tFloat, []int{x.shape[0], w.shape[0]}, intAttr("transB", 1))
}

// transpose adds Transpose with the given permutation.
func (s scope) transpose(x value, perm ...int) value {
	if s.failed() {
		return value{}
	}
	if len(perm) != x.rank() {
		s.fail("Transpose %v of shape %v", perm, x.shape)
		return value{}
	}
	shape := make([]int, len(perm))
	for i, p := range perm {
		shape[i] = x.shape[p]
	}
	return s.op("Transpose", []value{x}, x.dt, shape, intsAttr("perm", perm...))
}

// reshape adds Reshape to target; 0 copies the input's dimension and one
// -1 is inferred (ONNX semantics).
func (s scope) reshape(x value, target ...int) value {
	if s.failed() {
		return value{}
	}
	shape := make([]int, len(target))
	known, infer := 1, -1
	for i, d := range target {
		switch {
		case d == 0:
			shape[i] = x.shape[i]
		case d == -1:
			infer = i
			continue
		default:
			shape[i] = d
		}
		if shape[i] < 0 {
			known = -1
		} else if known > 0 {
			known *= shape[i]
		}
	}
	if infer >= 0 {
		total := 1
		for _, d := range x.shape {
			if d < 0 {
				total = -1
				break
			}
			total *= d
		}
		switch {
		case total < 0 || known < 0:
			shape[infer] = -1
		case known == 0 || total%known != 0:
			s.fail("Reshape of %v to %v", x.shape, target)
			return value{}
		default:
			shape[infer] = total / known
		}
	}
	return s.op("Reshape", []value{x, s.b.vec(target...)}, x.dt, shape)
}

// unsqueeze inserts a size-1 axis at axis (axes as an input: opset ≥ 13).
func (s scope) unsqueeze(x value, axis int) value {
	if s.failed() {
		return value{}
	}
	shape := append(append(append([]int(nil), x.shape[:axis]...), 1), x.shape[axis:]...)
	return s.op("Unsqueeze", []value{x, s.b.vec(axis)}, x.dt, shape)
}

// concat joins xs along axis.
func (s scope) concat(axis int, xs ...value) value {
	if s.failed() {
		return value{}
	}
	if len(xs) == 1 {
		return xs[0]
	}
	shape := append([]int(nil), xs[0].shape...)
	shape[axis] = 0
	for _, x := range xs {
		if x.rank() != len(shape) {
			s.fail("Concat of ranks %d and %d", x.rank(), len(shape))
			return value{}
		}
		shape[axis] += x.shape[axis]
	}
	return s.op("Concat", xs, xs[0].dt, shape, intAttr("axis", axis))
}

// gather adds Gather(data, indices) along axis.
func (s scope) gather(data, indices value, axis int) value {
	if s.failed() {
		return value{}
	}
	shape := append(append(append([]int(nil), data.shape[:axis]...), indices.shape...), data.shape[axis+1:]...)
	return s.op("Gather", []value{data, indices}, data.dt, shape, intAttr("axis", axis))
}

// reduce adds ReduceMean, ReduceSum or ReduceMax over axes (axes as an
// attribute or, from the opset where the op changed, as an input).
func (s scope) reduce(opType string, x value, keep bool, axes ...int) value {
	if s.failed() {
		return value{}
	}
	var shape []int
	for i, d := range x.shape {
		in := false
		for _, a := range axes {
			if a == i {
				in = true
			}
		}
		switch {
		case !in:
			shape = append(shape, d)
		case keep:
			shape = append(shape, 1)
		}
	}
	k := 0
	if keep {
		k = 1
	}
	axesAsInput := s.b.opset >= 18 || (opType == "ReduceSum" && s.b.opset >= 13)
	if axesAsInput {
		return s.op(opType, []value{x, s.b.vec(axes...)}, x.dt, shape, intAttr("keepdims", k))
	}
	return s.op(opType, []value{x}, x.dt, shape, intsAttr("axes", axes...), intAttr("keepdims", k))
}

// zerosBatch returns zeros of shape [B, n], B taken from ref's first axis
// at run time (ConstantOfShape), so a dynamic batch works.
func (s scope) zerosBatch(ref value, n int) value {
	if s.failed() {
		return value{}
	}
	shp := s.op("Shape", []value{ref}, tInt64, []int{ref.rank()})
	b := s.op("Slice", []value{shp, s.b.vec(0), s.b.vec(1)}, tInt64, []int{1})
	dims := s.op("Concat", []value{b, s.b.vec(n)}, tInt64, []int{2}, intAttr("axis", 0))
	zero := tensorData{dt: tFloat, dims: []int{1}, raw: float32Bytes([]float64{0})}
	return s.op("ConstantOfShape", []value{dims}, tFloat, []int{ref.shape[0], n},
		attribute{name: "value", typ: attrTensor, t: &zero})
}

func float32Bytes(vals []float64) []byte {
	raw := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(v)))
	}
	return raw
}

func int64Bytes(vals []int) []byte {
	raw := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(int64(v)))
	}
	return raw
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
