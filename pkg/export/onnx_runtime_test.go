package export

import (
	"bytes"
	"fmt"
	"testing"
)

// TestONNXMatchesGorgonia exports every tiny network (every fusion
// strategy and head, the preprocessor and encoder variants, dynamic and
// fixed batch, opsets 13, 17 and 21), runs it in onnxruntime (node and
// scripts/onnx_check.js) on sample inputs and compares the output with the
// Gorgonia evaluation graph in float32: the largest absolute difference
// must stay below 1e-4. The outputs must depend on the sample (the spike
// trains of at least one modality vary with the input), so the comparison
// exercises the path from the inputs.
func TestONNXMatchesGorgonia(t *testing.T) {
	script := onnxCheckScript(t)
	dir := t.TempDir()
	const batch = 3
	var cases []checkCase
	for _, c := range exportCases() {
		net, store := buildCase(t, c)
		var buf bytes.Buffer
		if err := ONNX(net, store, &buf, c.opts); err != nil {
			t.Fatalf("%s: ONNX: %v", c.name, err)
		}
		model := buf.Bytes()
		// A dynamic batch axis is also run with a second batch size.
		batches := []int{batch}
		if c.opts.Batch == 0 {
			batches = append(batches, 2)
		}
		for _, b := range batches {
			in := sampleInputs(net, b, int64(5+3*(batch-b)))
			want, shape, rates := reference(t, net, store, in, b)
			if b == batch {
				for name, r := range rates {
					if r <= 0 || r >= 1 {
						t.Errorf("%s: modality %q fires at rate %.3f: the spike path is not exercised", c.name, name, r)
					}
				}
				if !differs(want, b) {
					t.Errorf("%s: the output is the same for every sample: the comparison would not see the inputs", c.name)
				}
			}
			cc := newCase(t, dir, fmt.Sprintf("%s/batch%d", c.name, b), model)
			cc.Expected[OutputName(net.Config().Head)] = ioTensor{Dims: shape, Data: want}
			for name, d := range in {
				cc.Inputs[name] = toIO(d)
			}
			cases = append(cases, cc)
		}
	}
	checkInRuntime(t, script, cases, 1e-4)
}
