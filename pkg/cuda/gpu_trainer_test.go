//go:build cudagpu && linux && (amd64 || arm64)

package cuda

import "testing"

// TestGPUTrainer trains bench-small (spike steps 2, batches of 4 and a
// short last batch of 2, 2 epochs, validation) with the trainer on the
// GPU (TrainDevice) and on the CPU: losses, weights and the validation
// loss must agree within float32 tolerance (cuBLAS's summation order and
// the device's float32 Adam against the host's float64 moments), and a
// run interrupted mid-window and resumed on the GPU ends like the
// uninterrupted GPU run.
func TestGPUTrainer(t *testing.T) {
	cfg := smallTrainConfig()
	cfg.AccumSteps = 2
	c := trainCase{cfg: cfg, tr: newDigits(10, 1), val: newDigits(6, 2)}
	cpu := c.fitOn(t, nil)
	c.dir = t.TempDir()
	gpu := c.fitOn(t, TrainDevice(gpuSession(t)))
	sameRun(t, "gpu vs cpu", gpu, cpu, 5e-4)

	c.dir, c.stopAt, c.failWith = t.TempDir(), 4, errStop
	if r := c.fitOn(t, TrainDevice(gpuSession(t))); r.err != errStop {
		t.Fatalf("interrupted run: %v", r.err)
	}
	c.stopAt, c.resume = 0, "last"
	got := c.fitOn(t, TrainDevice(gpuSession(t)))
	got.losses = append(gpu.losses[:4:4], got.losses...)
	sameRun(t, "gpu resumed on gpu", got, gpu, 5e-4)
}
