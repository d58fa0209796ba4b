//go:build !lsfuse_cuda

package main

import "github.com/lsfuse/lsfuse/pkg/config"

// openDevice rejects a device this build cannot run on: the default build
// is a static binary without the CUDA loader (build with -tags lsfuse_cuda
// for pkg/cuda's probing and executor); auto means the CPU, where
// train.mixed_precision must be off.
func openDevice(cfg *config.Config) (*runDevice, error) {
	if cfg.Run.Device == "cuda" {
		return nil, usagef("--device cuda: CUDA backend not available in this build (the static CPU build; `go build -tags lsfuse_cuda` links the CUDA loader): use --device cpu (or auto)")
	}
	return cpuDevice(cfg, "cpu")
}
