package model

import (
	"fmt"
	"math"
	"sort"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/vm"
)

// GenerateOptions control caption generation. Zero fields take the
// network's CaptionConfig values.
type GenerateOptions struct {
	// MaxLen is the most tokens generated after <bos> (<eos> included).
	MaxLen int
	// BeamSize is the number of hypotheses kept per sample; 1 is greedy
	// decoding.
	BeamSize int
	// BOS and EOS are the start and end ids.
	BOS, EOS int
	// LengthPenalty α ranks finished beams by LogProb / len^α (len counts
	// the generated tokens, <eos> included); 0 ranks by LogProb. The
	// search itself always compares raw log-probabilities.
	LengthPenalty float64
}

// Caption is one generated token sequence.
type Caption struct {
	// Tokens are the generated ids after <bos>, without <eos>.
	Tokens []int
	// LogProb is the sum of the log-probabilities of Tokens, and of <eos>
	// when Ended.
	LogProb float64
	// Ended reports whether <eos> was generated within MaxLen.
	Ended bool
}

// Generator generates captions for batches of a fixed size with a caption
// network's weights: an encoder graph computes the decoder's conditioning
// once per batch, and one decoder-step graph (one row per sample and beam)
// runs once per generated token, reusing its machine. Both graphs bind the
// store's tensors; evaluation mode (no dropout, running batch statistics).
// A Generator is not safe for concurrent use; Close releases its machines.
type Generator struct {
	net   *Network
	store *nn.Store
	batch int
	dec   *captionDecoder
	enc   *Graph
	encVM G.VM
	steps map[int]*graphStepper // by beam size
}

// NewGenerator builds the encoder graph of net (whose head must be
// caption) for batch samples over store.
func NewGenerator(net *Network, store *nn.Store, batch int) (*Generator, error) {
	if net == nil || store == nil {
		return nil, fmt.Errorf("generate: nil network or store")
	}
	if net.cfg.Head != HeadCaption {
		return nil, fmt.Errorf("generate: the network's head is %q; generation needs the %q head", net.cfg.Head, HeadCaption)
	}
	if batch <= 0 {
		return nil, fmt.Errorf("generate: batch size must be positive, got %d", batch)
	}
	dec, err := net.captionDecoder()
	if err != nil {
		return nil, err
	}
	g := G.NewGraph()
	var mg *Graph
	err = nn.Catch("caption encoder", func() error {
		var err error
		mg, err = net.build(nn.NewCtx(g, store, nn.CtxOptions{}), batch, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	encVM, err := vm.New(g, nil, vm.EvalMode())
	if err != nil {
		return nil, err
	}
	return &Generator{net: net, store: store, batch: batch, dec: dec, enc: mg, encVM: encVM, steps: map[int]*graphStepper{}}, nil
}

// Close releases the generator's machines.
func (gen *Generator) Close() {
	if gen.encVM != nil {
		gen.encVM.Close()
	}
	for _, s := range gen.steps {
		s.vm.Close()
	}
	gen.steps = map[int]*graphStepper{}
}

// Batch is the number of samples the generator was built for.
func (gen *Generator) Batch() int { return gen.batch }

// Generate returns one caption per sample of feed (its Labels are
// ignored): greedy decoding for beam size 1, beam search otherwise. A
// sample's hypotheses start from <bos>; a hypothesis that emits <eos> is
// finished and keeps its score while the others extend; the search stops
// when every kept hypothesis is finished or MaxLen tokens were generated,
// and returns the best-ranked one (GenerateOptions.LengthPenalty).
func (gen *Generator) Generate(feed Feed, opts GenerateOptions) ([]Caption, error) {
	o := gen.options(opts)
	if o.MaxLen < 1 || o.BeamSize < 1 {
		return nil, fmt.Errorf("generate: max_len and beam_size must be ≥ 1, got %d and %d", o.MaxLen, o.BeamSize)
	}
	v := gen.net.cfg.OutputDim
	if o.BOS < 0 || o.BOS >= v || o.EOS < 0 || o.EOS >= v {
		return nil, fmt.Errorf("generate: bos %d / eos %d outside the vocabulary [0, %d)", o.BOS, o.EOS, v)
	}
	init, ctx, err := gen.condition(feed)
	if err != nil {
		return nil, err
	}
	st, err := gen.stepper(o.BeamSize)
	if err != nil {
		return nil, err
	}
	st.start(init, ctx, o.BeamSize)
	return beamSearch(st, gen.batch, v, o)
}

func (gen *Generator) options(o GenerateOptions) GenerateOptions {
	cc := gen.net.cfg.Caption
	if o.MaxLen == 0 {
		o.MaxLen = cc.MaxLen
	}
	if o.BeamSize == 0 {
		o.BeamSize = cc.BeamSize
	}
	if o.BOS == 0 {
		o.BOS = cc.BOS
	}
	if o.EOS == 0 {
		o.EOS = cc.EOS
	}
	return o
}

// condition runs the encoder graph on feed and returns h_0 [B·Units] and
// the context [B·EmbedDim].
func (gen *Generator) condition(feed Feed) (init, ctx []float64, err error) {
	feed.Labels = nil
	if err := gen.enc.Bind(feed); err != nil {
		return nil, nil, fmt.Errorf("generate: %w", err)
	}
	defer gen.encVM.Reset()
	if err := gen.encVM.RunAll(); err != nil {
		return nil, nil, fmt.Errorf("generate: encoder: %w", err)
	}
	if init, err = nodeValues(gen.enc.Caption.Init); err != nil {
		return nil, nil, err
	}
	if ctx, err = nodeValues(gen.enc.Caption.Context); err != nil {
		return nil, nil, err
	}
	return init, ctx, nil
}

func nodeValues(n *G.Node) ([]float64, error) {
	v, ok := n.Value().(tensor.Tensor)
	if !ok || v == nil {
		return nil, fmt.Errorf("generate: %s has no value after the run", n.Name())
	}
	return nn.ToFloat64(v)
}

// stepper returns the decoder-step graph for beam size k, building it on
// first use.
func (gen *Generator) stepper(k int) (*graphStepper, error) {
	if s, ok := gen.steps[k]; ok {
		return s, nil
	}
	rows := gen.batch * k
	cc := gen.dec.cfg
	g := G.NewGraph()
	c := nn.NewCtx(g, gen.store, nn.CtxOptions{})
	s := &graphStepper{rows: rows, units: cc.Units, embed: cc.EmbedDim, vocab: gen.dec.vocab, dt: gen.store.Dtype()}
	err := nn.Catch("caption decoder step", func() error {
		hc := c.Sub("head")
		s.tok = c.IntInput("caption.token", rows)
		s.h = c.Input("caption.h", rows, cc.Units)
		s.ctx = c.Input("caption.ctx", rows, cc.EmbedDim)
		e, err := gen.dec.embed(hc, s.tok)
		if err != nil {
			return err
		}
		if s.hOut, err = gen.dec.step(hc, e, s.ctx, s.h); err != nil {
			return err
		}
		logits, err := gen.dec.logits(hc, s.hOut)
		if err != nil {
			return err
		}
		s.logp, err = nn.LogSoftmax(logits)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s.vm, err = vm.New(g, nil, vm.EvalMode()); err != nil {
		return nil, err
	}
	gen.steps[k] = s
	return s, nil
}

// stepper advances the decoder rows (one per sample and beam, sample-major)
// by one token.
type stepper interface {
	// step feeds one token per row and returns the log-probabilities of the
	// next token, [rows·V] row-major.
	step(tokens []int) ([]float64, error)
	// reorder makes row i continue from the state row parents[i] had after
	// the last step.
	reorder(parents []int) error
}

// graphStepper runs the caption decoder's one-step graph.
type graphStepper struct {
	vm                        G.VM
	tok, h, ctx, hOut, logp   *G.Node
	rows, units, embed, vocab int
	dt                        tensor.Dtype
	hv, cv                    []float64 // state and context per row
}

// start sets every beam row of sample b to sample b's h_0 and context.
func (s *graphStepper) start(init, ctx []float64, beam int) {
	s.hv = make([]float64, s.rows*s.units)
	s.cv = make([]float64, s.rows*s.embed)
	for r := 0; r < s.rows; r++ {
		b := r / beam
		copy(s.hv[r*s.units:(r+1)*s.units], init[b*s.units:(b+1)*s.units])
		copy(s.cv[r*s.embed:(r+1)*s.embed], ctx[b*s.embed:(b+1)*s.embed])
	}
}

func (s *graphStepper) step(tokens []int) ([]float64, error) {
	for _, b := range []struct {
		n *G.Node
		v tensor.Tensor
	}{
		{s.tok, tensor.New(tensor.WithShape(s.rows), tensor.WithBacking(append([]int(nil), tokens...)))},
		{s.h, nn.NewDense(s.dt, []int{s.rows, s.units}, s.hv)},
		{s.ctx, nn.NewDense(s.dt, []int{s.rows, s.embed}, s.cv)},
	} {
		if err := G.Let(b.n, b.v); err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
	}
	defer s.vm.Reset()
	if err := s.vm.RunAll(); err != nil {
		return nil, fmt.Errorf("generate: decoder step: %w", err)
	}
	h, err := nodeValues(s.hOut)
	if err != nil {
		return nil, err
	}
	s.hv = h
	return nodeValues(s.logp)
}

func (s *graphStepper) reorder(parents []int) error {
	next := make([]float64, len(s.hv))
	for i, p := range parents {
		copy(next[i*s.units:(i+1)*s.units], s.hv[p*s.units:(p+1)*s.units])
	}
	s.hv = next
	return nil
}

// hypothesis is one beam row's partial caption.
type hypothesis struct {
	tokens []int
	score  float64
	done   bool
}

// candidate extends row parent by token (−1: a finished row kept as is).
type candidate struct {
	parent, token int
	score         float64
}

// beamSearch decodes batch samples with o.BeamSize rows each through s.
// With one row per sample it is greedy decoding: the argmax token (lowest
// id on ties) at every step.
func beamSearch(s stepper, batch, vocab int, o GenerateOptions) ([]Caption, error) {
	k := o.BeamSize
	rows := batch * k
	hyps := make([]hypothesis, rows)
	for r := range hyps {
		if r%k != 0 {
			hyps[r].score = math.Inf(-1) // one live start per sample: no duplicate beams
		}
	}
	last := make([]int, rows)
	for i := range last {
		last[i] = o.BOS
	}
	for t := 0; t < o.MaxLen; t++ {
		logp, err := s.step(last)
		if err != nil {
			return nil, err
		}
		if len(logp) != rows*vocab {
			return nil, fmt.Errorf("generate: step returned %d log-probabilities, want %d", len(logp), rows*vocab)
		}
		next := make([]hypothesis, rows)
		parents := make([]int, rows)
		for b := 0; b < batch; b++ {
			best := topCandidates(hyps[b*k:(b+1)*k], logp[b*k*vocab:(b+1)*k*vocab], vocab, k)
			for j := 0; j < k; j++ {
				r := b*k + j
				if j >= len(best) { // fewer live candidates than beams: a dead row
					parents[r], next[r] = b*k, hypothesis{score: math.Inf(-1), done: true}
					continue
				}
				cd := best[j]
				p := b*k + cd.parent
				h := hyps[p]
				parents[r] = p
				next[r] = hypothesis{tokens: h.tokens, score: cd.score, done: h.done}
				if cd.token >= 0 {
					next[r].tokens = append(append([]int(nil), h.tokens...), cd.token)
					next[r].done = cd.token == o.EOS
				}
			}
		}
		hyps = next
		if err := s.reorder(parents); err != nil {
			return nil, err
		}
		allDone := true
		for r, h := range hyps {
			last[r] = o.EOS
			if n := len(h.tokens); n > 0 {
				last[r] = h.tokens[n-1]
			}
			allDone = allDone && (h.done || math.IsInf(h.score, -1))
		}
		if allDone {
			break
		}
	}
	out := make([]Caption, batch)
	for b := range out {
		bestR, bestV := -1, math.Inf(-1)
		for r := b * k; r < (b+1)*k; r++ {
			h := hyps[r]
			if math.IsInf(h.score, -1) {
				continue
			}
			v := h.score
			if o.LengthPenalty != 0 && len(h.tokens) > 0 {
				v /= math.Pow(float64(len(h.tokens)), o.LengthPenalty)
			}
			if bestR < 0 || v > bestV {
				bestR, bestV = r, v
			}
		}
		if bestR < 0 {
			return nil, fmt.Errorf("generate: sample %d has no finite-scoring caption (non-finite log-probabilities)", b)
		}
		h := hyps[bestR]
		c := Caption{Tokens: append([]int(nil), h.tokens...), LogProb: h.score}
		if n := len(c.Tokens); n > 0 && c.Tokens[n-1] == o.EOS && h.done {
			c.Tokens, c.Ended = c.Tokens[:n-1], true
		}
		out[b] = c
	}
	return out, nil
}

// topCandidates returns the k best extensions of one sample's rows
// (finished rows compete with their own score), by score, ties broken by
// row then token.
func topCandidates(hyps []hypothesis, logp []float64, vocab, k int) []candidate {
	var best []candidate
	better := func(a, b candidate) bool {
		if a.score != b.score {
			return a.score > b.score
		}
		if a.parent != b.parent {
			return a.parent < b.parent
		}
		return a.token < b.token
	}
	offer := func(cd candidate) {
		if math.IsNaN(cd.score) || math.IsInf(cd.score, -1) {
			return
		}
		if len(best) == k && !better(cd, best[k-1]) {
			return
		}
		i := sort.Search(len(best), func(i int) bool { return better(cd, best[i]) })
		if len(best) < k {
			best = append(best, candidate{})
		}
		copy(best[i+1:], best[i:len(best)-1])
		best[i] = cd
	}
	for j, h := range hyps {
		if math.IsInf(h.score, -1) {
			continue
		}
		if h.done {
			offer(candidate{parent: j, token: -1, score: h.score})
			continue
		}
		row := logp[j*vocab : (j+1)*vocab]
		for v, lp := range row {
			offer(candidate{parent: j, token: v, score: h.score + lp})
		}
	}
	return best
}

// Generate builds a Generator for feed's batch size, generates one caption
// per sample and returns their token ids (without <bos> and <eos>). Use a
// Generator directly to reuse its graphs across batches or to get scores.
func Generate(net *Network, store *nn.Store, feed Feed, opts GenerateOptions) ([][]int, error) {
	batch := 0
	for _, x := range feed.Inputs {
		if x != nil && x.Shape().Dims() > 0 {
			batch = x.Shape()[0]
			break
		}
	}
	if batch == 0 {
		return nil, fmt.Errorf("generate: the feed has no inputs to take the batch size from")
	}
	gen, err := NewGenerator(net, store, batch)
	if err != nil {
		return nil, err
	}
	defer gen.Close()
	caps, err := gen.Generate(feed, opts)
	if err != nil {
		return nil, err
	}
	out := make([][]int, len(caps))
	for i, c := range caps {
		out[i] = c.Tokens
	}
	return out, nil
}
