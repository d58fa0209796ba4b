// Package nn holds lsfuse's Gorgonia building blocks: the parameter store,
// the graph-building context, custom differentiable ops (spike, concat,
// fused kernels) and the layers built from them.
//
// # Shapes and dtypes
//
// Builders are dtype-generic: the same code builds a float32 graph for
// training and a float64 graph for finite-difference gradient checks. The
// dtype is the Store's. Batch is always the leading axis.
//
// # Panic policy
//
// Gorgonia panics on shape and type errors while a graph is being built
// (its Must helpers). lsfuse never lets such a panic escape a package:
// layers validate their inputs and return errors that name the layer path
// (Ctx.Path), and the graph-building entry points of pkg/model wrap the
// whole build in Catch, which turns any remaining panic into an error that
// names the scope being built. Data and configuration problems are always
// returned as errors, never panics.
//
// # Gorgonia pitfalls handled here
//
// Gorgonia v0.9.18's Concat gives silently wrong gradients when a node feeds
// it more than once, GlobalAveragePool2D has no symbolic derivative, and Mean
// over several axes has wrong gradients (DESIGN.md §3). This package provides
// Concat and pooling ops with hand-written, gradient-checked backward passes;
// use them instead of Gorgonia's. Found while building lsfuse:
//
//   - G.Reshape returns a view sharing its input's memory, and the
//     TapeMachine's register allocator does not know about the alias: an
//     elementwise op (G.Add, ...) that reads the input last may compute in
//     place in its buffer while the backward pass still reads the view. The
//     result is silently wrong gradients (a residual after a rank-3 Linear
//     corrupted the weight gradients). Use Reshape and Add here, which copy.
//   - For the same reason, and because registers are reused, an
//     intermediate node's Value() after a TapeMachine's RunAll may hold
//     another node's data. lsfuse runs its graphs on pkg/vm's Machine, which
//     keeps one buffer per node, but code that may meet a TapeMachine
//     (gradient checks) reads values only from nodes nothing else consumes
//     (outputs, the loss, telemetry side outputs).
//   - A G.NewConstant belongs to no graph until an op uses it; create
//     constants with G.In(g) and g.AddNode before reshaping or broadcasting
//     them.
//   - Custom ops' type signatures must not use the type variable 'b' for an
//     input: Gorgonia's inference names the return type 'b' (Kernel handles
//     this).
package nn
