package nn

import (
	"fmt"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Embedding maps integer ids to rows of a learned table, as
// torch.nn.Embedding(Num, Dim, padding_idx). Parameter under the scope:
// "weight" [Num, Dim], init Normal(0, 1) (the padding row, if any, starts at
// zero). It behaves the same in training and evaluation.
type Embedding struct {
	// Num is the number of ids (vocabulary size) and Dim the row width;
	// both must be positive.
	Num, Dim int
	// Padding enables PaddingIdx. (A separate switch because the zero
	// value of PaddingIdx, 0, is a valid id.)
	Padding bool
	// PaddingIdx, when Padding is set, is the id in [0, Num) whose row is
	// initialised to zeros and never receives a gradient, like PyTorch's
	// padding_idx. Its row is still looked up (zeros unless set by hand).
	PaddingIdx int
}

// Forward looks up ids of shape [B, L] (any rank ≥ 1, dtype tensor.Int) and
// returns [B, L, Dim]. An id outside [0, Num) makes the run fail with an
// error naming the id, its position and Num. The backward scatter-adds the
// output gradient into a dense [Num, Dim] table gradient.
func (e Embedding) Forward(c *Ctx, ids *G.Node) (*G.Node, error) {
	if e.Num <= 0 || e.Dim <= 0 {
		return nil, c.Errorf("embedding: Num and Dim must be positive, got Num=%d Dim=%d", e.Num, e.Dim)
	}
	if e.Padding && (e.PaddingIdx < 0 || e.PaddingIdx >= e.Num) {
		return nil, c.Errorf("embedding: PaddingIdx %d out of range [0, %d)", e.PaddingIdx, e.Num)
	}
	if ids == nil {
		return nil, c.Errorf("embedding: nil ids")
	}
	if ids.Dtype() != tensor.Int || ids.Shape().Dims() == 0 {
		return nil, c.Errorf("embedding expects ids of dtype int and shape [batch, seq], got %v %v", ids.Dtype(), ids.Shape())
	}
	pad := -1
	if e.Padding {
		pad = e.PaddingIdx
	}
	table, err := c.Param("weight", []int{e.Num, e.Dim}, embeddingInit{pad: pad})
	if err != nil {
		return nil, err
	}
	num, dim, path := e.Num, e.Dim, c.Path()
	name := fmt.Sprintf("Embedding{num=%d,dim=%d,pad=%d}", num, dim, pad)
	k := &Kernel{Name: name, NoGrad: []bool{false, true}}
	k.Shape = func(in []tensor.Shape) (tensor.Shape, error) {
		return append(in[1].Clone(), dim), nil
	}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		idx, err := intData(in[1])
		if err != nil {
			return nil, err
		}
		for p, id := range idx {
			if id < 0 || id >= num {
				return nil, fmt.Errorf("%s: token id %d at position %v is out of range [0, %d)", path, id, unflatten(p, in[1].Shape()), num)
			}
		}
		shape := append(in[1].Shape().Clone(), dim)
		out := Output(dst, in[0].Dtype(), shape)
		switch w := rowMajor(in[0]); w.Dtype() {
		case tensor.Float64:
			gatherRows(Slice[float64](w), Slice[float64](out), idx, dim)
		case tensor.Float32:
			gatherRows(Slice[float32](w), Slice[float32](out), idx, dim)
		default:
			return nil, fmt.Errorf("unsupported table dtype %v", in[0].Dtype())
		}
		return out, nil
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		bk := &Kernel{Name: name + "/grad", NoGrad: []bool{true, true}}
		bk.Shape = func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{num, dim}, nil }
		bk.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			idx, err := intData(in[1])
			if err != nil {
				return nil, err
			}
			out := Output(dst, in[0].Dtype(), tensor.Shape{num, dim})
			switch g := rowMajor(in[0]); g.Dtype() {
			case tensor.Float64:
				scatterAddRows(Slice[float64](g), Slice[float64](out), idx, dim, pad)
			case tensor.Float32:
				scatterAddRows(Slice[float32](g), Slice[float32](out), idx, dim, pad)
			default:
				return nil, fmt.Errorf("unsupported gradient dtype %v", in[0].Dtype())
			}
			return out, nil
		}
		gt, err := Apply(bk, grad, in[1])
		return G.Nodes{gt, nil}, err
	}
	y, err := Apply(k, table, ids)
	if err != nil {
		return nil, c.Errorf("embedding: %v", err)
	}
	return y, nil
}

// embeddingInit is Normal(0, 1) with the padding row (if pad ≥ 0) zeroed,
// as PyTorch initialises nn.Embedding.
type embeddingInit struct{ pad int }

func (e embeddingInit) Fill(dst []float64, shape []int, rng *rand.Rand) error {
	if len(shape) != 2 {
		return fmt.Errorf("embedding table needs 2 dimensions, got shape %v", shape)
	}
	for i := range dst {
		dst[i] = rng.NormFloat64()
	}
	if e.pad >= 0 {
		clear(dst[e.pad*shape[1] : (e.pad+1)*shape[1]])
	}
	return nil
}

func (e embeddingInit) String() string { return fmt.Sprintf("normal(0,1),padding_row=%d", e.pad) }

func gatherRows[T Float](table, out []T, idx []int, dim int) {
	for p, id := range idx {
		copy(out[p*dim:(p+1)*dim], table[id*dim:(id+1)*dim])
	}
}

// scatterAddRows adds row p of g into row idx[p] of out, skipping the
// padding id and ids out of range (the forward already rejected those).
func scatterAddRows[T Float](g, out []T, idx []int, dim, pad int) {
	num := len(out) / dim
	for p, id := range idx {
		if id == pad || id < 0 || id >= num {
			continue
		}
		dst, src := out[id*dim:(id+1)*dim], g[p*dim:(p+1)*dim]
		for j := range dst {
			dst[j] += src[j]
		}
	}
}

// rowMajor returns t, or a row-major copy of it when t is a view that
// cannot be read through its backing slice.
func rowMajor(t *tensor.Dense) *tensor.Dense {
	if !t.IsNativelyAccessible() || t.RequiresIterator() {
		return t.Materialize().(*tensor.Dense)
	}
	return t
}

// intData returns the backing []int of an index tensor.
func intData(t *tensor.Dense) ([]int, error) {
	idx, ok := rowMajor(t).Data().([]int)
	if !ok {
		return nil, fmt.Errorf("index tensor has dtype %v, want int", t.Dtype())
	}
	return idx, nil
}

// unflatten turns a flat row-major offset into an index per axis.
func unflatten(p int, shape tensor.Shape) []int {
	at := make([]int, len(shape))
	for a := len(shape) - 1; a >= 0; a-- {
		at[a] = p % shape[a]
		p /= shape[a]
	}
	return at
}
