package model

import (
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// tinyCaptionConfig is a caption network over the tiny modalities: vocab 7
// (0 pad, 2 <bos>, 3 <eos>), labels of 5 tokens.
func tinyCaptionConfig(mods int, strat string) NetworkConfig {
	return NetworkConfig{Modalities: tinyModalities(mods, []int{4, 4, 4}), Head: HeadCaption, OutputDim: 7, TokenLen: 5,
		Fusion:  fusion.Config{Strategy: strat, Dim: 3, Heads: 2},
		Caption: CaptionConfig{EmbedDim: 3, Units: 4, BackboneUnits: 3}}
}

// captionLabels are two captions: <bos> 4 5 <eos> <pad> and <bos> 6 <eos>
// <pad> <pad>.
func captionLabels() *tensor.Dense {
	return tensor.New(tensor.WithShape(2, 5), tensor.WithBacking([]int{2, 4, 5, 3, 0, 2, 6, 3, 0, 0}))
}

// TestCaptionHeadGradients checks the caption network's full graph
// (preprocessors, smooth spiking encoders, fusion, conditioning, embedding,
// the unrolled CfC decoder, output layer, shifted cross entropy with
// padding ignored) against central differences, for early and hybrid
// fusion.
func TestCaptionHeadGradients(t *testing.T) {
	for _, tc := range []struct {
		strat string
		mods  int
	}{{fusion.Early, 1}, {fusion.Hybrid, 2}} {
		t.Run(tc.strat, func(t *testing.T) {
			net, err := NewNetwork(tinyCaptionConfig(tc.mods, tc.strat))
			if err != nil {
				t.Fatal(err)
			}
			res := nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
				g, err := net.Build(c, 2)
				if err != nil {
					return nil, nil, err
				}
				feed := tinyFeed(net, 2, 3)
				feed.Labels = captionLabels()
				if err := g.Bind(feed); err != nil {
					return nil, nil, err
				}
				if want := (tensor.Shape{2, 4, 7}); !g.Output.Shape().Eq(want) {
					t.Errorf("caption logits %v, want %v", g.Output.Shape(), want)
				}
				return g.Loss, nil, nil
			}, nntest.Options{Seed: 3, Entries: 2, MinChecked: 15})
			if res.Entries == 0 {
				t.Fatal("nothing checked")
			}
		})
	}
}

// TestCaptionStepMatchesTeacherForcing: the decoder-step graph used for
// generation, fed the label tokens one at a time, gives the same
// log-probabilities as the teacher-forced training graph (float64).
func TestCaptionStepMatchesTeacherForcing(t *testing.T) {
	net, err := NewNetwork(tinyCaptionConfig(2, fusion.Hybrid))
	if err != nil {
		t.Fatal(err)
	}
	store, _ := nn.NewStore(tensor.Float64, 4)
	feed := tinyFeed(net, 2, 5)
	feed.Labels = captionLabels()
	logits := evalRun(t, net, store, 2, feed) // [2, 4, 7]
	gen, err := NewGenerator(net, store, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	init, ctx, err := gen.condition(feed)
	if err != nil {
		t.Fatal(err)
	}
	st, err := gen.stepper(1)
	if err != nil {
		t.Fatal(err)
	}
	st.start(init, ctx, 1)
	labels := feed.Labels.Data().([]int)
	for pos := 0; pos < 4; pos++ {
		logp, err := st.step([]int{labels[pos], labels[5+pos]})
		if err != nil {
			t.Fatal(err)
		}
		for b := 0; b < 2; b++ {
			row := logits[(b*4+pos)*7 : (b*4+pos+1)*7]
			lse := logSumExp64(row)
			for v := 0; v < 7; v++ {
				if want, got := row[v]-lse, logp[b*7+v]; math.Abs(want-got) > 1e-9 {
					t.Fatalf("sample %d position %d token %d: step log-prob %g, teacher-forced %g", b, pos, v, got, want)
				}
			}
		}
	}
}

func logSumExp64(x []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	s := 0.0
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

// TestGreedyIsBeamOne compares Generate with beam 1 to a reference greedy
// loop written against the step graph: argmax token, stop at <eos>.
func TestGreedyIsBeamOne(t *testing.T) {
	net, err := NewNetwork(tinyCaptionConfig(2, fusion.Early))
	if err != nil {
		t.Fatal(err)
	}
	store, _ := nn.NewStore(tensor.Float64, 9)
	feed := tinyFeed(net, 3, 2)
	gen, err := NewGenerator(net, store, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	const maxLen = 6
	caps, err := gen.Generate(feed, GenerateOptions{BeamSize: 1, MaxLen: maxLen})
	if err != nil {
		t.Fatal(err)
	}
	init, ctx, err := gen.condition(feed)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := gen.stepper(1)
	st.start(init, ctx, 1)
	last := []int{2, 2, 2}
	want := make([][]int, 3)
	score := make([]float64, 3)
	done := make([]bool, 3)
	for step := 0; step < maxLen; step++ {
		logp, err := st.step(last)
		if err != nil {
			t.Fatal(err)
		}
		for b := range last {
			if done[b] {
				continue
			}
			row := logp[b*7 : (b+1)*7]
			best := 0
			for v := range row {
				if row[v] > row[best] {
					best = v
				}
			}
			score[b] += row[best]
			last[b] = best
			if best == 3 {
				done[b] = true
				continue
			}
			want[b] = append(want[b], best)
		}
	}
	tokens := 0
	for b, c := range caps {
		if !equalInts(c.Tokens, want[b]) || math.Abs(c.LogProb-score[b]) > 1e-9 || c.Ended != done[b] {
			t.Errorf("sample %d: beam 1 gives %v (log-prob %g, ended %v), greedy %v (%g, %v)", b, c.Tokens, c.LogProb, c.Ended, want[b], score[b], done[b])
		}
		tokens += len(c.Tokens)
	}
	if tokens == 0 {
		t.Fatal("every greedy caption is empty: the comparison is vacuous (change the seed)")
	}
	beam, err := gen.Generate(feed, GenerateOptions{BeamSize: 3, MaxLen: maxLen})
	if err != nil {
		t.Fatal(err)
	}
	for b, c := range beam {
		if len(c.Tokens) > maxLen || math.IsNaN(c.LogProb) || c.LogProb > 0 {
			t.Errorf("sample %d: beam 3 caption %v with log-prob %g", b, c.Tokens, c.LogProb)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// markov is a stepper whose next-token distribution depends only on the
// last token: vocab 0 pad, 1 "a", 2 <bos>, 3 <eos>, 4 "b".
type markov struct{ steps int }

func (m *markov) step(tokens []int) ([]float64, error) {
	m.steps++
	out := make([]float64, 0, len(tokens)*5)
	for _, tok := range tokens {
		p := [5]float64{}
		switch tok {
		case 2: // <bos>: a 0.6, b 0.4
			p[1], p[4] = 0.6, 0.4
		case 1: // after a: <eos> 0.4, a 0.3, b 0.3
			p[3], p[1], p[4] = 0.4, 0.3, 0.3
		case 4: // after b: <eos> 0.9, a 0.1
			p[3], p[1] = 0.9, 0.1
		default:
			p[3] = 1
		}
		for _, v := range p {
			out = append(out, math.Log(v))
		}
	}
	return out, nil
}

func (m *markov) reorder([]int) error { return nil }

// TestBeamBeatsGreedy: greedy takes "a" (0.6) and ends with probability
// 0.6·0.4 = 0.24; a beam of 2 keeps "b" (0.4) and finds "b <eos>" with
// 0.4·0.9 = 0.36.
func TestBeamBeatsGreedy(t *testing.T) {
	opts := GenerateOptions{MaxLen: 5, BOS: 2, EOS: 3}
	opts.BeamSize = 1
	greedy, err := beamSearch(&markov{}, 1, 5, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.BeamSize = 2
	m := &markov{}
	beam, err := beamSearch(m, 1, 5, opts)
	if err != nil {
		t.Fatal(err)
	}
	if g := greedy[0]; !equalInts(g.Tokens, []int{1}) || !g.Ended || math.Abs(g.LogProb-math.Log(0.24)) > 1e-12 {
		t.Errorf("greedy: %+v, want [1] ended with log 0.24", g)
	}
	if b := beam[0]; !equalInts(b.Tokens, []int{4}) || !b.Ended || math.Abs(b.LogProb-math.Log(0.36)) > 1e-12 {
		t.Errorf("beam 2: %+v, want [4] ended with log 0.36", b)
	}
	if m.steps != 2 {
		t.Errorf("beam search ran %d steps, want 2 (it stops once every beam has ended)", m.steps)
	}
	// A length penalty cannot revive an unfinished beam but re-ranks
	// finished ones; with equal lengths the order is unchanged.
	opts.LengthPenalty = 1
	if b, _ := beamSearch(&markov{}, 1, 5, opts); !equalInts(b[0].Tokens, []int{4}) {
		t.Errorf("beam 2 with length penalty: %v, want [4]", b[0].Tokens)
	}
}

func TestCaptionConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		edit func(*NetworkConfig)
		want string
	}{
		{func(c *NetworkConfig) { c.Fusion.Strategy = fusion.Late }, "late fusion"},
		{func(c *NetworkConfig) { c.TokenLen = 1 }, "token_len ≥ 2"},
		{func(c *NetworkConfig) { c.Caption.EOS = 7 }, "caption eos id 7 is outside the vocabulary [0, 7)"},
		{func(c *NetworkConfig) { c.Caption.Mode = "fancy" }, "caption decoder"},
	} {
		cfg := tinyCaptionConfig(2, fusion.Early)
		tc.edit(&cfg)
		_, err := NewNetwork(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to contain %q", err, tc.want)
		}
	}
	net, _ := NewNetwork(NetworkConfig{Modalities: tinyModalities(1, []int{4}), OutputDim: 3, Fusion: fusion.Config{Dim: 3}})
	store, _ := nn.NewStore(tensor.Float64, 1)
	if _, err := NewGenerator(net, store, 1); err == nil || !strings.Contains(err.Error(), `needs the "caption" head`) {
		t.Errorf("generator on a classification network: %v", err)
	}
}
