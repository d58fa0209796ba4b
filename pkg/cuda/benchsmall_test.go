package cuda

import (
	"maps"
	"math"
	"math/rand"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// trainGraph is a network's float32 graph built as pkg/train builds it:
// for training, the loss times a scalar input loss_scale, then G.Grad
// over the learnables (buildTrainGraph); for evaluation, the forward only
// (buildGraph). Built on stores with the same seed, two builds have equal
// weights. The CPU tests and the GPU tests (tag cudagpu) share it.
type trainGraph struct {
	g     *G.ExprGraph
	mg    *model.Graph
	learn G.Nodes
	scale *G.Node
	batch int
}

// buildTrainGraph builds net for batch samples on a fresh float32 store
// seeded seed.
func buildTrainGraph(tb testing.TB, net *model.Network, batch int, seed int64) *trainGraph {
	tb.Helper()
	return buildGraph(tb, net, batch, seed, true)
}

// buildGraph builds net in training mode (with the backward) or in
// evaluation mode (forward only, as pkg/train's evaluation graph, with the
// loss scale input unused).
func buildGraph(tb testing.TB, net *model.Network, batch int, seed int64, train bool) *trainGraph {
	tb.Helper()
	store, err := nn.NewStore(tensor.Float32, seed)
	if err != nil {
		tb.Fatal(err)
	}
	b := &trainGraph{g: G.NewGraph(), batch: batch}
	c := nn.NewCtx(b.g, store, nn.CtxOptions{Train: train, NoiseSeed: 1})
	if b.mg, err = net.Build(c, batch); err != nil {
		tb.Fatal(err)
	}
	if !train {
		b.scale = G.NewScalar(b.g, tensor.Float32, G.WithName("loss_scale"))
		return b
	}
	b.learn = c.Learnables()
	err = nn.Catch("training graph", func() error {
		b.scale = G.NewScalar(b.g, tensor.Float32, G.WithName("loss_scale"))
		scaled, err := G.Mul(b.mg.Loss, b.scale)
		if err != nil {
			return err
		}
		_, err = G.Grad(scaled, b.learn...)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// newBenchSmall builds bench-small with spikeSteps spiking steps.
func newBenchSmall(tb testing.TB, batch, spikeSteps int) *trainGraph {
	tb.Helper()
	cfg := model.BenchSmallConfig()
	for name, m := range cfg.Modalities {
		m.Encoder.NumSpikeSteps = spikeSteps
		cfg.Modalities[name] = m
	}
	net, err := model.NewNetwork(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return buildTrainGraph(tb, net, batch, 3)
}

// bindBenchSmall binds the next random batch of a learnable task for
// bench-small (the label shifts
// the image mean and picks the token band) and the loss scale.
func (b *trainGraph) bindBenchSmall(tb testing.TB, rng *rand.Rand, scale float32) {
	tb.Helper()
	img := make([]float32, b.batch*28*28)
	ids, labels := make([]int, b.batch*16), make([]int, b.batch)
	for i := range labels {
		labels[i] = rng.Intn(10)
		for j := 0; j < 28*28; j++ {
			img[i*28*28+j] = float32(rng.NormFloat64() + 0.2*float64(labels[i]-5))
		}
		for j := 0; j < 16; j++ {
			ids[i*16+j] = labels[i]*100 + rng.Intn(100)
		}
	}
	if err := b.mg.Bind(model.Feed{
		Inputs: map[string]*tensor.Dense{
			"vision": tensor.New(tensor.WithShape(b.batch, 1, 28, 28), tensor.WithBacking(img)),
			"text":   tensor.New(tensor.WithShape(b.batch, 16), tensor.WithBacking(ids)),
		},
		Labels: tensor.New(tensor.WithShape(b.batch), tensor.WithBacking(labels)),
	}); err != nil {
		tb.Fatal(err)
	}
	if err := G.Let(b.scale, scale); err != nil {
		tb.Fatal(err)
	}
}

// bindRandom binds random inputs of the graph's shapes and dtypes (ids
// and labels below 10, within every test vocabulary and class count), and
// the loss scale.
func (b *trainGraph) bindRandom(tb testing.TB, rng *rand.Rand, scale float32) {
	tb.Helper()
	random := func(n *G.Node) *tensor.Dense {
		shape := n.Shape().Clone()
		if n.Dtype() == tensor.Int {
			v := make([]int, shape.TotalSize())
			for i := range v {
				v[i] = rng.Intn(10)
			}
			return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
		}
		v := make([]float32, shape.TotalSize())
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
	}
	feed := model.Feed{Inputs: map[string]*tensor.Dense{}, Labels: random(b.mg.Labels)}
	for _, name := range slices.Sorted(maps.Keys(b.mg.Inputs)) {
		feed.Inputs[name] = random(b.mg.Inputs[name])
	}
	if err := b.mg.Bind(feed); err != nil {
		tb.Fatal(err)
	}
	if err := G.Let(b.scale, scale); err != nil {
		tb.Fatal(err)
	}
}

// loss is the bound loss value.
func (b *trainGraph) loss(tb testing.TB) float64 {
	tb.Helper()
	l, err := nn.ScalarValue(b.mg.Loss)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// gradsOf copies the learnables' host gradients.
func gradsOf(tb testing.TB, learn G.Nodes) [][]float32 {
	tb.Helper()
	out := make([][]float32, len(learn))
	for i, n := range learn {
		gv, err := n.Grad()
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = append([]float32(nil), nn.Slice[float32](gv.(*tensor.Dense))...)
	}
	return out
}

// valuesOf copies the learnables' host values.
func valuesOf(learn G.Nodes) [][]float32 {
	out := make([][]float32, len(learn))
	for i, n := range learn {
		out[i] = append([]float32(nil), nn.Slice[float32](n.Value().(*tensor.Dense))...)
	}
	return out
}

// closeTo compares tensors elementwise within tol relative to the
// largest magnitude of each reference tensor (gradients of a spiking
// network mix large and tiny entries); it returns the worst ratio of
// error to allowance, so ≤ 1 passes.
func closeTo(tb testing.TB, what string, names G.Nodes, got, want [][]float32, tol float64) float64 {
	tb.Helper()
	worst := 0.0
	for i := range want {
		scale := 0.0
		for _, v := range want[i] {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		allow := tol*scale + 1e-7
		for j := range want[i] {
			d := math.Abs(float64(got[i][j]) - float64(want[i][j]))
			if math.IsNaN(float64(got[i][j])) {
				d = math.Inf(1)
			}
			if r := d / allow; r > worst {
				worst = r
			}
			if d > allow {
				tb.Errorf("%s of %s[%d]: %g, want %g (allowed error %.3g)", what, names[i].Name(), j, got[i][j], want[i][j], allow)
				break
			}
		}
	}
	return worst
}
