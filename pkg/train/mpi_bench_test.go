//go:build mpi

package train_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/dist"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/train"
)

// timedComm measures the time spent in the gradient all-reduce (the
// calls with more than 64 values: reduceGrads; the epoch-end reductions
// are smaller or happen once per epoch).
type timedComm struct {
	dist.Communicator
	on    bool
	calls int
	spent time.Duration
}

func (c *timedComm) AllreduceSum(buf []float64) error {
	t0 := time.Now()
	err := c.Communicator.AllreduceSum(buf)
	if c.on && len(buf) > 64 {
		c.calls++
		c.spent += time.Since(t0)
	}
	return err
}

// randomSet is n samples of random inputs shaped like net's inputs.
type randomSet struct{ samples []data.Sample }

func newRandomSet(t *testing.T, net *model.Network, nc model.NetworkConfig, n int) *randomSet {
	store, err := nn.NewStore(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	mg, err := net.Build(nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}), 1)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	s := &randomSet{}
	for i := range n {
		smp := data.Sample{Index: i, Inputs: map[string]data.Tensor{}, Tokens: map[string][]int{}, Present: map[string]bool{},
			Label: data.Label{Class: rng.IntN(nc.OutputDim)}}
		for name, in := range mg.Inputs {
			shape := []int(in.Shape())[1:]
			size := 1
			for _, d := range shape {
				size *= d
			}
			smp.Present[name] = true
			if in.Dtype() == tensor.Int {
				ids := make([]int, size)
				for j := range ids {
					ids[j] = rng.IntN(max(1, nc.Modalities[name].Preprocessor.Text.VocabSize))
				}
				smp.Tokens[name] = ids
				continue
			}
			v := make([]float32, size)
			for j := range v {
				v[j] = float32(rng.NormFloat64())
			}
			smp.Inputs[name] = data.Tensor{Shape: shape, Data: v}
		}
		s.samples = append(s.samples, smp)
	}
	return s
}

func (s *randomSet) Len() int                       { return len(s.samples) }
func (s *randomSet) Get(i int) (data.Sample, error) { return s.samples[i], nil }

// TestMPIBench times data-parallel training of an experiment's model on
// random data (scripts/mpi-bench.sh): LSFUSE_MPI_BENCH is the config
// file, LSFUSE_MPI_BENCH_SET optional ';'-separated --set overrides,
// LSFUSE_MPI_BENCH_BATCHES the global batches per epoch. Two epochs; the
// second is timed. Rank 0 prints one "mpi-bench:" line.
func TestMPIBench(t *testing.T) {
	path := os.Getenv("LSFUSE_MPI_BENCH")
	if path == "" {
		t.Skip("set LSFUSE_MPI_BENCH to a config file (scripts/mpi-bench.sh)")
	}
	world := train.World()
	var sets []string
	if v := os.Getenv("LSFUSE_MPI_BENCH_SET"); v != "" {
		sets = strings.Split(v, ";")
	}
	cfg, err := config.Load(config.LoadOptions{Files: []string{path}, Sets: sets})
	if err != nil {
		t.Fatal(err)
	}
	res, err := config.Resolve(cfg)
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNetwork(res.Network)
	if err != nil {
		t.Fatal(err)
	}
	batches, _ := strconv.Atoi(os.Getenv("LSFUSE_MPI_BENCH_BATCHES"))
	if batches <= 0 {
		batches = 20
	}
	tc := res.Train
	tc.Epochs, tc.LogEvery = 2, 1000000
	ds := newRandomSet(t, net, res.Network, batches*tc.BatchSize)
	store, err := nn.NewStore(res.Dtype, res.Run.Seed)
	if err != nil {
		t.Fatal(err)
	}
	comm := &timedComm{Communicator: world}
	var epochs []train.EpochInfo
	hook := train.HookFuncs{
		EpochEnd: func(i train.EpochInfo) error { epochs = append(epochs, i); comm.on = true; return nil },
	}
	tr, err := train.New(net, store, ds, nil, tc, train.Options{Comm: comm, Hooks: []train.Hook{hook}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The pure cost of one all-reduce of every gradient, ranks in step.
	buf := make([]float64, store.NumParams()+2)
	const reps = 20
	_ = world.Barrier()
	t0 := time.Now()
	for range reps {
		if err := world.AllreduceSum(buf); err != nil {
			t.Fatal(err)
		}
	}
	pure := time.Since(t0) / reps
	per := 0.0
	if comm.calls > 0 {
		per = comm.spent.Seconds() / float64(comm.calls) * 1e3
	}
	// The slowest rank's wait sets the pace: report the maximum.
	m := []float64{per, pure.Seconds() * 1e3}
	if err := world.AllreduceMax(m); err != nil {
		t.Fatal(err)
	}
	if world.Rank() == 0 {
		e := epochs[len(epochs)-1]
		fmt.Printf("mpi-bench: config=%s ranks=%d gomaxprocs=%s params=%d global_batch=%d steps=%d epoch_s=%.2f samples_per_s=%.1f allreduce_ms_per_step=%.3f allreduce_only_ms=%.3f (%.1f MB)\n",
			path+setSuffix(sets), world.Size(), os.Getenv("GOMAXPROCS"), store.NumParams(), tc.BatchSize, batches,
			e.Seconds, float64(batches*tc.BatchSize)/e.Seconds, m[0], m[1], float64(8*len(buf))/1e6)
	}
}

func setSuffix(sets []string) string {
	if len(sets) == 0 {
		return ""
	}
	return " (+" + strings.Join(sets, ",") + ")"
}
