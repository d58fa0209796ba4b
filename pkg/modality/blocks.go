package modality

import (
	"fmt"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Building blocks shared by several preprocessors.

// Batch-norm settings of every preprocessor (PyTorch's defaults).
const (
	bnMomentum = 0.1
	bnEps      = 1e-5
)

// checkInput validates x against a shape pattern: want[i] > 0 must match,
// want[i] == 0 accepts any positive size (batch and the free axes). names
// label the axes in the message, e.g. "[batch, channels=3, height, width]".
func checkInput(c *nn.Ctx, x *G.Node, kind string, intInput bool, want []int, names []string) error {
	if x == nil {
		return c.Errorf("%s preprocessor: nil input", kind)
	}
	s := x.Shape()
	pattern := describeShape(want, names)
	if s.Dims() != len(want) {
		return c.Errorf("%s preprocessor expects input %s, got shape %v", kind, pattern, s)
	}
	for i, w := range want {
		if w > 0 && s[i] != w {
			return c.Errorf("%s preprocessor expects input %s, got shape %v (%s is %d, want %d)", kind, pattern, s, names[i], s[i], w)
		}
	}
	isInt := x.Dtype() == tensor.Int
	if intInput && !isInt {
		return c.Errorf("%s preprocessor expects integer token ids, got dtype %v", kind, x.Dtype())
	}
	if !intInput && x.Dtype() != c.Dtype() {
		return c.Errorf("%s preprocessor expects %v input, got dtype %v", kind, c.Dtype(), x.Dtype())
	}
	return nil
}

func describeShape(want []int, names []string) string {
	parts := make([]string, len(want))
	for i, w := range want {
		if w > 0 {
			parts[i] = fmt.Sprintf("%s=%d", names[i], w)
		} else {
			parts[i] = names[i]
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// guard runs a preprocessor's graph building and turns a panic from
// Gorgonia (its Must helpers) into an error naming the scope, so no panic
// escapes the package.
func guard(c *nn.Ctx, kind string, build func() (*G.Node, error)) (*G.Node, error) {
	scope := c.Path()
	if scope == "" {
		scope = kind
	}
	var y *G.Node
	err := nn.Catch(scope, func() error {
		var err error
		y, err = build()
		return err
	})
	if err != nil {
		return nil, err
	}
	return y, nil
}

// activate applies the named activation (nn.ActivationByName).
func activate(c *nn.Ctx, name string, x *G.Node) (*G.Node, error) {
	f, err := nn.ActivationByName(name)
	if err != nil {
		return nil, c.Errorf("%v", err)
	}
	y, err := f(x)
	if err != nil {
		return nil, c.Errorf("%s: %v", name, err)
	}
	return y, nil
}

// batchNorm applies nn.BatchNorm over the channel axis 1 under scope name.
func batchNorm(c *nn.Ctx, name string, features int, x *G.Node) (*G.Node, error) {
	return nn.BatchNorm{Features: features, Momentum: bnMomentum, Eps: bnEps}.Forward(c.Sub(name), x)
}

// poolHead global-average-pools x [B, C, spatial...] to [B, C] and applies
// the Linear(C, out) layer "fc".
func poolHead(c *nn.Ctx, x *G.Node, out int) (*G.Node, error) {
	p, err := nn.GlobalAvgPool(c, x)
	if err != nil {
		return nil, err
	}
	return nn.Linear{In: x.Shape()[1], Out: out}.Forward(c.Sub("fc"), p)
}

// conv1dStack applies, for each width w of widths, the block
// "conv<i>" Conv1d(k, stride 1, padding k/2, no bias: the batch norm's
// shift replaces it) → "bn<i>" BatchNorm → ReLU →
// MaxPool1d(pool) (the pooling only while the length is at least pool,
// and not at all when pool ≤ 1) to x [B, C, L]; blocks are numbered from
// first. It returns [B, widths[last], L'].
func conv1dStack(c *nn.Ctx, x *G.Node, widths []int, k, pool, first int) (*G.Node, error) {
	var err error
	for i, w := range widths {
		n := first + i
		in := x.Shape()[1]
		if x, err = (nn.Conv1d{InC: in, OutC: w, Kernel: k, Stride: 1, Padding: k / 2, NoBias: true}).Forward(c.Sub(fmt.Sprintf("conv%d", n)), x); err != nil {
			return nil, err
		}
		if x, err = batchNorm(c, fmt.Sprintf("bn%d", n), w, x); err != nil {
			return nil, err
		}
		if x, err = activate(c, "relu", x); err != nil {
			return nil, err
		}
		if x, err = maxPool1d(c, x, pool); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// maxPool1d applies MaxPool1d(pool, stride pool) to x [B, C, L] when
// pool > 1 and L ≥ pool; otherwise x is returned unchanged (a short
// sequence is not pooled away).
func maxPool1d(c *nn.Ctx, x *G.Node, pool int) (*G.Node, error) {
	if pool <= 1 || x.Shape()[2] < pool {
		return x, nil
	}
	return nn.MaxPool1d{Kernel: pool, Stride: pool}.Forward(c, x)
}

// reshape is nn.Reshape (a copy, never an aliasing view) with the error
// naming the scope.
func reshape(c *nn.Ctx, x *G.Node, shape ...int) (*G.Node, error) {
	y, err := nn.Reshape(x, shape...)
	if err != nil {
		return nil, c.Errorf("reshape %v to %v: %v", x.Shape(), shape, err)
	}
	return y, nil
}

// scopedErr names the scope in an error from a helper that has no Ctx.
func scopedErr(c *nn.Ctx, err error) error {
	if err == nil {
		return nil
	}
	return c.Errorf("%v", err)
}
