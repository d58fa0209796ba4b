package train

import (
	"context"
	"fmt"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// EvalOptions tune Evaluate.
type EvalOptions struct {
	// Ablate also evaluates the set once per modality with that modality
	// removed (see EvalResult.PerModalityAblation). Default false.
	Ablate bool
	// Workers is the number of decoding goroutines, ≥ 0 (0 means 1).
	Workers int
	// BeamSize is the beam width of caption generation (caption heads);
	// 0 takes the network's caption beam_size.
	BeamSize int
	// Device, when set, runs the evaluation graphs there (the store's
	// weights are uploaded when first seen); caption generation stays on
	// the host. Nil runs everything on the CPU.
	Device Device
}

// EvalResult is the outcome of Evaluate: the metrics of Metrics (promoted:
// r.Loss, r.Accuracy, r.MacroF1, r.Top5, r.MSE, r.MAE, r.N), plus the
// confusion matrix and the ablation table.
type EvalResult struct {
	Metrics
	// Confusion is the [classes][classes] confusion matrix (rows true
	// labels, columns predictions) of a classification head; nil otherwise.
	Confusion [][]int
	// PerModalityAblation maps each modality to the metric with that
	// modality removed: accuracy for classification and tokens heads, MSE
	// for regression. A removed modality is marked absent for every sample
	// when the network has missing-modality embeddings (the fusion uses the
	// learned stand-in), otherwise its input is all zeros. Nil unless
	// EvalOptions.Ablate.
	PerModalityAblation map[string]float64
	// BLEU details the corpus BLEU-4 of the captions generated for every
	// sample (caption heads; Metrics.BLEU4 is its score); nil otherwise.
	BLEU *BLEU
	// Captions are the generated captions with their references, in
	// dataset order (caption heads).
	Captions []GeneratedCaption
}

// GeneratedCaption is one sample's generated caption and its reference
// (label words without <bos>, <eos> and padding), as token ids.
type GeneratedCaption struct {
	Index     int   `json:"index"`
	Tokens    []int `json:"tokens"`
	Reference []int `json:"reference"`
}

// Evaluate runs net (evaluation mode: no dropout, running batch-norm
// statistics) over every sample of ds once, in order, in batches of batch
// samples; a short last batch runs on a second graph built for its size,
// so no sample is dropped or counted twice. The graphs bind store's
// tensors: nothing is copied. For a caption head, Accuracy is the
// teacher-forced next-token accuracy, and a second pass generates a
// caption for every sample (EvalOptions.BeamSize) and scores them with
// corpus BLEU-4 against the label captions (EvalResult.BLEU, Captions,
// Metrics.BLEU4).
func Evaluate(net *model.Network, store *nn.Store, ds data.Dataset, batch int, opts EvalOptions) (EvalResult, error) {
	if net == nil || store == nil || ds == nil {
		return EvalResult{}, fmt.Errorf("evaluate: nil network, store or dataset")
	}
	if ds.Len() == 0 {
		return EvalResult{}, fmt.Errorf("evaluate: the dataset is empty")
	}
	if err := checkDeviceDtype(opts.Device, store.Dtype()); err != nil {
		return EvalResult{}, err
	}
	loader, err := data.NewLoader(ds, data.LoaderConfig{BatchSize: batch, Workers: opts.Workers})
	if err != nil {
		return EvalResult{}, fmt.Errorf("evaluate: %w", err)
	}
	ev := newEvaluator(net, store, opts.Device)
	defer ev.close()
	ctx := context.Background()
	acc, err := ev.run(ctx, loader, "")
	if err != nil {
		return EvalResult{}, err
	}
	res := EvalResult{Metrics: acc.metrics()}
	if acc.Conf != nil {
		res.Confusion = acc.Conf
	}
	if net.Config().Head == model.HeadCaption {
		bleu, caps, err := ev.captions(ctx, loader, opts.BeamSize)
		if err != nil {
			return EvalResult{}, err
		}
		res.BLEU, res.Captions, res.BLEU4 = &bleu, caps, bleu.Score
	}
	if opts.Ablate {
		res.PerModalityAblation = map[string]float64{}
		for _, name := range net.Names() {
			a, err := ev.run(ctx, loader, name)
			if err != nil {
				return EvalResult{}, fmt.Errorf("ablation of modality %q: %w", name, err)
			}
			m := a.metrics()
			if a.Head == model.HeadRegression {
				res.PerModalityAblation[name] = m.MSE
			} else {
				res.PerModalityAblation[name] = m.Accuracy
			}
		}
	}
	return res, nil
}

// evaluator keeps one evaluation graph (and caption generator) per batch
// size over a store; the graphs run on dev (nil: the CPU).
type evaluator struct {
	net    *model.Network
	store  *nn.Store
	dev    Device
	graphs map[int]*evalGraph
	gens   map[int]*model.Generator
}

func newEvaluator(net *model.Network, store *nn.Store, dev Device) *evaluator {
	return &evaluator{net: net, store: store, dev: dev, graphs: map[int]*evalGraph{}, gens: map[int]*model.Generator{}}
}

// captions generates a caption for every sample of one pass of loader
// (beam 0: the network's default) and scores them with corpus BLEU-4
// against the label captions.
func (e *evaluator) captions(ctx context.Context, loader *data.Loader, beam int) (BLEU, []GeneratedCaption, error) {
	cfg := e.net.Config()
	cc := cfg.Caption
	var counts BLEUCounts
	var out []GeneratedCaption
	for b, err := range loader.Epoch(ctx, 0, 0) {
		if err != nil {
			return BLEU{}, nil, err
		}
		g, err := e.graph(b.Size)
		if err != nil {
			return BLEU{}, nil, err
		}
		feed, err := batchFeed(g.mg, cfg.Head, b, "")
		if err != nil {
			return BLEU{}, nil, fmt.Errorf("caption batch (samples %v…): %w", b.Indices[:min(3, len(b.Indices))], err)
		}
		gen, ok := e.gens[b.Size]
		if !ok {
			if gen, err = model.NewGenerator(e.net, e.store, b.Size); err != nil {
				return BLEU{}, nil, err
			}
			e.gens[b.Size] = gen
		}
		caps, err := gen.Generate(feed, model.GenerateOptions{BeamSize: beam})
		if err != nil {
			return BLEU{}, nil, fmt.Errorf("caption generation: %w", err)
		}
		labels := feed.Labels.Data().([]int)
		l := len(labels) / b.Size
		for i, c := range caps {
			ref := CaptionReference(labels[i*l:(i+1)*l], cc.BOS, cc.EOS, cfg.IgnoreIndex)
			if err := counts.Add(c.Tokens, [][]int{ref}); err != nil {
				return BLEU{}, nil, err
			}
			out = append(out, GeneratedCaption{Index: b.Indices[i], Tokens: c.Tokens, Reference: ref})
		}
	}
	return counts.Score(), out, nil
}

func (e *evaluator) graph(size int) (*evalGraph, error) {
	if g, ok := e.graphs[size]; ok {
		return g, nil
	}
	g, err := buildEvalGraph(e.net, e.store, size, e.dev)
	if err != nil {
		return nil, fmt.Errorf("evaluation graph for batch %d: %w", size, err)
	}
	e.graphs[size] = g
	return g, nil
}

// run evaluates one pass of loader's epoch 0 with modality drop removed
// ("" for none) and returns the accumulated metrics.
func (e *evaluator) run(ctx context.Context, loader *data.Loader, drop string) (*metricAcc, error) {
	cfg := e.net.Config()
	acc := newMetricAcc(cfg)
	for b, err := range loader.Epoch(ctx, 0, 0) {
		if err != nil {
			return nil, err
		}
		g, err := e.graph(b.Size)
		if err != nil {
			return nil, err
		}
		feed, err := batchFeed(g.mg, cfg.Head, b, drop)
		if err != nil {
			return nil, fmt.Errorf("evaluation batch (samples %v…): %w", b.Indices[:min(3, len(b.Indices))], err)
		}
		loss, out, err := g.run(feed)
		if err != nil {
			return nil, fmt.Errorf("evaluation: %w", err)
		}
		if _, err := acc.add(loss, b.Size, out, feed.Labels); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

func (e *evaluator) close() {
	for _, g := range e.graphs {
		g.close()
	}
	for _, g := range e.gens {
		g.Close()
	}
	e.graphs, e.gens = map[int]*evalGraph{}, map[int]*model.Generator{}
}

// metricAcc accumulates the metrics of a pass batch by batch. It is part
// of a checkpoint's state (the training metrics of an interrupted epoch),
// hence the JSON tags.
type metricAcc struct {
	Head    string  `json:"head"`
	Classes int     `json:"classes"`
	Ignore  int     `json:"ignore"`
	LossSum jfloat  `json:"loss_sum"`
	N       int     `json:"n"`
	Conf    [][]int `json:"conf,omitempty"`
	Top5    int     `json:"top5"`
	TokOK   int     `json:"tok_ok"`
	TokN    int     `json:"tok_n"`
	SE      jfloat  `json:"se"`
	AE      jfloat  `json:"ae"`
	NE      int     `json:"ne"`
}

func newMetricAcc(cfg model.NetworkConfig) *metricAcc {
	a := &metricAcc{Head: cfg.Head, Classes: cfg.OutputDim, Ignore: cfg.IgnoreIndex}
	if a.Head == "" {
		a.Head = model.HeadClassification
	}
	if a.Head == model.HeadClassification {
		a.Conf = make([][]int, a.Classes)
		for i := range a.Conf {
			a.Conf[i] = make([]int, a.Classes)
		}
	}
	return a
}

// add records one batch of n samples: its mean loss, the head's output
// (row-major, as float64) and the labels tensor of its feed. It returns the
// batch's accuracy (classification, tokens) or 0.
func (a *metricAcc) add(loss float64, n int, out []float64, labels *tensor.Dense) (float64, error) {
	a.LossSum += jfloat(loss * float64(n))
	a.N += n
	switch a.Head {
	case model.HeadRegression:
		target, err := nn.ToFloat64(labels)
		if err != nil {
			return 0, err
		}
		if len(target) != len(out) {
			return 0, fmt.Errorf("metrics: %d outputs for %d targets", len(out), len(target))
		}
		for i := range out {
			d := out[i] - target[i]
			a.SE += jfloat(d * d)
			a.AE += jfloat(max(d, -d))
		}
		a.NE += len(out)
		return 0, nil
	case model.HeadTokens, model.HeadCaption:
		ids := labels.Data().([]int)
		if a.Head == model.HeadCaption { // position t predicts label t+1
			l := labels.Shape()[1]
			next := make([]int, 0, n*(l-1))
			for b := 0; b < n; b++ {
				next = append(next, ids[b*l+1:(b+1)*l]...)
			}
			ids = next
		}
		pred, err := ArgMax(out, a.Classes)
		if err != nil {
			return 0, err
		}
		if len(pred) != len(ids) {
			return 0, fmt.Errorf("metrics: %d token predictions for %d labels", len(pred), len(ids))
		}
		ok, cnt := 0, 0
		for i, y := range ids {
			if y == a.Ignore {
				continue
			}
			cnt++
			if pred[i] == y {
				ok++
			}
		}
		a.TokOK += ok
		a.TokN += cnt
		if cnt == 0 {
			return 0, nil
		}
		return float64(ok) / float64(cnt), nil
	default:
		ys := labels.Data().([]int)
		pred, err := ArgMax(out, a.Classes)
		if err != nil {
			return 0, err
		}
		ok := 0
		for i, y := range ys {
			if y < 0 || y >= a.Classes {
				return 0, fmt.Errorf("metrics: label %d outside [0, %d) (does output_dim match the dataset's classes?)", y, a.Classes)
			}
			a.Conf[y][pred[i]]++
			if pred[i] == y {
				ok++
			}
		}
		top, err := TopK(out, a.Classes, ys, 5)
		if err != nil {
			return 0, err
		}
		a.Top5 += int(top*float64(len(ys)) + 0.5)
		return float64(ok) / float64(len(ys)), nil
	}
}

// metrics returns the pass's aggregate metrics.
func (a *metricAcc) metrics() Metrics {
	m := Metrics{N: a.N}
	if a.N == 0 {
		return m
	}
	m.Loss = float64(a.LossSum) / float64(a.N)
	switch a.Head {
	case model.HeadRegression:
		if a.NE > 0 {
			m.MSE, m.MAE = float64(a.SE)/float64(a.NE), float64(a.AE)/float64(a.NE)
		}
	case model.HeadTokens, model.HeadCaption:
		if a.TokN > 0 {
			m.Accuracy = float64(a.TokOK) / float64(a.TokN)
		}
	default:
		ok := 0
		for c := range a.Conf {
			ok += a.Conf[c][c]
		}
		m.Accuracy = float64(ok) / float64(a.N)
		m.MacroF1 = MacroF1FromConfusion(a.Conf)
		m.Top5 = float64(a.Top5) / float64(a.N)
	}
	return m
}
