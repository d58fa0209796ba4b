package modality

import (
	"fmt"
	"regexp"
	"sort"
	"sync"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Preprocessor turns one modality's raw batch into a feature matrix
// [B, OutputDim] that the modality's spiking encoder consumes. It owns no
// tensors: Forward creates (or reuses) its parameters in the store behind
// c, under c's scope, so the same Preprocessor value builds the training
// and the evaluation graph.
type Preprocessor interface {
	// Kind is the modality kind (Config.Kind), e.g. "vision".
	Kind() string
	// InputShape is the shape of the input placeholder for a batch of
	// batch samples: [B,C,H,W] for vision, [B,samples] for audio, [B,L]
	// for text, [B,sensors,time] for sensor, [B,frames,C,H,W] for video,
	// [B,in] for mlp. Forward may accept other sizes along the free axes
	// (each kind documents which).
	InputShape(batch int) []int
	// IntInput reports whether the input holds integer ids (text) rather
	// than floats.
	IntInput() bool
	// OutputDim is D of the [B, D] feature Forward returns.
	OutputDim() int
	// Forward adds the preprocessor to the graph behind c and returns the
	// feature [B, OutputDim]. A wrong input shape or dtype is an error
	// naming the scope (c.Errorf), never a panic.
	Forward(c *nn.Ctx, x *G.Node) (*G.Node, error)
}

// SequencePreprocessor is a Preprocessor that can also return one feature
// per input position (text: per token), for cross-attention or token-level
// heads.
type SequencePreprocessor interface {
	Preprocessor
	// ForwardSequence returns seq [B, L, OutputDim] and mask [B, L] (1 for
	// a real position, 0 for padding; the float mask nn.MultiHeadAttention
	// takes). Pooling seq with the mask gives Forward's result for the
	// "mean" pooling.
	ForwardSequence(c *nn.Ctx, x *G.Node) (seq, mask *G.Node, err error)
}

// Factory builds a preprocessor from its config. cfg.Kind is the name it
// was registered under and cfg.OutputDim has its default applied; the
// factory validates the rest (cfg.Architecture, cfg.Options); New
// prefixes its errors with "<name>: ", so they should name the key, e.g.
// "options.window: must be positive".
type Factory func(cfg Config) (Preprocessor, error)

// registry is the package's only mutable state: the preprocessors added
// with Register, guarded by its mutex. Built-in kinds are not in it and
// cannot be replaced.
var registry = struct {
	mu sync.RWMutex
	m  map[string]Factory
}{m: map[string]Factory{}}

var kindName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Register adds a preprocessor kind so that New (and so a config file's
// `kind: name`) can build it; this is how a Go program plugs in its own
// modality. name must be lower-case snake_case ([a-z][a-z0-9_]*), must not
// be a built-in kind and must not be registered already. Register is safe
// for concurrent use; registrations last for the life of the process.
func Register(name string, f func(Config) (Preprocessor, error)) error {
	if !kindName.MatchString(name) {
		return fmt.Errorf("modality: register %q: name must match [a-z][a-z0-9_]*", name)
	}
	if f == nil {
		return fmt.Errorf("modality: register %q: nil factory", name)
	}
	if isBuiltin(name) {
		return fmt.Errorf("modality: register %q: a built-in kind has that name", name)
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if _, ok := registry.m[name]; ok {
		return fmt.Errorf("modality: register %q: already registered", name)
	}
	registry.m[name] = f
	return nil
}

// Kinds returns the built-in kinds followed by the registered ones,
// sorted.
func Kinds() []string {
	registry.mu.RLock()
	reg := make([]string, 0, len(registry.m))
	for k := range registry.m {
		reg = append(reg, k)
	}
	registry.mu.RUnlock()
	sort.Strings(reg)
	return append(append([]string(nil), builtinKinds...), reg...)
}

func lookup(name string) Factory {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	return registry.m[name]
}

// New validates cfg (after WithDefaults) and builds its preprocessor. It
// builds no graph: call Forward for that.
// Errors name the field, e.g.
// `vision.architecture: unknown "resnt" (valid: simple, resnet, efficient)`.
func New(cfg Config) (Preprocessor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Kind {
	case KindVision:
		return newVision(cfg.Vision, cfg.Architecture, cfg.OutputDim), nil
	case KindAudio:
		return newAudio(cfg.Audio, cfg.Architecture, cfg.OutputDim), nil
	case KindText:
		return newText(cfg.Text, cfg.OutputDim), nil
	case KindSensor:
		return newSensor(cfg.Sensor, cfg.OutputDim), nil
	case KindVideo:
		return newVideo(cfg.Video, cfg.Architecture, cfg.OutputDim), nil
	case KindMLP:
		return newMLP(cfg.MLP, cfg.OutputDim), nil
	}
	p, err := lookup(cfg.Kind)(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Kind, err)
	}
	if p == nil {
		return nil, fmt.Errorf("%s: factory returned no preprocessor", cfg.Kind)
	}
	return p, nil
}
