package main

import (
	"context"
	"errors"
	"math"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/train"
	"github.com/lsfuse/lsfuse/pkg/vm"
)

// hostDevice is a train.Device whose executors are vm.Machines with a
// host Adam: bench's device path without a GPU.
type hostDevice struct{}

func (hostDevice) NewExecutor(g *G.ExprGraph, learn, _ G.Nodes, eval bool) (train.Executor, error) {
	var opts []vm.Option
	if eval {
		opts = append(opts, vm.EvalMode())
	}
	m, err := vm.New(g, learn, opts...)
	if err != nil {
		return nil, err
	}
	return &hostExec{Machine: m}, nil
}

func (hostDevice) Download() error { return nil }
func (hostDevice) Upload() error   { return nil }

type hostExec struct {
	*vm.Machine
	adam *train.Adam
}

var errHostExec = errors.New("not supported by the test executor")

func (*hostExec) Read(...*G.Node) error                                 { return nil }
func (*hostExec) DownloadGrads() error                                  { return nil }
func (*hostExec) UploadGrads() error                                    { return nil }
func (*hostExec) ZeroGrads(...*G.Node) error                            { return errHostExec }
func (*hostExec) ScaleGrads(float64, ...*G.Node) error                  { return errHostExec }
func (*hostExec) GradSumSquares(float64) (float64, error)               { return 0, errHostExec }
func (*hostExec) SetAdamState(*G.Node, []float32, []float32, int) error { return errHostExec }
func (*hostExec) AdamState(*G.Node) ([]float32, []float32, int, error) {
	return nil, nil, 0, errHostExec
}
func (*hostExec) HostSteps() []string { return []string{"Everything"} }

func (x *hostExec) AdamStep(cfg train.AdamConfig, nodes ...*G.Node) error {
	if x.adam == nil {
		var err error
		if x.adam, err = train.NewAdam(cfg); err != nil {
			return err
		}
	}
	x.adam.SetLR(cfg.LR)
	return x.adam.Step(nodes)
}

// TestBenchOnDevice runs bench's training steps through a device's
// executor and its AdamStep: the last loss equals the CPU path's, and
// the result names the device and its host steps.
func TestBenchOnDevice(t *testing.T) {
	cfg, err := config.Load(config.LoadOptions{Files: []string{"../../configs/bench-small.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := config.Resolve(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := &benchOptions{Mode: "train", Batch: 2, Warmup: 1, Steps: 2}
	run := func(dev *runDevice) *benchResult {
		net, err := model.NewNetwork(res.Network)
		if err != nil {
			t.Fatal(err)
		}
		r, err := bench(context.Background(), net, res, opts, dev)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cpu := run(&runDevice{Name: "cpu"})
	dev := run(&runDevice{Train: hostDevice{}, Name: "cuda: test"})
	if dev.LastLoss != cpu.LastLoss || math.IsNaN(cpu.LastLoss) {
		t.Errorf("last loss on the device path %v, on the CPU %v", dev.LastLoss, cpu.LastLoss)
	}
	if dev.Device != "cuda: test" || len(dev.HostSteps) != 1 || cpu.HostSteps != nil {
		t.Errorf("device %q, host steps %v (cpu %v)", dev.Device, dev.HostSteps, cpu.HostSteps)
	}
}
