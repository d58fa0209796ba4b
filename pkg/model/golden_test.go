package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Golden vectors come from scripts/golden.py (plain PyTorch, float64, the
// reference equations of DESIGN.md §1). Float64 Go graphs must agree to
// goldenRTol relative (plus goldenATol absolute, for entries that are zero
// in exact arithmetic) — the only differences are summation order.
const (
	goldenRTol = 1e-9
	goldenATol = 1e-12
)

func loadGolden(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", name))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 scripts/golden.py)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type goldenTensor struct {
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

// goldenStore returns a float64 store holding the given tensors (trainable).
func goldenStore(t *testing.T, params map[string]goldenTensor) *nn.Store {
	t.Helper()
	store, err := nn.NewStore(tensor.Float64, 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range params {
		setParam(t, store, name, p.Shape, p.Data)
	}
	return store
}

func setParam(t *testing.T, store *nn.Store, name string, shape []int, data []float64) {
	t.Helper()
	p, err := store.Get(name, shape, nn.Zeros(), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := nn.SetFromFloat64(p.Value, data); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func assertClose(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	bad := 0
	for i := range want {
		if d := math.Abs(got[i] - want[i]); !(d <= goldenATol+goldenRTol*math.Abs(want[i])) {
			if bad < 3 {
				t.Errorf("%s[%d] = %.17g, want %.17g (|diff| %.3g)", what, i, got[i], want[i], d)
			}
			bad++
		}
	}
	if bad > 3 {
		t.Errorf("%s: %d mismatches in all", what, bad)
	}
}

// probeLoss returns Σ_i Σ probes[i]·xs[i].
func probeLoss(t *testing.T, xs []*G.Node, probes [][]float64) *G.Node {
	t.Helper()
	if len(xs) != len(probes) {
		t.Fatalf("%d outputs for %d probes", len(xs), len(probes))
	}
	var loss *G.Node
	for i, x := range xs {
		r := G.NewConstant(nn.NewDense(tensor.Float64, x.Shape(), probes[i]))
		l := G.Must(G.Sum(G.Must(G.HadamardProd(x, r))))
		if loss == nil {
			loss = l
		} else {
			loss = G.Must(G.Add(loss, l))
		}
	}
	return loss
}

// runWithGrads differentiates loss w.r.t. every learnable of c, runs the
// graph (keeping every value) and returns the gradients by parameter name.
func runWithGrads(t *testing.T, c *nn.Ctx, loss *G.Node) map[string][]float64 {
	t.Helper()
	wrt := c.Learnables()
	if _, err := G.Grad(loss, wrt...); err != nil {
		t.Fatal(err)
	}
	runGraph(t, c.Graph(), wrt...)
	grads := map[string][]float64{}
	for _, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatalf("%s: %v", n.Name(), err)
		}
		if grads[n.Name()], err = nn.ToFloat64(gv.(tensor.Tensor)); err != nil {
			t.Fatal(err)
		}
	}
	return grads
}

// assertGrads compares every expected gradient and checks that the Go graph
// has exactly the expected learnables (same parameter names as the
// reference implementation).
func assertGrads(t *testing.T, got map[string][]float64, want map[string][]float64, rename map[string]string) {
	t.Helper()
	var gotNames, wantNames []string
	for n := range got {
		gotNames = append(gotNames, n)
	}
	for n, w := range want {
		goName := n
		if r, ok := rename[n]; ok {
			goName = r
		}
		wantNames = append(wantNames, goName)
		assertClose(t, "grad "+goName, got[goName], w)
	}
	sort.Strings(gotNames)
	sort.Strings(wantNames)
	if len(gotNames) != len(wantNames) {
		t.Errorf("learnables %v, reference has %v", gotNames, wantNames)
		return
	}
	for i := range gotNames {
		if gotNames[i] != wantNames[i] {
			t.Errorf("learnables %v, reference has %v", gotNames, wantNames)
			return
		}
	}
}

func TestGoldenLIF(t *testing.T) {
	var file struct {
		Cases []struct {
			Name, Reset, Surrogate  string
			Slope                   float64
			Learn                   bool
			Batch, Units, Steps     int
			Current                 []float64
			ProbeSpikes             [][]float64 `json:"probe_spikes"`
			ProbeMembrane           []float64   `json:"probe_membrane"`
			Spikes, Membranes       [][]float64
			Loss                    float64
			Grads                   map[string][]float64
			Beta, Threshold, Graded json.RawMessage
		}
	}
	loadGolden(t, "lif.json", &file)
	if len(file.Cases) != 18 {
		t.Fatalf("lif.json has %d cases, want 15 learnable (3 resets × 5 surrogates) + 3 fixed", len(file.Cases))
	}
	for _, gc := range file.Cases {
		t.Run(gc.Name, func(t *testing.T) {
			store, _ := nn.NewStore(tensor.Float64, 1)
			bn := []int{gc.Batch, gc.Units}
			setParam(t, store, "current", bn, gc.Current)
			cfg := LIFConfig{Units: gc.Units, Reset: gc.Reset, Surrogate: nn.Surrogate{Kind: gc.Surrogate, Slope: gc.Slope}}
			rename := map[string]string{"beta": "lif.beta", "threshold": "lif.threshold", "graded": "lif.graded_spikes"}
			if gc.Learn {
				cfg.LearnBeta, cfg.LearnThreshold, cfg.GradedSpikes = true, true, true
				for key, raw := range map[string]json.RawMessage{"beta": gc.Beta, "threshold": gc.Threshold, "graded": gc.Graded} {
					var v []float64
					if err := json.Unmarshal(raw, &v); err != nil {
						t.Fatal(err)
					}
					setParam(t, store, rename[key], []int{gc.Units}, v)
				}
			} else if err := json.Unmarshal(gc.Beta, &cfg.Beta); err != nil {
				t.Fatal(err)
			} else if err := json.Unmarshal(gc.Threshold, &cfg.Threshold); err != nil {
				t.Fatal(err)
			}
			c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{})
			cur, err := c.Param("current", bn, nn.Zeros())
			if err != nil {
				t.Fatal(err)
			}
			lif, err := NewLIF(cfg)
			if err != nil {
				t.Fatal(err)
			}
			out, err := lif.Forward(c.Sub("lif"), []*G.Node{cur}, gc.Steps)
			if err != nil {
				t.Fatal(err)
			}
			loss := probeLoss(t, append(append([]*G.Node{}, out.Spikes...), out.Membranes[gc.Steps-1]), append(gc.ProbeSpikes, gc.ProbeMembrane))
			grads := runWithGrads(t, c, loss)
			for s := 0; s < gc.Steps; s++ {
				sp := values(t, out.Spikes[s])
				for i, want := range gc.Spikes[s] {
					if sp[i] != want {
						t.Fatalf("S_%d[%d] = %g, want %g", s+1, i, sp[i], want)
					}
				}
				assertClose(t, "membrane", values(t, out.Membranes[s]), gc.Membranes[s])
			}
			assertClose(t, "loss", values(t, loss), []float64{gc.Loss})
			assertGrads(t, grads, gc.Grads, rename)
		})
	}
}

type goldenCell struct {
	Name, Mode              string
	ElapsedTime             float64 `json:"elapsed_time"`
	ODEUnfolds              int     `json:"ode_unfolds"`
	Batch, Units, Steps     int
	InputSize               int `json:"input_size"`
	BackboneUnits           int `json:"backbone_units"`
	BackboneLayers          int `json:"backbone_layers"`
	Params                  map[string]goldenTensor
	Inputs, Probes, Outputs [][]float64
	Loss                    float64
	Grads                   map[string][]float64
}

// checkGoldenCell builds the cell's graph over inputs x0…x{T−1} (learnable,
// so their gradients are compared too) and compares outputs and gradients.
func checkGoldenCell(t *testing.T, gc goldenCell, scope string, forward func(c *nn.Ctx, xs []*G.Node) ([]*G.Node, error)) {
	t.Helper()
	store := goldenStore(t, gc.Params)
	c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{})
	var xs []*G.Node
	for i, x := range gc.Inputs {
		name := "x" + string(rune('0'+i))
		setParam(t, store, name, []int{gc.Batch, gc.InputSize}, x)
		n, err := c.Param(name, []int{gc.Batch, gc.InputSize}, nn.Zeros())
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, n)
	}
	outs, err := forward(c.Sub(scope), xs)
	if err != nil {
		t.Fatal(err)
	}
	loss := probeLoss(t, outs, gc.Probes)
	grads := runWithGrads(t, c, loss)
	for s := range outs {
		assertClose(t, "output", values(t, outs[s]), gc.Outputs[s])
	}
	assertClose(t, "loss", values(t, loss), []float64{gc.Loss})
	assertGrads(t, grads, gc.Grads, nil)
}

func TestGoldenCfC(t *testing.T) {
	var file struct{ Cases []goldenCell }
	loadGolden(t, "cfc.json", &file)
	modes := map[string]bool{}
	for _, gc := range file.Cases {
		modes[gc.Mode] = true
		t.Run(gc.Name, func(t *testing.T) {
			cell, err := NewCfC(CfCConfig{InputSize: gc.InputSize, Units: gc.Units, Mode: gc.Mode,
				BackboneUnits: gc.BackboneUnits, BackboneLayers: gc.BackboneLayers, ElapsedTime: gc.ElapsedTime})
			if err != nil {
				t.Fatal(err)
			}
			checkGoldenCell(t, gc, "cfc", cell.Forward)
		})
	}
	if !modes[CfCDefault] || !modes[CfCNoGate] || !modes[CfCPure] {
		t.Errorf("cfc.json covers modes %v, want all three", modes)
	}
}

func TestGoldenLTC(t *testing.T) {
	var file struct{ Cases []goldenCell }
	loadGolden(t, "ltc.json", &file)
	if len(file.Cases) == 0 {
		t.Fatal("ltc.json has no cases")
	}
	for _, gc := range file.Cases {
		t.Run(gc.Name, func(t *testing.T) {
			cell, err := NewLTC(LTCConfig{InputSize: gc.InputSize, Units: gc.Units, ODEUnfolds: gc.ODEUnfolds, ElapsedTime: gc.ElapsedTime})
			if err != nil {
				t.Fatal(err)
			}
			checkGoldenCell(t, gc, "ltc", cell.Forward)
		})
	}
}

func TestGoldenEncoder(t *testing.T) {
	var file struct {
		BenchEncoderParams int `json:"bench_encoder_params"`
		Cases              []struct {
			Batch         int
			InputDim      int `json:"input_dim"`
			EncoderDim    int `json:"encoder_dim"`
			SpikingUnits  int `json:"spiking_units"`
			LiquidUnits   int `json:"liquid_units"`
			BackboneUnits int `json:"backbone_units"`
			Steps         int
			Params        map[string]goldenTensor
			Input, Probe  []float64
			Spikes        [][]float64
			Feature       []float64
			Loss          float64
			Grads         map[string][]float64
		}
	}
	loadGolden(t, "encoder.json", &file)
	if file.BenchEncoderParams != benchEncoderParams {
		t.Errorf("encoder.json: bench-small encoder has %d parameters in PyTorch, test constant says %d", file.BenchEncoderParams, benchEncoderParams)
	}
	for _, gc := range file.Cases {
		store := goldenStore(t, gc.Params)
		setParam(t, store, "x", []int{gc.Batch, gc.InputDim}, gc.Input)
		c := nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{})
		x, err := c.Param("x", []int{gc.Batch, gc.InputDim}, nn.Zeros())
		if err != nil {
			t.Fatal(err)
		}
		enc, err := NewModalityEncoder(EncoderConfig{Name: "toy", InputDim: gc.InputDim, EncoderDim: gc.EncoderDim,
			SpikingUnits: gc.SpikingUnits, LiquidUnits: gc.LiquidUnits, NumSpikeSteps: gc.Steps, SpikingLayers: 1,
			BackboneUnits: gc.BackboneUnits, BackboneLayers: 1})
		if err != nil {
			t.Fatal(err)
		}
		out, err := enc.Forward(c.Sub("enc"), x)
		if err != nil {
			t.Fatal(err)
		}
		loss := probeLoss(t, []*G.Node{out.Feature}, [][]float64{gc.Probe})
		grads := runWithGrads(t, c, loss)
		for s := range gc.Spikes {
			got := values(t, out.Spikes[0][s])
			for i, want := range gc.Spikes[s] {
				if got[i] != want {
					t.Fatalf("S_%d[%d] = %g, want %g", s+1, i, got[i], want)
				}
			}
		}
		assertClose(t, "feature", values(t, out.Feature), gc.Feature)
		assertClose(t, "loss", values(t, loss), []float64{gc.Loss})
		assertGrads(t, grads, gc.Grads, nil)
	}
}
