package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Helpers shared by the ONNX tests: running exported models in
// onnxruntime through node and scripts/onnx_check.js, random inputs and
// weights, and Gorgonia evaluation.

// installHint is how to get onnxruntime for these tests (CI: .ci/run).
const installHint = "mkdir -p .cache/onnx && cd .cache/onnx && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund onnxruntime-node@1.30.0 (from the repository root)"

// onnxCheckScript returns the path of scripts/onnx_check.js, or skips the
// test when node or onnxruntime-node is missing.
func onnxCheckScript(t *testing.T) string {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "onnx_check.js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skipf("SKIP onnxruntime comparison: node is not installed (install Node.js, then %s)", installHint)
	}
	out, err := exec.Command("node", script, "--probe").CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
			t.Skipf("SKIP onnxruntime comparison: onnxruntime-node is not installed: %s", installHint)
		}
		t.Fatalf("node %s --probe: %v\n%s", script, err, out)
	}
	return script
}

// ioTensor is a tensor in onnx_check.js's JSON.
type ioTensor struct {
	Type string    `json:"type,omitempty"`
	Dims []int     `json:"dims"`
	Data []float64 `json:"data"`
}

// checkCase is one model run by onnx_check.js.
type checkCase struct {
	Name     string              `json:"name"`
	Model    string              `json:"model"`
	Inputs   map[string]ioTensor `json:"inputs"`
	Expected map[string]ioTensor `json:"expected"`
}

type checkResult struct {
	Name       string           `json:"name"`
	MaxAbsDiff *float64         `json:"max_abs_diff"`
	Outputs    map[string][]int `json:"outputs"`
	Error      string           `json:"error"`
}

// toIO converts a float32 or int tensor for onnx_check.js.
func toIO(d *tensor.Dense) ioTensor {
	io := ioTensor{Dims: append([]int(nil), d.Shape()...), Type: "float32"}
	switch v := d.Data().(type) {
	case []float32:
		for _, x := range v {
			io.Data = append(io.Data, float64(x))
		}
	case []int:
		io.Type = "int64"
		for _, x := range v {
			io.Data = append(io.Data, float64(x))
		}
	}
	return io
}

// newCase writes model to dir and returns its check case.
func newCase(t *testing.T, dir, name string, model []byte) checkCase {
	t.Helper()
	path := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".onnx")
	if err := os.WriteFile(path, model, 0o644); err != nil {
		t.Fatal(err)
	}
	return checkCase{Name: name, Model: path, Inputs: map[string]ioTensor{}, Expected: map[string]ioTensor{}}
}

// checkInRuntime runs every case in onnxruntime and fails the test for a
// case that errors or differs from its expected outputs by more than tol.
// It logs each case's largest absolute difference and returns them.
func checkInRuntime(t *testing.T, script string, cases []checkCase, tol float64) map[string]float64 {
	t.Helper()
	manifest := filepath.Join(t.TempDir(), "cases.json")
	data, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script, "--cases", manifest)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("onnx_check.js: %v\n%s", err, stderr.String())
	}
	diffs := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r checkResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad line from onnx_check.js: %q: %v", sc.Text(), err)
		}
		switch {
		case r.Error != "":
			t.Errorf("%s: onnxruntime: %s", r.Name, r.Error)
		case r.MaxAbsDiff == nil:
			t.Errorf("%s: no difference reported", r.Name)
		default:
			diffs[r.Name] = *r.MaxAbsDiff
			if *r.MaxAbsDiff > tol {
				t.Errorf("%s: onnxruntime and Gorgonia differ by %.3g (> %g)", r.Name, *r.MaxAbsDiff, tol)
			} else {
				t.Logf("%s: max |onnxruntime − gorgonia| = %.3g", r.Name, *r.MaxAbsDiff)
			}
		}
	}
	for _, c := range cases {
		if _, ok := diffs[c.Name]; !ok && !t.Failed() {
			t.Errorf("%s: no result from onnx_check.js", c.Name)
		}
	}
	return diffs
}

// perturb moves every parameter and buffer of store away from its initial
// value (running statistics, zero biases and uniform modality weights
// would otherwise hide mistakes) by Gaussian noise of half the tensor's RMS
// plus 0.05; running variances are redrawn in [0.5, 1.5).
func perturb(t *testing.T, store *nn.Store, seed int64) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	for _, p := range store.Params() {
		vals, err := nn.ToFloat64(p.Value)
		if err != nil {
			t.Fatal(err)
		}
		var ss float64
		for _, v := range vals {
			ss += v * v
		}
		sd := 0.5*math.Sqrt(ss/float64(len(vals))) + 0.05 // relative to the tensor's scale
		for i := range vals {
			if strings.HasSuffix(p.Name, "running_var") {
				vals[i] = 0.5 + rng.Float64()
			} else {
				vals[i] += sd * rng.NormFloat64()
			}
		}
		if err := nn.SetFromFloat64(p.Value, vals); err != nil {
			t.Fatal(err)
		}
	}
}

// randomInput returns a float32 tensor with N(0, scale²) entries, or (ids)
// token ids in [1, vocab) with padding id 0 at the end of sample 1 and in
// all of sample 2.
func randomInput(rng *rand.Rand, shape []int, ids bool, scale float64, vocab int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if !ids {
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(scale * rng.NormFloat64())
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(vals))
	}
	l := shape[1]
	out := make([]int, n)
	for b := 0; b < shape[0]; b++ {
		for j := 0; j < l; j++ {
			id := 1 + rng.Intn(vocab-1)
			if (b == 1 && j >= l-2) || b == 2 {
				id = 0
			}
			out[b*l+j] = id
		}
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(out))
}

// runGraph runs g once and returns the values of nodes as float64.
func runGraph(t *testing.T, g *G.ExprGraph, nodes ...*G.Node) [][]float64 {
	t.Helper()
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatalf("RunAll: %v", err)
	}
	out := make([][]float64, len(nodes))
	for i, n := range nodes {
		v, err := nn.ToFloat64(n.Value().(*tensor.Dense))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = v
	}
	return out
}

// differs reports whether the rows (first-axis slices) of v are not all
// equal: the value depends on the sample.
func differs(v []float64, batch int) bool {
	row := len(v) / batch
	for b := 1; b < batch; b++ {
		for j := 0; j < row; j++ {
			if v[b*row+j] != v[j] {
				return true
			}
		}
	}
	return false
}
