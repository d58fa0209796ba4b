// Command build compiles internal/fakecuda's stand-in CUDA driver and
// cuBLAS for pkg/cuda's kernels into a folder, for running the lsfuse
// binary or scripts/gpu-check.sh on a machine without a GPU:
//
//	go run ./internal/fakecuda/build -out bin/gpu/fakecuda
//	LSFUSE_CUDA_LIBS=bin/gpu/fakecuda lsfuse train --device cuda ...
//
// It needs g++, and NVRTC at run time (the stand-in runs the kernels'
// CUDA C on the CPU, but the backend still compiles them with NVRTC).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/lsfuse/lsfuse/internal/fakecuda"
	"github.com/lsfuse/lsfuse/pkg/cuda"
)

func main() {
	out := flag.String("out", "fakecuda", "folder to write libcuda.so.1 and libcublas.so.13 into")
	flag.Parse()
	src, err := cuda.Source()
	if err == nil {
		var dir string
		if dir, err = fakecuda.Build(*out, src, cuda.KernelParams); err == nil {
			fmt.Println(dir)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "fakecuda build:", err)
	os.Exit(1)
}
