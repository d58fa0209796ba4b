//go:build lsfuse_cuda && linux && (amd64 || arm64)

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lsfuse/lsfuse/internal/fakecuda"
	"github.com/lsfuse/lsfuse/pkg/cuda"
)

// envFakeGPUChild marks the child process of TestTrainOnFakeGPU.
const envFakeGPUChild = "LSFUSE_TEST_FAKE_GPU_CHILD"

// TestTrainOnFakeGPU trains the quickstart for one epoch with
// `--device cuda` on internal/fakecuda's stand-ins for the CUDA driver and
// cuBLAS (the kernel sources on the C++ emulator, GEMMs as loops; NVRTC
// is the real one, so the test needs it) and with `--device cpu`, then
// evaluates the GPU run's checkpoint with `--device cuda`: the command
// line's whole GPU path (discovery, the session, the trainer and
// evaluation on the device, checkpoints) runs, names the fake GPU, and
// reaches the CPU run's losses and accuracy. The CUDA stack is loaded
// once per process, so the runs happen in a child process whose
// LSFUSE_CUDA_LIBS points at the fake libraries.
func TestTrainOnFakeGPU(t *testing.T) {
	if os.Getenv(envFakeGPUChild) == "" {
		if _, err := exec.LookPath("g++"); err != nil {
			t.Skip("g++ not installed: no fake CUDA driver")
		}
		src, err := cuda.Source()
		if err != nil {
			t.Fatal(err)
		}
		libs, err := fakecuda.Build(t.TempDir(), src, cuda.KernelParams)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestTrainOnFakeGPU$", "-test.v")
		cmd.Env = append(os.Environ(), envFakeGPUChild+"=1", cuda.EnvLibs+"="+libs, cuda.EnvCache+"="+t.TempDir())
		out, err := cmd.CombinedOutput()
		t.Logf("child:\n%s", out)
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		return
	}
	dir := t.TempDir()
	args := func(dev string) []string {
		return []string{"train", "-c", quickstart, "--run-dir", filepath.Join(dir, dev), "--epochs", "1", "--device", dev,
			"--set", "data.max_train_samples=96", "--set", "data.max_eval_samples=48", "--set", "train.batch_size=32", "--set", "train.schedule.warmup=0"}
	}
	code, gpuOut, errOut := lsfuse(t, args("cuda")...)
	if code != 0 {
		t.Fatalf("train --device cuda: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(gpuOut+errOut, "device: cuda: GPU 0, lsfuse fake GPU (sm_90") {
		t.Errorf("the cuda run does not name the fake GPU:\n%s%s", gpuOut, errOut)
	}
	code, cpuOut, errOut := lsfuse(t, args("cpu")...)
	if code != 0 {
		t.Fatalf("train --device cpu: exit %d\n%s", code, errOut)
	}
	test := regexp.MustCompile(`test \(48 samples, best\.ckpt\): loss ([0-9.]+), accuracy ([0-9.]+)`)
	g, c := test.FindStringSubmatch(gpuOut), test.FindStringSubmatch(cpuOut)
	if g == nil || c == nil {
		t.Fatalf("no test line:\ncuda:\n%s\ncpu:\n%s", gpuOut, cpuOut)
	}
	num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	t.Logf("test loss cuda %s, cpu %s; accuracy cuda %s, cpu %s", g[1], c[1], g[2], c[2])
	if d := num(g[1]) - num(c[1]); d > 1e-3 || d < -1e-3 {
		t.Errorf("test loss cuda %s, cpu %s: want agreement to 1e-3", g[1], c[1])
	}
	if num(g[2]) != num(c[2]) {
		t.Errorf("test accuracy cuda %s, cpu %s", g[2], c[2])
	}
	code, evalOut, errOut := lsfuse(t, "eval", "--checkpoint", filepath.Join(dir, "cuda", "quickstart", "best.ckpt"), "--device", "cuda", "--no-ablation")
	if code != 0 || !strings.Contains(evalOut, "accuracy") {
		t.Errorf("eval --device cuda: exit %d\n%s%s", code, evalOut, errOut)
	}
}
