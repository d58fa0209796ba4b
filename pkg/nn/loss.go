package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The losses below are each one kernel producing a [1] tensor (kernels may
// not return scalars) reduced to a scalar node by G.Sum, with a
// hand-written backward kernel.

// CrossEntropy returns the mean over the batch of −log softmax(logits)[label]
// for logits [B, C] and labels [B] (dtype tensor.Int), as
// torch.nn.functional.cross_entropy(logits, labels). The log-softmax is
// computed stably inside the op; the backward is (softmax − onehot)/B. A
// label outside [0, C) makes the run fail with an error naming it.
func CrossEntropy(logits, labels *G.Node) (*G.Node, error) {
	if err := checkFloatNode("cross entropy", logits); err != nil {
		return nil, err
	}
	if ls := logits.Shape(); ls.Dims() != 2 || labels == nil || labels.Dtype() != tensor.Int || !labels.Shape().Eq(tensor.Shape{ls[0]}) {
		return nil, fmt.Errorf("cross entropy expects logits [batch, classes] and int labels [batch], got logits %v and labels %s", ls, nodeDesc(labels))
	}
	return crossEntropy(logits, labels, false, 0)
}

// CrossEntropySeq returns the token-level cross entropy of logits
// [B, L, V] against labels [B, L] (dtype tensor.Int), averaged over the
// tokens whose label is not ignoreIndex (torch's ignore_index, e.g. the
// padding id or −100). When every token is ignored the loss is 0 with a zero
// gradient (PyTorch would return NaN). A label outside [0, V) that is not
// ignoreIndex makes the run fail with an error naming it and its position.
func CrossEntropySeq(logits, labels *G.Node, ignoreIndex int) (*G.Node, error) {
	if err := checkFloatNode("cross entropy", logits); err != nil {
		return nil, err
	}
	if ls := logits.Shape(); ls.Dims() != 3 || labels == nil || labels.Dtype() != tensor.Int || !labels.Shape().Eq(tensor.Shape{ls[0], ls[1]}) {
		return nil, fmt.Errorf("sequence cross entropy expects logits [batch, seq, vocab] and int labels [batch, seq], got logits %v and labels %s", ls, nodeDesc(labels))
	}
	return crossEntropy(logits, labels, true, ignoreIndex)
}

// nodeDesc describes a node's dtype and shape for error messages.
func nodeDesc(n *G.Node) string {
	if n == nil {
		return "nil"
	}
	return fmt.Sprintf("%v %v", n.Dtype(), n.Shape())
}

// ceSpec is one cross-entropy op: logits [..., V] against labels [...],
// optionally ignoring one label value.
type ceSpec struct {
	ignore    bool
	ignoreIdx int
}

func crossEntropy(logits, labels *G.Node, ignore bool, ignoreIdx int) (*G.Node, error) {
	spec := ceSpec{ignore: ignore, ignoreIdx: ignoreIdx}
	name := "CrossEntropy"
	if ignore {
		name = fmt.Sprintf("CrossEntropy{ignore=%d}", ignoreIdx)
	}
	k := &Kernel{Name: name, NoGrad: []bool{false, true}, Shape: constShape(tensor.Shape{1})}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		idx, err := intData(in[1])
		if err != nil {
			return nil, err
		}
		if err := spec.checkLabels(idx, in[0].Shape(), in[1].Shape()); err != nil {
			return nil, err
		}
		out := Output(dst, in[0].Dtype(), tensor.Shape{1})
		switch x := rowMajor(in[0]); x.Dtype() {
		case tensor.Float64:
			Slice[float64](out)[0] = ceLoss(spec, Slice[float64](x), idx)
		case tensor.Float32:
			Slice[float32](out)[0] = float32(ceLoss(spec, Slice[float32](x), idx))
		default:
			return nil, fmt.Errorf("unsupported logits dtype %v", in[0].Dtype())
		}
		return out, nil
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		bk := &Kernel{Name: name + "/grad", Shape: sameShapeAsFirst}
		bk.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			idx, err := intData(in[1])
			if err != nil {
				return nil, err
			}
			g, err := scalarValue(in[2])
			if err != nil {
				return nil, err
			}
			out := Output(dst, in[0].Dtype(), in[0].Shape().Clone())
			switch x := rowMajor(in[0]); x.Dtype() {
			case tensor.Float64:
				ceGrad(spec, Slice[float64](x), idx, g, Slice[float64](out))
			case tensor.Float32:
				ceGrad(spec, Slice[float32](x), idx, g, Slice[float32](out))
			default:
				return nil, fmt.Errorf("unsupported logits dtype %v", in[0].Dtype())
			}
			return out, nil
		}
		gl, err := Apply(bk, in[0], in[1], grad)
		return G.Nodes{gl, nil}, err
	}
	l, err := Apply(k, logits, labels)
	if err != nil {
		return nil, err
	}
	return G.Sum(l)
}

// checkLabels rejects labels outside [0, V) that are not ignored.
func (s ceSpec) checkLabels(idx []int, logits, labels tensor.Shape) error {
	v := logits[len(logits)-1]
	for p, y := range idx {
		if s.ignore && y == s.ignoreIdx {
			continue
		}
		if y < 0 || y >= v {
			return fmt.Errorf("label %d at position %v is out of range [0, %d)", y, unflatten(p, labels), v)
		}
	}
	return nil
}

// counted returns how many labels take part in the mean.
func (s ceSpec) counted(idx []int) int {
	n := 0
	for _, y := range idx {
		if !s.ignore || y != s.ignoreIdx {
			n++
		}
	}
	return n
}

// ceLoss is the mean of logsumexp(row) − row[label] over counted rows.
func ceLoss[T Float](s ceSpec, x []T, idx []int) float64 {
	v := len(x) / len(idx)
	var sum float64
	for p, y := range idx {
		if s.ignore && y == s.ignoreIdx {
			continue
		}
		row := x[p*v : (p+1)*v]
		sum += logSumExp(row) - float64(row[y])
	}
	if n := s.counted(idx); n > 0 {
		return sum / float64(n)
	}
	return 0
}

// ceGrad writes g·(softmax(row) − onehot(label))/n for counted rows and 0
// for ignored ones.
func ceGrad[T Float](s ceSpec, x []T, idx []int, g float64, dx []T) {
	n := s.counted(idx)
	if n == 0 {
		return
	}
	v := len(x) / len(idx)
	sc := g / float64(n)
	for p, y := range idx {
		if s.ignore && y == s.ignoreIdx {
			continue
		}
		row, drow := x[p*v:(p+1)*v], dx[p*v:(p+1)*v]
		softmaxRow(row, drow)
		drow[y] -= 1
		for j := range drow {
			drow[j] = T(float64(drow[j]) * sc)
		}
	}
}

// MSE returns the mean over all elements of (pred − target)² for two float
// nodes of equal shape and dtype (torch.nn.functional.mse_loss). Both
// inputs are differentiable: d/dpred = 2(pred − target)/N, d/dtarget its
// negation.
func MSE(pred, target *G.Node) (*G.Node, error) {
	if err := checkFloatNode("mse", pred); err != nil {
		return nil, err
	}
	if err := checkFloatNode("mse", target); err != nil {
		return nil, err
	}
	if !pred.Shape().Eq(target.Shape()) || pred.Dtype() != target.Dtype() {
		return nil, fmt.Errorf("mse: prediction %s and target %s must have the same shape and dtype", nodeDesc(pred), nodeDesc(target))
	}
	k := &Kernel{Name: "MSE", Shape: constShape(tensor.Shape{1})}
	k.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
		return floatKernel(tensor.Shape{1}, in, dst,
			func(in [][]float64, out []float64) { out[0] = sqErrMean(in[0], in[1]) },
			func(in [][]float32, out []float32) { out[0] = float32(sqErrMean(in[0], in[1])) })
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		bk := &Kernel{Name: "MSE/grad", Shape: sameShapeAsFirst}
		bk.Forward = func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			g, err := scalarValue(in[2])
			if err != nil {
				return nil, err
			}
			return floatKernel(in[0].Shape().Clone(), in[:2], dst,
				func(in [][]float64, out []float64) { sqErrGrad(in[0], in[1], g, out) },
				func(in [][]float32, out []float32) { sqErrGrad(in[0], in[1], g, out) })
		}
		gp, err := Apply(bk, in[0], in[1], grad)
		if err != nil {
			return nil, err
		}
		gt, err := G.Neg(gp)
		return G.Nodes{gp, gt}, err
	}
	l, err := Apply(k, pred, target)
	if err != nil {
		return nil, err
	}
	return G.Sum(l)
}

func sqErrMean[T Float](p, t []T) float64 {
	var s float64
	for i := range p {
		d := float64(p[i]) - float64(t[i])
		s += d * d
	}
	return s / float64(len(p))
}

func sqErrGrad[T Float](p, t []T, g float64, dp []T) {
	sc := 2 * g / float64(len(p))
	for i := range p {
		dp[i] = T((float64(p[i]) - float64(t[i])) * sc)
	}
}

// scalarValue reads the single element of a one-element float tensor (the
// incoming gradient of a [1]-shaped loss kernel).
func scalarValue(t *tensor.Dense) (float64, error) {
	if t.Shape().TotalSize() != 1 {
		return 0, fmt.Errorf("expected a one-element gradient, got shape %v", t.Shape())
	}
	switch t.Dtype() {
	case tensor.Float64:
		return Slice[float64](t)[0], nil
	case tensor.Float32:
		return float64(Slice[float32](t)[0]), nil
	}
	switch v := t.Data().(type) {
	case float64:
		return v, nil
	case float32:
		return float64(v), nil
	}
	return 0, fmt.Errorf("unsupported gradient data %T", t.Data())
}
