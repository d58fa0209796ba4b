package nn

import (
	"fmt"
	"sort"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Ctx is what a layer needs to add itself to a graph: the graph, the
// parameter store, the mode (training or evaluation) and a scope path that
// prefixes parameter names and error messages. Sub returns a child scope;
// all scopes of one build share the same node cache, so a parameter used
// twice (a per-frame backbone shared over video frames) is one node.
type Ctx struct {
	g     *G.ExprGraph
	store *Store
	train bool
	path  string
	sh    *shared
}

type shared struct {
	nodes      map[string]*G.Node
	fixedNoise bool
	noiseSeed  int64
	noiseCount int64
}

// CtxOptions tune a build.
type CtxOptions struct {
	// Train selects training behaviour: dropout active, batch norm using and
	// updating batch statistics, modality dropout active.
	Train bool
	// NoiseSeed seeds every random mask op (dropout, modality dropout) of the
	// graph; each op derives its own stream from it.
	NoiseSeed int64
	// FixedNoise makes every random op draw the same mask on every run of the
	// graph. Gradient checks need it (the loss must be a fixed function of
	// the weights); training must not use it.
	FixedNoise bool
}

// NewCtx starts a build on graph g with parameters from store.
func NewCtx(g *G.ExprGraph, store *Store, opt CtxOptions) *Ctx {
	return &Ctx{g: g, store: store, train: opt.Train,
		sh: &shared{nodes: map[string]*G.Node{}, fixedNoise: opt.FixedNoise, noiseSeed: opt.NoiseSeed}}
}

// Graph returns the expression graph being built.
func (c *Ctx) Graph() *G.ExprGraph { return c.g }

// Store returns the parameter store.
func (c *Ctx) Store() *Store { return c.store }

// Dtype returns the element type of the graph's float tensors.
func (c *Ctx) Dtype() tensor.Dtype { return c.store.dtype }

// Train reports whether the graph is a training graph.
func (c *Ctx) Train() bool { return c.train }

// Path returns the dotted scope path, e.g. "vision.encoder.lif1".
func (c *Ctx) Path() string { return c.path }

// Sub returns a child scope named name.
func (c *Ctx) Sub(name string) *Ctx {
	cc := *c
	cc.path = joinPath(c.path, name)
	return &cc
}

// WithTrain returns the same scope with the training flag set to train
// (e.g. a frozen batch-norm layer that must use running statistics).
func (c *Ctx) WithTrain(train bool) *Ctx {
	cc := *c
	cc.train = train
	return &cc
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "." + b
}

// Errorf returns an error prefixed with the scope path, so a wiring error
// names the modality and layer.
func (c *Ctx) Errorf(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if c.path == "" {
		return fmt.Errorf("%s", msg)
	}
	return fmt.Errorf("%s: %s", c.path, msg)
}

// Param returns the graph node of the trainable parameter name (relative
// to the scope), creating the parameter in the store on first use.
func (c *Ctx) Param(name string, shape []int, init Init) (*G.Node, error) {
	return c.node(name, shape, init, true)
}

// Buffer returns the graph node of a non-trainable tensor (running
// statistics, fixed DFT or mel matrices). Buffers are saved in checkpoints
// but never get gradients.
func (c *Ctx) Buffer(name string, shape []int, init Init) (*G.Node, error) {
	return c.node(name, shape, init, false)
}

func (c *Ctx) node(name string, shape []int, init Init, trainable bool) (*G.Node, error) {
	full := joinPath(c.path, name)
	p, err := c.store.Get(full, shape, init, trainable)
	if err != nil {
		return nil, err
	}
	if n, ok := c.sh.nodes[full]; ok {
		return n, nil
	}
	n := G.NewTensor(c.g, c.store.dtype, len(shape), G.WithShape(shape...), G.WithName(full), G.WithValue(p.Value))
	c.sh.nodes[full] = n
	return n, nil
}

// ParamNode returns the node already created for the full parameter name
// in this build, or nil.
func (c *Ctx) ParamNode(fullName string) *G.Node { return c.sh.nodes[fullName] }

// Learnables returns the nodes of the trainable, unfrozen parameters used
// by this build, sorted by name: the nodes to differentiate and to bind
// dual values for.
func (c *Ctx) Learnables() G.Nodes {
	names := make([]string, 0, len(c.sh.nodes))
	for name := range c.sh.nodes {
		p := c.store.params[name]
		if p != nil && p.Trainable && !p.Frozen {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := make(G.Nodes, len(names))
	for i, name := range names {
		out[i] = c.sh.nodes[name]
	}
	return out
}

// NoiseSeed returns a seed for the next random op of the build: distinct
// per op, deterministic per build.
func (c *Ctx) NoiseSeed() int64 {
	c.sh.noiseCount++
	return c.sh.noiseSeed*1_000_003 + c.sh.noiseCount
}

// FixedNoise reports whether random ops must repeat the same mask on every
// run (gradient checks).
func (c *Ctx) FixedNoise() bool { return c.sh.fixedNoise }

// Input adds a float input placeholder of the given shape named name (no
// scope prefix: inputs are graph-global). Bind values with G.Let.
func (c *Ctx) Input(name string, shape ...int) *G.Node {
	return G.NewTensor(c.g, c.store.dtype, len(shape), G.WithShape(shape...), G.WithName(name))
}

// IntInput adds an integer input placeholder (token ids, class labels).
func (c *Ctx) IntInput(name string, shape ...int) *G.Node {
	return G.NewTensor(c.g, tensor.Int, len(shape), G.WithShape(shape...), G.WithName(name))
}

// Catch runs build and converts a panic raised inside it (Gorgonia's Must
// helpers panic on shape errors) into an error naming scope. Errors
// returned by build pass through unchanged.
func Catch(scope string, build func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: graph construction failed: %v", scope, r)
		}
	}()
	return build()
}
