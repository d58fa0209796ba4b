// Package train holds lsfuse's training machinery: optimisers that update
// the parameter store in place, and (as the trainer grows) schedules, loss
// scaling, accumulation, metrics and the training loop. It never prints:
// progress reaches the caller through hooks.
package train
