//go:build lsfuse_cuda

package main

import (
	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/cuda"
)

// checkDevice resolves run.device (cuda.Resolve): cpu runs as is; auto
// runs on the CPU unless a CUDA driver, cuBLAS, NVRTC and a GPU are found
// and this build can train there; cuda without them is a usage error (exit
// 2) naming what is missing: the driver, a library or the device.
//
// Only builds with -tags lsfuse_cuda link pkg/cuda: loading libraries at run time
// (purego's dlopen) makes the binary depend on the system's libc, and the
// default lsfuse stays one static binary until the GPU executor exists.
func checkDevice(cfg *config.Config) error {
	if _, err := cuda.Resolve(cfg.Run.Device, cuda.Probe); err != nil {
		return usagef("--device %s: %v", cfg.Run.Device, err)
	}
	return nil
}
