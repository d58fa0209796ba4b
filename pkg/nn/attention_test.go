package nn_test

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

// attnSine returns n values 0.5·sin(a·(i+1+from)), i = 0..n−1: the
// deterministic fill used to produce the PyTorch reference below.
func attnSine(n int, a float64, from int) []float64 {
	return coreSeq(n, func(i int) float64 { return 0.5 * math.Sin(a*float64(i+1+from)) })
}

func TestAttentionMatchesPyTorch(t *testing.T) {
	// torch.nn.MultiheadAttention(4, 2, kdim=3, vdim=3, batch_first=True),
	// every tensor filled with 0.5·sin(a·(i+1)) in row-major order
	// (q_proj_weight a=1.1, k_proj_weight 1.7, v_proj_weight 2.3,
	// in_proj_bias 0.7 over its 12 entries [q|k|v], out_proj.weight 2.9,
	// out_proj.bias 3.1, query 0.37, key=value 0.53) and
	// key_padding_mask [[F,F,T],[F,F,F]], average_attn_weights=False.
	wantOut := []float64{-0.05355857271763844, -0.13285629466513973, 0.0327932526374176, -0.0249445219251668,
		-0.05346208243823602, -0.13172890607327806, 0.0339781288489626, -0.024725204789868907,
		-0.07114267886029979, -0.15669258306049325, 0.023285527765602818, -0.011914516424492094,
		-0.07083757110275155, -0.1574969829214338, 0.022066155809735928, -0.012496029438249595}
	wantW := []float64{0.4617835532261903, 0.5382164467738098, 0, 0.44693449680676867, 0.5530655031932313, 0,
		0.5064187619387537, 0.4935812380612462, 0, 0.5229346276775612, 0.4770653723224388, 0,
		0.3102666364852343, 0.3242449783938575, 0.3654883851209083, 0.31202658112584775, 0.33696049121637023, 0.3510129276577821,
		0.35195809817442064, 0.35590896064644423, 0.292132941179135, 0.3311090895555486, 0.3604617717002014, 0.30842913874425004}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		var outShape, wShape tensor.Shape
		res := coreMustRun(t, dt, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
			q := coreInput(c, "q", attnSine(16, 0.37, 0), 2, 2, 4)
			kv := coreInput(c, "kv", attnSine(18, 0.53, 0), 2, 3, 3)
			mask := coreInput(c, "mask", []float64{1, 1, 0, 1, 1, 1}, 2, 3)
			out, w, err := nn.MultiHeadAttention{Dim: 4, Heads: 2, KVDim: 3}.Forward(c.Sub("mha"), q, kv, mask)
			if err != nil {
				return coreGraph{}, err
			}
			coreSetParam(t, c, "mha.q_proj.weight", attnSine(16, 1.1, 0))
			coreSetParam(t, c, "mha.k_proj.weight", attnSine(12, 1.7, 0))
			coreSetParam(t, c, "mha.v_proj.weight", attnSine(12, 2.3, 0))
			coreSetParam(t, c, "mha.q_proj.bias", attnSine(4, 0.7, 0))
			coreSetParam(t, c, "mha.k_proj.bias", attnSine(4, 0.7, 4))
			coreSetParam(t, c, "mha.v_proj.bias", attnSine(4, 0.7, 8))
			coreSetParam(t, c, "mha.out_proj.weight", attnSine(16, 2.9, 0))
			coreSetParam(t, c, "mha.out_proj.bias", attnSine(4, 3.1, 0))
			outShape, wShape = out.Shape(), w.Shape()
			return coreGraph{outs: G.Nodes{out, w}}, nil
		})
		if !outShape.Eq(tensor.Shape{2, 2, 4}) || !wShape.Eq(tensor.Shape{2, 2, 2, 3}) {
			t.Errorf("shapes out %v weights %v, want (2, 2, 4) and (2, 2, 2, 3)", outShape, wShape)
		}
		tol := 1e-14
		if dt == tensor.Float32 {
			tol = 1e-6
		}
		coreClose(t, "out "+dt.String(), res.vals[0], wantOut, tol, tol)
		coreClose(t, "weights "+dt.String(), res.vals[1], wantW, tol, tol)
	}
}

// attnIdentity builds MHA over q and kv with identity projections and
// zero biases, so that the core's arithmetic can be checked by hand.
func attnIdentity(t *testing.T, c *nn.Ctx, dim, heads int, q, kv, mask *G.Node) (coreGraph, error) {
	out, w, err := nn.MultiHeadAttention{Dim: dim, Heads: heads}.Forward(c.Sub("mha"), q, kv, mask)
	if err != nil {
		return coreGraph{}, err
	}
	eye := coreSeq(dim*dim, func(i int) float64 {
		if i/dim == i%dim {
			return 1
		}
		return 0
	})
	for _, p := range []string{"q_proj", "k_proj", "v_proj", "out_proj"} {
		coreSetParam(t, c, "mha."+p+".weight", eye)
		coreSetParam(t, c, "mha."+p+".bias", make([]float64, dim))
	}
	return coreGraph{outs: G.Nodes{out, w}}, nil
}

func TestAttentionIdentityWeights(t *testing.T) {
	// One head, Dim 2: the query [1,0] scores keys [1,0] and [0,1] as 1/√2
	// and 0, so the weights are σ(1/√2) = 0.6697615493266569 and its
	// complement, and the output is the weighted values.
	res := coreMustRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
		return attnIdentity(t, c, 2, 1, coreInput(c, "q", []float64{1, 0}, 1, 1, 2), coreInput(c, "kv", []float64{1, 0, 0, 1}, 1, 2, 2), nil)
	})
	w0 := 0.6697615493266569
	coreClose(t, "weights", res.vals[1], []float64{w0, 1 - w0}, 1e-15, 0)
	coreClose(t, "out", res.vals[0], []float64{w0, 1 - w0}, 1e-15, 0)

	// Two heads, Dim 4: head 1 of the query (features 2..3) is zero, so
	// its weights are uniform over the 3 keys whatever the keys, while
	// head 0 prefers the key aligned with the query.
	res = coreMustRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
		q := coreInput(c, "q", []float64{4, 0, 0, 0}, 1, 1, 4)
		kv := coreInput(c, "kv", []float64{1, 0, 5, 1, 0, 1, -2, 3, 0, 0, 7, 7}, 1, 3, 4)
		return attnIdentity(t, c, 4, 2, q, kv, nil)
	})
	w := res.vals[1] // [1, 2, 1, 3]
	e := math.Exp(4 / math.Sqrt2)
	coreClose(t, "head 0", w[:3], []float64{e / (e + 2), 1 / (e + 2), 1 / (e + 2)}, 1e-15, 0)
	coreClose(t, "head 1", w[3:], []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-15, 0)
	// out[f] = Σ_j w_{head(f), j}·v_j[f]
	v := []float64{1, 0, 5, 1, 0, 1, -2, 3, 0, 0, 7, 7}
	want := make([]float64, 4)
	for f := 0; f < 4; f++ {
		for j := 0; j < 3; j++ {
			want[f] += w[(f/2)*3+j] * v[4*j+f]
		}
	}
	coreClose(t, "out", res.vals[0], want, 1e-15, 1e-15)
}

func TestAttentionMaskExcludesKeys(t *testing.T) {
	// Sample 0 masks key 1, sample 1 masks every key. Changing a masked
	// key's value must not change any output; changing an attended one must.
	mask := []float64{1, 0, 1, 0, 0, 0}
	run := func(kvVals []float64) coreResult {
		return coreMustRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
			q := coreInput(c, "q", attnSine(2*2*4, 0.9, 0), 2, 2, 4)
			kv := coreInput(c, "kv", kvVals, 2, 3, 3)
			out, w, err := nn.MultiHeadAttention{Dim: 4, Heads: 2, KVDim: 3}.Forward(c.Sub("mha"), q, kv, coreInput(c, "mask", mask, 2, 3))
			// Non-zero biases: the all-masked sample's output is out_proj's bias.
			for _, p := range []string{"q_proj", "k_proj", "v_proj", "out_proj"} {
				coreSetParam(t, c, "mha."+p+".bias", attnSine(4, 1.3, len(p)))
			}
			return coreGraph{outs: G.Nodes{out, w}}, err
		})
	}
	kv := attnSine(2*3*3, 0.61, 0)
	base := run(kv)
	changed := append([]float64(nil), kv...)
	for f := 0; f < 3; f++ {
		changed[3+f] += 10 // sample 0, key 1 (masked)
		changed[9+f] -= 4  // sample 1, key 0 (masked: all keys are)
	}
	alt := run(changed)
	coreClose(t, "output with masked keys changed", alt.vals[0], base.vals[0], 0, 0)
	for b := 0; b < 2; b++ {
		for h := 0; h < 2; h++ {
			for i := 0; i < 2; i++ {
				row := base.vals[1][((b*2+h)*2+i)*3:][:3]
				if b == 0 && (row[1] != 0 || math.Abs(row[0]+row[2]-1) > 1e-15) {
					t.Errorf("sample 0 head %d query %d weights %v, want key 1 at 0 and the rest summing to 1", h, i, row)
				}
				if b == 1 && (row[0] != 0 || row[1] != 0 || row[2] != 0) {
					t.Errorf("fully masked sample: weights %v, want zeros", row)
				}
			}
		}
	}
	bias := attnSine(4, 1.3, len("out_proj"))
	coreClose(t, "fully masked sample output", base.vals[0][8:], append(append([]float64(nil), bias...), bias...), 1e-15, 0)
	changed = append([]float64(nil), kv...)
	changed[0] += 1 // sample 0, key 0 (attended)
	if other := run(changed); coreSame(other.vals[0][:8], base.vals[0][:8]) {
		t.Error("changing an attended key did not change the output")
	}
}

func TestAttentionGradients(t *testing.T) {
	// Lq ≠ Lk, KVDim ≠ Dim, a mask with one masked key and one fully
	// masked sample; the loss probes both outputs.
	for _, tc := range []struct {
		name    string
		train   bool
		dropout float64
		mask    []float64
	}{
		{"masked", false, 0, []float64{1, 1, 0, 1, 0, 0, 0, 0}},
		{"unmasked", false, 0, nil},
		{"dropout", true, 0.3, []float64{1, 1, 1, 0, 1, 0, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
				q := coreInput(c, "q", nntest.RandInput(41, 1, 2, 3, 6).Data().([]float64), 2, 3, 6)
				kv := coreInput(c, "kv", nntest.RandInput(42, 1, 2, 4, 5).Data().([]float64), 2, 4, 5)
				var mask *G.Node
				if tc.mask != nil {
					mask = coreInput(c, "mask", tc.mask, 2, 4)
				}
				out, w, err := nn.MultiHeadAttention{Dim: 6, Heads: 3, KVDim: 5, Dropout: tc.dropout}.Forward(c.Sub("mha"), q, kv, mask)
				if err != nil {
					return nil, nil, err
				}
				for _, p := range []string{"q_proj", "k_proj", "v_proj", "out_proj"} {
					coreSetParam(t, c, "mha."+p+".bias", nntest.RandInput(int64(len(p)), 0.5, 6).Data().([]float64))
				}
				l1, err := nntest.WeightedSum(out, 43)
				if err != nil {
					return nil, nil, err
				}
				l2, err := nntest.WeightedSum(w, 44)
				if err != nil {
					return nil, nil, err
				}
				l, err := G.Add(l1, l2)
				return l, G.Nodes{q, kv}, err
			}, nntest.Options{Train: tc.train, Entries: 8, MinChecked: 10})
		})
	}
}

func TestAttentionFloat32Gradients(t *testing.T) {
	// The float32 instantiation of every kernel on the path (attention core
	// with mask, layer norm, GELU, cross entropy) gives the float64
	// gradients to float32 precision.
	var grads [2][][]float64
	for i, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		res := coreMustRun(t, dt, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
			q := coreInput(c, "q", nntest.RandInput(71, 1, 2, 3, 4).Data().([]float64), 2, 3, 4)
			kv := coreInput(c, "kv", nntest.RandInput(72, 1, 2, 5, 4).Data().([]float64), 2, 5, 4)
			out, _, err := nn.MultiHeadAttention{Dim: 4, Heads: 2}.Forward(c.Sub("mha"), q, kv, coreInput(c, "m", []float64{1, 1, 1, 0, 1, 0, 1, 1, 1, 1}, 2, 5))
			if err != nil {
				return coreGraph{}, err
			}
			h, err := nn.LayerNorm{Features: 4}.Forward(c.Sub("ln"), out)
			if err != nil {
				return coreGraph{}, err
			}
			if h, err = nn.GELU(h); err != nil {
				return coreGraph{}, err
			}
			l, err := nn.CrossEntropySeq(h, coreIDs(c, "y", []int{0, 1, 2, 3, 3, 2}, 2, 3), -100)
			return coreGraph{loss: l, wrt: append(c.Learnables(), q, kv)}, err
		})
		grads[i] = res.grads
	}
	for j := range grads[0] {
		coreClose(t, "float32 gradient", grads[1][j], grads[0][j], 1e-3, 1e-5)
	}
}

func TestAttentionParamCount(t *testing.T) {
	// PyTorch: MultiheadAttention(8, 2) has 288 parameters and (4, 2,
	// kdim=vdim=3) has 72.
	for _, tc := range []struct{ dim, kv, want int }{{8, 0, 288}, {4, 3, 72}} {
		res := coreMustRun(t, tensor.Float64, nn.CtxOptions{}, func(c *nn.Ctx) (coreGraph, error) {
			kvDim := tc.kv
			if kvDim == 0 {
				kvDim = tc.dim
			}
			out, _, err := nn.MultiHeadAttention{Dim: tc.dim, Heads: 2, KVDim: tc.kv}.Forward(c, coreInput(c, "q", nil, 1, 2, tc.dim), coreInput(c, "kv", nil, 1, 3, kvDim), nil)
			return coreGraph{outs: G.Nodes{out}}, err
		})
		if n := res.store.NumParams(); n != tc.want {
			t.Errorf("Dim %d KVDim %d: %d parameters, want %d", tc.dim, tc.kv, n, tc.want)
		}
	}
}

func TestAttentionErrors(t *testing.T) {
	store, _ := nn.NewStore(tensor.Float64, 1)
	c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}).Sub("fusion").Sub("xattn")
	q := coreInput(c, "q", nil, 2, 3, 6)
	kv := coreInput(c, "kv", nil, 2, 4, 6)
	cases := []struct {
		m         nn.MultiHeadAttention
		q, kv, mk *G.Node
		want      string
	}{
		{nn.MultiHeadAttention{Dim: 6, Heads: 4}, q, kv, nil, "not divisible by Heads 4"},
		{nn.MultiHeadAttention{Dim: 8, Heads: 2}, q, kv, nil, "query [batch, Lq, 8]"},
		{nn.MultiHeadAttention{Dim: 6, Heads: 2, KVDim: 5}, q, kv, nil, "key/value [2, Lk, 5]"},
		{nn.MultiHeadAttention{Dim: 6, Heads: 2}, q, coreInput(c, "kv3", nil, 3, 4, 6), nil, "key/value [2, Lk, 6]"},
		{nn.MultiHeadAttention{Dim: 6, Heads: 2}, q, kv, coreInput(c, "m", nil, 2, 3), "mask must be float64 [2, 4]"},
		{nn.MultiHeadAttention{Dim: 6, Heads: 2, Dropout: 1}, q, kv, nil, "Dropout must be in [0, 1)"},
		{nn.MultiHeadAttention{Dim: 6}, q, kv, nil, "Heads must be positive"},
	}
	for _, tc := range cases {
		_, _, err := tc.m.Forward(c, tc.q, tc.kv, tc.mk)
		coreErrContains(t, err, "fusion.xattn", tc.want)
	}
}

// BenchmarkAttention times one forward+backward run of a float32
// MultiHeadAttention training graph (B=32, Lq=Lk=16, Dim=64, 4 heads,
// dropout 0.1), the shape of a fusion-layer call.
func BenchmarkAttention(b *testing.B) {
	store, _ := nn.NewStore(tensor.Float32, 1)
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{Train: true, NoiseSeed: 1})
	q := coreInput(c, "q", nntest.RandInput(1, 1, 32, 16, 64).Data().([]float64), 32, 16, 64)
	kv := coreInput(c, "kv", nntest.RandInput(2, 1, 32, 16, 64).Data().([]float64), 32, 16, 64)
	out, _, err := nn.MultiHeadAttention{Dim: 64, Heads: 4, Dropout: 0.1}.Forward(c, q, kv, nil)
	if err != nil {
		b.Fatal(err)
	}
	l, err := G.Sum(out)
	if err != nil {
		b.Fatal(err)
	}
	wrt := append(c.Learnables(), q, kv)
	if _, err := G.Grad(l, wrt...); err != nil {
		b.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(wrt...))
	defer vm.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
		vm.Reset()
	}
}
