// Package vm executes lsfuse's Gorgonia graphs — forward, the symbolic
// backward G.Grad adds, and the gradient accumulation the optimiser reads —
// without G.TapeMachine's per-run allocations.
//
// The TapeMachine allocates registers afresh on every run, boxes every op's
// inputs, builds an add op per gradient node and logs through variadic
// calls, and every op allocates its output again: 4,557 heap allocations
// per bench-small training step (B=32, T=8). Machine instead walks the
// graph's topological order with one persistent output buffer per node,
// handed back to the op on the next run (see nn.Kernel's dst argument and
// Gorgonia's UsePreallocDoer): about 600 per step, with losses and weights
// bit-identical to the TapeMachine's (docs/PERFORMANCE.md). The price is
// memory: every node keeps its output between runs instead of sharing
// registers, which also makes every node's Value readable after a run.
package vm
