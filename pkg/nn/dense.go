package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Float is the set of element types lsfuse computes in.
type Float interface{ ~float32 | ~float64 }

// NewDense returns a tensor of dtype dt and the given shape holding vals
// converted to dt. vals must have the shape's size; nil means zeros.
func NewDense(dt tensor.Dtype, shape []int, vals []float64) *tensor.Dense {
	n := prod(shape)
	if vals != nil && len(vals) != n {
		panic(fmt.Sprintf("nn.NewDense: %d values for shape %v", len(vals), shape))
	}
	switch dt {
	case tensor.Float32:
		b := make([]float32, n)
		for i, v := range vals {
			b[i] = float32(v)
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(b))
	case tensor.Float64:
		b := make([]float64, n)
		copy(b, vals)
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(b))
	}
	panic(fmt.Sprintf("nn.NewDense: unsupported dtype %v", dt))
}

// Zeros returns a zero tensor of dtype dt and the given shape.
func ZerosDense(dt tensor.Dtype, shape ...int) *tensor.Dense { return NewDense(dt, shape, nil) }

// ToFloat64 copies a float32 or float64 tensor's elements (in row-major
// order) into a new []float64.
func ToFloat64(t tensor.Tensor) ([]float64, error) {
	d, ok := t.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("nn: expected *tensor.Dense, got %T", t)
	}
	if !d.IsNativelyAccessible() || d.RequiresIterator() {
		d = d.Materialize().(*tensor.Dense)
	}
	switch b := d.Data().(type) {
	case []float64:
		return append([]float64(nil), b...), nil
	case []float32:
		out := make([]float64, len(b))
		for i, v := range b {
			out[i] = float64(v)
		}
		return out, nil
	case float64:
		return []float64{b}, nil
	case float32:
		return []float64{float64(b)}, nil
	}
	return nil, fmt.Errorf("nn: unsupported tensor data %T", d.Data())
}

// SetFromFloat64 overwrites t's elements with vals converted to t's dtype.
func SetFromFloat64(t *tensor.Dense, vals []float64) error {
	switch b := t.Data().(type) {
	case []float64:
		if len(b) != len(vals) {
			return fmt.Errorf("nn: %d values for a tensor of %d", len(vals), len(b))
		}
		copy(b, vals)
	case []float32:
		if len(b) != len(vals) {
			return fmt.Errorf("nn: %d values for a tensor of %d", len(vals), len(b))
		}
		for i, v := range vals {
			b[i] = float32(v)
		}
	default:
		return fmt.Errorf("nn: unsupported tensor data %T", t.Data())
	}
	return nil
}

// Slice returns the backing slice of a float tensor of element type T.
// It panics if the tensor's dtype is not T: kernels dispatch on dtype first.
func Slice[T Float](t *tensor.Dense) []T {
	s, ok := sliceOf[T](t)
	if !ok {
		panic(fmt.Sprintf("nn.Slice: tensor of dtype %v read as %T", t.Dtype(), s))
	}
	return s
}

// sliceOf returns t's backing slice as []T when t's dtype is T. Unlike
// t.Data() it does not allocate (Data builds the slice through reflect
// and boxes it), which matters at hundreds of kernel calls per step.
func sliceOf[T Float](t *tensor.Dense) ([]T, bool) {
	var s any
	switch any(*new(T)).(type) {
	case float64:
		if t.Dtype() != tensor.Float64 {
			return nil, false
		}
		s = t.Float64s()
	case float32:
		if t.Dtype() != tensor.Float32 {
			return nil, false
		}
		s = t.Float32s()
	default:
		return nil, false
	}
	out, ok := s.([]T)
	return out, ok
}

// ScalarValue reads a scalar (or one-element) node's value after a run,
// e.g. the loss.
func ScalarValue(n *G.Node) (float64, error) {
	switch v := n.Value().(type) {
	case *G.F32:
		return float64(*v), nil
	case *G.F64:
		return float64(*v), nil
	case tensor.Tensor:
		vals, err := ToFloat64(v)
		if err != nil {
			return 0, err
		}
		if len(vals) != 1 {
			return 0, fmt.Errorf("%s has %d values, want 1", n.Name(), len(vals))
		}
		return vals[0], nil
	case nil:
		return 0, fmt.Errorf("%s has no value (was the graph run?)", n.Name())
	}
	return 0, fmt.Errorf("%s has a value of type %T", n.Name(), n.Value())
}
