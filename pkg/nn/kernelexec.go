package nn

import (
	"fmt"
	"runtime"
	"sync"

	"gorgonia.org/tensor"
)

// FloatKernel runs a kernel body on the row-major backing slices of in and
// of a zeroed output tensor of dtype dt and the given shape, choosing the
// float64 or float32 instantiation. The output is dst, cleared, when dst is
// a contiguous tensor of that dtype and shape (an executor's buffer reused
// across steps), and a new tensor otherwise. Float inputs must have dtype
// dt; integer inputs (token ids, labels) get a nil entry, for the body to
// read from the tensor itself. Views are materialised first (the body then
// reads a copy, so bodies that update an input in place must only do so on
// store tensors, which are always contiguous). It is the common body of
// lsfuse's kernels.
func FloatKernel(dt tensor.Dtype, shape tensor.Shape, in []*tensor.Dense, dst *tensor.Dense,
	f64 func(in [][]float64, out []float64), f32 func(in [][]float32, out []float32)) (*tensor.Dense, error) {
	out := Output(dst, dt, shape)
	switch dt {
	case tensor.Float64:
		xs, err := floatData[float64](in)
		if err != nil {
			return nil, err
		}
		f64(xs, Slice[float64](out))
	case tensor.Float32:
		xs, err := floatData[float32](in)
		if err != nil {
			return nil, err
		}
		f32(xs, Slice[float32](out))
	default:
		return nil, fmt.Errorf("unsupported dtype %v (want float32 or float64)", dt)
	}
	return out, nil
}

// Output returns the tensor a kernel's Forward writes its result to: dst,
// zeroed, when it is a contiguous tensor of dtype dt and the given shape
// (the buffer an executor passes back step after step), and a new zeroed
// tensor otherwise.
func Output(dst *tensor.Dense, dt tensor.Dtype, shape tensor.Shape) *tensor.Dense {
	if dst != nil && dst.Dtype() == dt && dst.Shape().Eq(shape) && dst.IsNativelyAccessible() && !dst.RequiresIterator() {
		dst.Zero()
		return dst
	}
	return tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
}

// floatKernel is FloatKernel with the dtype of in[0].
func floatKernel(shape tensor.Shape, in []*tensor.Dense, dst *tensor.Dense,
	f64 func(in [][]float64, out []float64), f32 func(in [][]float32, out []float32)) (*tensor.Dense, error) {
	return FloatKernel(in[0].Dtype(), shape, in, dst, f64, f32)
}

// floatData returns the row-major backing slices of in, all of element type
// T; integer inputs give nil.
func floatData[T Float](in []*tensor.Dense) ([][]T, error) {
	out := make([][]T, len(in))
	for i, d := range in {
		if d.Dtype() == tensor.Int {
			continue
		}
		if !d.IsNativelyAccessible() || d.RequiresIterator() {
			d = d.Materialize().(*tensor.Dense)
		}
		s, ok := sliceOf[T](d)
		if !ok {
			return nil, fmt.Errorf("input %d has dtype %v, input 0 has %v", i, in[i].Dtype(), in[0].Dtype())
		}
		out[i] = s
	}
	return out, nil
}

// workersFor returns how many goroutines parallelFor uses for n items: at
// most GOMAXPROCS and at most n (at least 1).
func workersFor(n int) int {
	w := runtime.GOMAXPROCS(0)
	if w > n {
		w = n
	}
	if w < 1 {
		w = 1
	}
	return w
}

// parallelFor splits [0, n) into workersFor(n) contiguous chunks and runs
// body(worker, lo, hi) for each chunk concurrently, returning when all are
// done. Worker indices are 0..workersFor(n)-1, so bodies can own per-worker
// scratch space. The executor runs one op at a time; parallelism lives
// inside ops (DESIGN.md §3).
func parallelFor(n int, body func(worker, lo, hi int)) {
	w := workersFor(n)
	if w == 1 {
		body(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < w; i++ {
		lo, hi := i*n/w, (i+1)*n/w
		wg.Add(1)
		go func(i, lo, hi int) {
			defer wg.Done()
			body(i, lo, hi)
		}(i, lo, hi)
	}
	wg.Wait()
}
