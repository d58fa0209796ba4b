//go:build lsfuse_cuda

package main

import (
	"fmt"
	"os"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/cuda"
)

// openDevice resolves run.device (cuda.Resolve): cpu runs as is; auto
// runs on the GPU when a CUDA driver, cuBLAS, NVRTC and a GPU are found
// (and the run is float32), else on the CPU; cuda without them is a usage
// error (exit 2) naming what is missing: the driver, a library or the
// device. On CUDA it opens device 0 (cuda.OpenSession) for the trainer,
// with train.mixed_precision's GEMM input format (cuda.MixedPrecision); on
// the CPU that key must be off (cpuDevice).
//
// Only builds with -tags lsfuse_cuda link pkg/cuda: loading libraries at
// run time (purego's dlopen) makes the binary depend on the system's libc,
// and the default lsfuse stays one static binary.
func openDevice(cfg *config.Config) (*runDevice, error) {
	req := cfg.Run.Device
	if cfg.Run.Dtype == "float64" {
		switch req {
		case "cuda":
			return nil, usagef("--device cuda: the CUDA executor runs float32 graphs only: set run.dtype float32 or use --device cpu")
		case "auto", "":
			return cpuDevice(cfg, "cpu (run.dtype float64: the CUDA executor is float32 only)")
		}
	}
	sel, err := cuda.Resolve(req, cuda.Probe)
	if err != nil {
		return nil, usagef("--device %s: %v", req, err)
	}
	if sel.Device != "cuda" {
		name := "cpu"
		if sel.Reason != "" {
			name += " (" + sel.Reason + ")"
		}
		return cpuDevice(cfg, name)
	}
	prec, err := cuda.ParsePrecision(cfg.Train.MixedPrecision)
	if err != nil {
		return nil, usagef("train.mixed_precision: %v", err)
	}
	ordinal, why := gpuOrdinal(os.Getenv, len(sel.Probe.Devices))
	s, err := cuda.OpenSession(ordinal)
	if err != nil {
		return nil, fmt.Errorf("--device %s: opening GPU %d: %w", req, ordinal, err)
	}
	name := fmt.Sprintf("cuda: GPU %d, %s", ordinal, s.Info)
	if why != "" {
		name += " (" + why + ")"
	}
	if prec != cuda.PrecisionOff {
		name += ", " + string(prec) + " GEMM inputs"
	}
	return &runDevice{Train: cuda.TrainDevice(s, cuda.MixedPrecision(prec)), Name: name, close: s.Close}, nil
}
