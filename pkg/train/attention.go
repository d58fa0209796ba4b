package train

import (
	"context"
	"fmt"
	"sort"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/vm"
)

// AttentionMap is one fusion attention map of one sample, averaged over the
// heads: Weights[i][j] is how much query Rows[i] attends to key Cols[j].
type AttentionMap struct {
	Name    string
	Rows    []string
	Cols    []string
	Weights [][]float64
}

// AttentionSample holds the attention maps of one evaluated sample.
type AttentionSample struct {
	// Index is the sample's index in the dataset.
	Index int
	// Label and Pred are the true and predicted classes (-1 when the head
	// is not a classifier).
	Label, Pred int
	Maps        []AttentionMap
}

// AttentionMaps runs net in evaluation mode on the first n samples of ds
// and returns their fusion attention maps ("self" for hybrid and
// hierarchical, "cross.<modality>" for hierarchical's first level). Early
// and late fusion have none: the result is then empty.
func AttentionMaps(net *model.Network, store *nn.Store, ds data.Dataset, n int) ([]AttentionSample, error) {
	if n > ds.Len() {
		n = ds.Len()
	}
	if n <= 0 {
		return nil, nil
	}
	g := G.NewGraph()
	mg, err := net.Build(nn.NewCtx(g, store, nn.CtxOptions{}), n)
	if err != nil {
		return nil, err
	}
	if len(mg.Attention) == 0 {
		return nil, nil
	}
	// Copies that nothing consumes, so the maps are read from roots on any
	// executor (a TapeMachine reuses intermediate nodes' buffers: pkg/nn doc).
	names := make([]string, 0, len(mg.Attention))
	reads := map[string]*G.Node{}
	for name, node := range mg.Attention {
		cp, err := nn.Reshape(node, node.Shape()...)
		if err != nil {
			return nil, fmt.Errorf("attention map %s: %w", name, err)
		}
		names = append(names, name)
		reads[name] = cp
	}
	sort.Strings(names)
	out, err := nn.Reshape(mg.Output, mg.Output.Shape()...)
	if err != nil {
		return nil, err
	}
	m, err := vm.New(g, nil, vm.EvalMode())
	if err != nil {
		return nil, err
	}
	defer m.Close()
	loader, err := data.NewLoader(ds, data.LoaderConfig{BatchSize: n})
	if err != nil {
		return nil, err
	}
	var batch data.Batch
	for b, err := range loader.Epoch(context.Background(), 0, 0) {
		if err != nil {
			return nil, err
		}
		batch = b
		break
	}
	head := net.Config().Head
	feed, err := batchFeed(mg, head, batch, "")
	if err != nil {
		return nil, err
	}
	if err := mg.Bind(feed); err != nil {
		return nil, err
	}
	if err := m.RunAll(); err != nil {
		return nil, err
	}
	preds := make([]int, n)
	for i := range preds {
		preds[i] = -1
	}
	if head == model.HeadClassification {
		ov, ok := out.Value().(tensor.Tensor)
		if !ok {
			return nil, fmt.Errorf("attention maps: output has no value after the run")
		}
		scores, err := nn.ToFloat64(ov)
		if err != nil {
			return nil, err
		}
		if preds, err = ArgMax(scores, net.Config().OutputDim); err != nil {
			return nil, err
		}
	}
	samples := make([]AttentionSample, n)
	for i := range samples {
		samples[i] = AttentionSample{Index: batch.Indices[i], Label: -1, Pred: preds[i]}
		if head == model.HeadClassification && i < len(batch.Classes) {
			samples[i].Label = batch.Classes[i]
		}
	}
	mods := net.Names()
	for _, name := range names {
		v, ok := reads[name].Value().(tensor.Tensor)
		if !ok {
			return nil, fmt.Errorf("attention map %s has no value after the run", name)
		}
		w, err := nn.ToFloat64(v)
		if err != nil {
			return nil, err
		}
		shape := v.Shape()
		if shape.Dims() != 4 || shape[0] != n {
			return nil, fmt.Errorf("attention map %s has shape %v, want [%d, heads, queries, keys]", name, shape, n)
		}
		rows, cols := mods, mods
		if m, ok := strings.CutPrefix(name, "cross."); ok {
			rows, cols = []string{m}, without(mods, m)
		}
		if len(rows) != shape[2] || len(cols) != shape[3] {
			rows, cols = indexLabels(shape[2]), indexLabels(shape[3])
		}
		for i := range samples {
			samples[i].Maps = append(samples[i].Maps, AttentionMap{Name: name, Rows: rows, Cols: cols,
				Weights: headMean(w[i*shape[1]*shape[2]*shape[3]:(i+1)*shape[1]*shape[2]*shape[3]], shape[1], shape[2], shape[3])})
		}
	}
	return samples, nil
}

// headMean averages a [heads, q, k] block over the heads.
func headMean(w []float64, heads, q, k int) [][]float64 {
	out := make([][]float64, q)
	for i := range out {
		out[i] = make([]float64, k)
		for h := 0; h < heads; h++ {
			for j := range out[i] {
				out[i][j] += w[(h*q+i)*k+j] / float64(heads)
			}
		}
	}
	return out
}

func without(names []string, drop string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != drop {
			out = append(out, n)
		}
	}
	return out
}

func indexLabels(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(i)
	}
	return out
}
