package train

import (
	"fmt"
	"slices"
	"sort"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/model"
)

// batchFeed converts a loader batch into the feed of graph mg (built for
// b.Size samples): float inputs are converted to the graph's dtype, token
// ids become tensor.Int, presence becomes 0/1 vectors, labels follow the
// network's head. Every mismatch is an error naming the modality (or the
// labels) and saying what the network expects. Modalities of the batch
// that the network does not use are ignored.
//
// drop, when non-empty, removes that modality (ablation): with a presence
// input it is marked absent for every sample (the fusion substitutes its
// learned missing embedding); without one its input is zeroed.
func batchFeed(mg *model.Graph, head string, b data.Batch, drop string) (model.Feed, error) {
	if b.Size != mg.Batch {
		return model.Feed{}, fmt.Errorf("batch of %d samples for a graph built for %d", b.Size, mg.Batch)
	}
	f := model.Feed{Inputs: map[string]*tensor.Dense{}, Present: map[string]*tensor.Dense{}}
	names := make([]string, 0, len(mg.Inputs))
	for name := range mg.Inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		node := mg.Inputs[name]
		want := []int(node.Shape())
		if name == drop {
			if mg.Present[name] == nil {
				f.Inputs[name] = tensor.New(tensor.Of(node.Dtype()), tensor.WithShape(want...))
			}
			continue
		}
		if node.Dtype() == tensor.Int {
			ids, ok := b.Tokens[name]
			if !ok {
				return model.Feed{}, fmt.Errorf("modality %q: the network reads token ids but the batch has none for it (batch token modalities: %v, float modalities: %v)",
					name, sortedKeys(b.Tokens), sortedKeys(b.Inputs))
			}
			if len(ids) != prod(want) {
				return model.Feed{}, fmt.Errorf("modality %q: the batch has %d token ids per sample, the network expects shape %v (check the text preprocessor's seq_len against the data)",
					name, b.TokenLen[name], want)
			}
			f.Inputs[name] = tensor.New(tensor.WithShape(want...), tensor.WithBacking(append([]int(nil), ids...)))
		} else {
			x, ok := b.Inputs[name]
			if !ok {
				return model.Feed{}, fmt.Errorf("modality %q: the batch has no input for it (batch modalities: %v, token modalities: %v)",
					name, sortedKeys(b.Inputs), sortedKeys(b.Tokens))
			}
			if !slices.Equal(x.Shape, want) {
				return model.Feed{}, fmt.Errorf("modality %q: batch input has shape %v, the network expects %v (check the modality's preprocessor config against the data)",
					name, x.Shape, want)
			}
			f.Inputs[name] = denseOf(node.Dtype(), want, x.Data)
		}
		pres, hasPres := b.Present[name]
		if p := mg.Present[name]; p != nil {
			v := make([]float32, b.Size)
			for i := range v {
				if !hasPres || pres[i] {
					v[i] = 1
				}
			}
			f.Present[name] = denseOf(p.Dtype(), []int{b.Size}, v)
			continue
		}
		for i, ok := range pres {
			if !ok {
				return model.Feed{}, fmt.Errorf("modality %q: sample %d lacks it, and the network has no missing-modality embedding (set the fusion's missing_embedding or a modality_dropout rate)",
					name, b.Indices[i])
			}
		}
	}
	lab, err := batchLabels(mg, head, b)
	if err != nil {
		return model.Feed{}, err
	}
	f.Labels = lab
	return f, nil
}

// batchLabels builds the labels tensor of the head kind.
func batchLabels(mg *model.Graph, head string, b data.Batch) (*tensor.Dense, error) {
	want := []int(mg.Labels.Shape())
	switch head {
	case model.HeadRegression:
		if b.Vectors.Data == nil {
			return nil, fmt.Errorf("labels: the samples carry no target vector, but the network's head is regression")
		}
		if !slices.Equal(b.Vectors.Shape, want) {
			return nil, fmt.Errorf("labels: targets have shape %v, the regression head expects %v (output_dim = %d)", b.Vectors.Shape, want, want[1])
		}
		return denseOf(mg.Labels.Dtype(), want, b.Vectors.Data), nil
	case model.HeadTokens, model.HeadCaption:
		if b.LabelTokens == nil {
			return nil, fmt.Errorf("labels: the samples carry no target tokens, but the network's head is %s", head)
		}
		if b.LabelLen != want[1] {
			return nil, fmt.Errorf("labels: %d target tokens per sample, the %s head expects %d (token_len)", b.LabelLen, head, want[1])
		}
		return tensor.New(tensor.WithShape(want...), tensor.WithBacking(append([]int(nil), b.LabelTokens...))), nil
	default:
		if b.Classes == nil {
			return nil, fmt.Errorf("labels: the samples carry no class label, but the network's head is classification")
		}
		return tensor.New(tensor.WithShape(want...), tensor.WithBacking(append([]int(nil), b.Classes...))), nil
	}
}

// denseOf copies float32 values into a new tensor of dtype dt.
func denseOf(dt tensor.Dtype, shape []int, v []float32) *tensor.Dense {
	if dt == tensor.Float64 {
		d := make([]float64, len(v))
		for i, x := range v {
			d[i] = float64(x)
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), v...)))
}

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
