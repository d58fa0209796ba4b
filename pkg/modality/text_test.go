package modality_test

import (
	"math"
	"reflect"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// benchText is bench-small's TextStem: Embedding(1000,64) + learned
// positions (16×64), plain mean over the 16 tokens, Linear(64,128).
func benchText() modality.Config {
	return modality.Config{Kind: "text", OutputDim: 128, Text: modality.TextConfig{
		VocabSize: 1000, SeqLen: 16, EmbedDim: 64, Positions: "learned", PadID: -1, Pooling: "mean"}}
}

func randIDs(seed int64, vocab, n int) []int {
	v := randVals(seed, 1, n)
	ids := make([]int, n)
	for i, x := range v {
		ids[i] = int(math.Abs(x)*1e6) % vocab
	}
	return ids
}

func TestTextBenchStemMatchesPyTorchLayout(t *testing.T) {
	p := mustNew(t, benchText())
	if !p.IntInput() || !reflect.DeepEqual(p.InputShape(32), []int{32, 16}) {
		t.Errorf("IntInput %v, InputShape %v", p.IntInput(), p.InputShape(32))
	}
	r := forward(t, p, tensor.Float32, false, []int{2, 16}, nil, randIDs(1, 1000, 32), nil)
	// PyTorch: tok 1000·64 = 64000, pos 16·64 = 1024, fc 64·128+128 = 8320;
	// total 73344 (bench-small's txt=73344).
	if n := r.store.NumParams(); n != 73344 {
		t.Errorf("text stem has %d parameters, want 73344", n)
	}
	want := map[string]string{"pre.tok.weight": "[1000 64]", "pre.pos.weight": "[16 64]", "pre.fc.weight": "[128 64]", "pre.fc.bias": "[128]"}
	if got := paramShapes(r.store); !reflect.DeepEqual(got, want) {
		t.Errorf("parameters %v, want %v", got, want)
	}
}

// refText evaluates fc(pool(tok[ids] + pos)) directly; keep(id) says
// whether a token takes part in the pooling.
func refText(t *testing.T, s *nn.Store, ids []int, b, l, e, out int, pos []float64, pooling string, keep func(int) bool) []float64 {
	tok := param(t, s, "pre.tok.weight")
	w, bias := param(t, s, "pre.fc.weight"), param(t, s, "pre.fc.bias")
	y := make([]float64, b*out)
	for r := 0; r < b; r++ {
		pooled := make([]float64, e)
		kept := 0
		for j := 0; j < e; j++ {
			pooled[j] = math.Inf(-1)
			if pooling != "max" {
				pooled[j] = 0
			}
		}
		for p := 0; p < l; p++ {
			id := ids[r*l+p]
			if pooling == "first" && p > 0 || pooling != "first" && !keep(id) {
				continue
			}
			kept++
			for j := 0; j < e; j++ {
				v := tok[id*e+j]
				if pos != nil {
					v += pos[p*e+j]
				}
				if pooling == "max" {
					pooled[j] = math.Max(pooled[j], v)
				} else {
					pooled[j] += v
				}
			}
		}
		for j := range pooled {
			switch {
			case kept == 0:
				pooled[j] = 0
			case pooling == "mean":
				pooled[j] /= float64(kept)
			}
		}
		for o := 0; o < out; o++ {
			acc := bias[o]
			for j := 0; j < e; j++ {
				acc += w[o*e+j] * pooled[j]
			}
			y[r*out+o] = acc
		}
	}
	return y
}

func TestTextBenchStemValues(t *testing.T) {
	p := mustNew(t, benchText())
	ids := randIDs(2, 1000, 32)
	ids[3], ids[20] = 0, 0 // id 0 is an ordinary token here (pad_id −1)
	r := forward(t, p, tensor.Float64, false, []int{2, 16}, nil, ids, nil)
	want := refText(t, r.store, ids, 2, 16, 64, 128, param(t, r.store, "pre.pos.weight"), "mean", func(int) bool { return true })
	assertClose(t, "text stem", r.y, want, 1e-12, 1e-10)
}

func TestTextPoolingSkipsPadding(t *testing.T) {
	ids := []int{
		5, 0, 7, 0, // padding in the middle and at the end
		0, 0, 0, 0, // all padding: pools to zero, output is fc's bias
		3, 9, 9, 1,
	}
	for _, tc := range []struct{ pooling, positions string }{
		{"mean", "learned"}, {"max", "sinusoidal"}, {"first", "none"}, {"mean", "sinusoidal"},
	} {
		cfg := modality.Config{Kind: "text", OutputDim: 3, Text: modality.TextConfig{
			VocabSize: 11, SeqLen: 6, EmbedDim: 4, Positions: tc.positions, Pooling: tc.pooling}}
		r := forward(t, mustNew(t, cfg), tensor.Float64, false, []int{3, 4}, nil, ids, nil)
		var pos []float64
		switch tc.positions {
		case "learned":
			pos = param(t, r.store, "pre.pos.weight")
		case "sinusoidal":
			pos = modality.SinusoidalPositions(4, 4)
		}
		want := refText(t, r.store, ids, 3, 4, 4, 3, pos, tc.pooling, func(id int) bool { return id != 0 })
		assertClose(t, tc.pooling+"/"+tc.positions, r.y, want, 1e-12, 1e-10)
		// float32 kernels agree (the store holds the same values, rounded).
		r32 := forward(t, mustNew(t, cfg), tensor.Float32, false, []int{3, 4}, nil, ids, nil)
		assertClose(t, tc.pooling+"/"+tc.positions+" float32", r32.y, want, 1e-5, 1e-5)
	}
}

func TestSinusoidalPositions(t *testing.T) {
	pe := modality.SinusoidalPositions(3, 4)
	// Row p: sin(p), cos(p), sin(p/100), cos(p/100)  (10000^(2/4) = 100).
	want := []float64{
		0, 1, 0, 1,
		math.Sin(1), math.Cos(1), math.Sin(0.01), math.Cos(0.01),
		math.Sin(2), math.Cos(2), math.Sin(0.02), math.Cos(0.02),
	}
	assertClose(t, "PE", pe, want, 1e-15, 0)
}

func TestTextSequenceOutput(t *testing.T) {
	cfg := modality.Config{Kind: "text", OutputDim: 3, Text: modality.TextConfig{VocabSize: 11, SeqLen: 5, EmbedDim: 4}}
	p := mustNew(t, cfg)
	sp, ok := p.(modality.SequencePreprocessor)
	if !ok {
		t.Fatalf("text preprocessor %T has no ForwardSequence", p)
	}
	ids := []int{4, 2, 0, 0, 0, 1, 2, 3, 4, 5}
	store, _ := nn.NewStore(tensor.Float64, 1)
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{})
	x := inputNode(g, tensor.Float64, []int{2, 5}, nil, ids)
	seq, mask, err := sp.ForwardSequence(c.Sub("pre"), x)
	if err != nil {
		t.Fatal(err)
	}
	pooled, err := p.Forward(c.Sub("pre"), x)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual([]int(seq.Shape()), []int{2, 5, 3}) || !reflect.DeepEqual([]int(mask.Shape()), []int{2, 5}) {
		t.Fatalf("seq %v mask %v", seq.Shape(), mask.Shape())
	}
	m, _ := nn.ToFloat64(mask.Value().(tensor.Tensor))
	assertClose(t, "mask", m, []float64{1, 1, 0, 0, 0, 1, 1, 1, 1, 1}, 0, 0)
	// The masked mean of the sequence output is the pooled output.
	sv, _ := nn.ToFloat64(seq.Value().(tensor.Tensor))
	pv, _ := nn.ToFloat64(pooled.Value().(tensor.Tensor))
	want := make([]float64, 6)
	for b := 0; b < 2; b++ {
		n := 0.0
		for l := 0; l < 5; l++ {
			if m[b*5+l] == 0 {
				continue
			}
			n++
			for d := 0; d < 3; d++ {
				want[b*3+d] += sv[(b*5+l)*3+d]
			}
		}
		for d := 0; d < 3; d++ {
			want[b*3+d] /= n
		}
	}
	assertClose(t, "masked mean of sequence", pv, want, 1e-12, 1e-10)
}

func TestTextGradients(t *testing.T) {
	ids := []int{5, 0, 7, 2, 0, 3, 9, 9, 1, 0}
	for _, tc := range []struct {
		name string
		tc   modality.TextConfig
		min  int
	}{
		{"mean_learned_pad", modality.TextConfig{Pooling: "mean", Positions: "learned"}, 4},
		{"first_sinusoidal", modality.TextConfig{Pooling: "first", Positions: "sinusoidal", PadID: -1}, 3},
		{"max_none_dropout", modality.TextConfig{Pooling: "max", Positions: "none", Dropout: 0.3}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.tc
			cfg.VocabSize, cfg.SeqLen, cfg.EmbedDim = 11, 5, 4
			p := mustNew(t, modality.Config{Kind: "text", OutputDim: 3, Text: cfg})
			// Every entry: a random pick could miss the rows in use.
			gradCheckN(t, p, []int{2, 5}, nil, ids, tc.min, 44)
		})
	}
	t.Run("sequence", func(t *testing.T) {
		p := mustNew(t, modality.Config{Kind: "text", OutputDim: 3, Text: modality.TextConfig{VocabSize: 11, SeqLen: 5, EmbedDim: 4}})
		nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
			x := inputNode(c.Graph(), tensor.Float64, []int{2, 5}, nil, ids)
			seq, _, err := p.(modality.SequencePreprocessor).ForwardSequence(c.Sub("pre"), x)
			if err != nil {
				return nil, nil, err
			}
			loss, err := nntest.WeightedSum(seq, 4)
			return loss, nil, err
		}, nntest.Options{Entries: 44, MinChecked: 4})
	})
}

func TestTextRejectsWrongInput(t *testing.T) {
	p := mustNew(t, benchText())
	wantErr(t, buildErr(p, tensor.Float64, []int{2, 16}), "pre: text preprocessor expects integer token ids, got dtype float64")
	wantErr(t, buildErr(p, tensor.Int, []int{2, 17}), "17 tokens exceed seq_len 16")
	wantErr(t, buildErr(p, tensor.Int, []int{2, 4, 4}), "text preprocessor expects input [batch, tokens]")
	// Shorter sequences use the first rows of the position table.
	if err := buildErr(p, tensor.Int, []int{2, 9}); err != nil {
		t.Errorf("9 tokens with seq_len 16: %v", err)
	}
}
