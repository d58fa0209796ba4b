package main

import (
	"fmt"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/dist"
	"github.com/lsfuse/lsfuse/pkg/train"
)

// runDevice is where a command runs its graphs: openDevice (device_cuda.go
// in builds with -tags lsfuse_cuda, device_default.go otherwise) resolves
// run.device into one.
type runDevice struct {
	// Train runs the trainer's and Evaluate's graphs; nil is the CPU
	// (vm.Machine).
	Train train.Device
	// Name describes the device for the log: "cpu", "cpu (why auto did
	// not choose CUDA)" or "cuda: GPU 0, NVIDIA H200 (sm_90, 140 GiB)".
	Name  string
	close func() error
}

// Close releases the device (the GPU session); nil-safe.
func (d *runDevice) Close() error {
	if d == nil || d.close == nil {
		return nil
	}
	return d.close()
}

// closeInto closes d (deferred by commands with a named error result),
// reporting a failure in *err unless an earlier error is there.
func (d *runDevice) closeInto(err *error) {
	if cerr := d.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("closing the device: %w", cerr)
	}
}

// cpuDevice is the CPU as the run's device, named name for the log.
// train.mixed_precision other than off is a usage error there: only the
// CUDA executor rounds GEMM inputs.
func cpuDevice(cfg *config.Config, name string) (*runDevice, error) {
	if p := cfg.Train.MixedPrecision; p != "" && p != "off" {
		return nil, usagef("train.mixed_precision %s needs --device cuda (the CUDA executor's GEMMs), but this run executes on %s: set train.mixed_precision off", p, name)
	}
	return &runDevice{Name: name}, nil
}

// gpuOrdinal picks which of count GPUs a process opens: in a job started
// by a launcher (mpirun, srun, ...), its rank on the node modulo count, so
// that the ranks of a node spread over its GPUs one each; otherwise GPU 0.
// why says how a launched process chose ("" for a plain process).
// CUDA_VISIBLE_DEVICES still applies: the driver numbers only the GPUs it
// lists.
func gpuOrdinal(getenv func(string) string, count int) (ordinal int, why string) {
	rank, via, ok := dist.LocalRank(getenv)
	if !ok || count < 1 {
		return 0, ""
	}
	return rank % count, fmt.Sprintf("node-local rank %d (%s) of a job, %d GPU(s) visible", rank, via, count)
}
