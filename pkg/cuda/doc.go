// Package cuda is lsfuse's optional NVIDIA GPU backend that needs no CUDA
// toolkit to build (issue 7, DESIGN.md fact 9).
//
// The binary stays CGO_ENABLED=0: at run time the package loads the CUDA
// driver (libcuda.so.1), cuBLAS (libcublas.so.N) and NVRTC
// (libnvrtc.so.N) with github.com/ebitengine/purego. Libraries are looked
// for in LSFUSE_CUDA_LIBS (a list of folders, searched first), pip
// nvidia/*/lib folders, /usr/local/cuda/lib64 and the system library
// folders, then by bare soname through the dynamic linker (Discover).
//
// Kernels are CUDA C sources embedded in the binary (kernels/*.cu). At
// first use NVRTC compiles them for the device's architecture (sm_XY) and
// the cubin is cached on disk under the user cache folder, keyed by the
// SHA-256 of the source, the architecture and the NVRTC version
// (Device.Module). They are launched with cuLaunchKernel; GEMMs go through
// cuBLAS (sgemm and batched sgemm), all in float32; with MixedPrecision
// their inputs are first packed into binary16 or bfloat16 buffers and
// multiplied by cublasGemmEx / cublasGemmBatchedEx with float32
// accumulation (docs/GPU.md "Mixed precision"). Launches, GEMMs and
// copies are queued on one stream per Device; the host waits only where
// it reads results, and Device.Hold keeps one OS thread with the context
// current across a whole run.
//
// Lower maps every op of a built Gorgonia training graph (forward and
// symbolic backward) to the GPU kernels that implement it or to a
// documented host fallback, and its coverage of every shipped
// configuration is tested on the CPU. Machine is the executor built on
// it: vm.Machine's contract (step order, gradient accumulation into
// w.Grad()) with every tensor resident on the GPU, parameters and Adam
// state shared through a Session, and only input batches going in and the
// fetched nodes (loss, output) coming out. Its planning runs on the CPU
// in tests against a fake device whose kernels are Go transcriptions of
// kernels/*.cu. TrainDevice hands a Session to the trainer
// (train.Options.Device, train.EvalOptions.Device): pkg/train sees the GPU
// only through its train.Device interface and never imports this package,
// so the default binary stays static (docs/GPU.md). Probe reports whether
// a driver, the libraries and a device are present, naming what is
// missing.
//
// Errors are values: nothing here panics on a missing library or device.
package cuda
