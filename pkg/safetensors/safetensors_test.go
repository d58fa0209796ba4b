package safetensors

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	in := map[string]Tensor{
		"a.weight": {Shape: []int{2, 3}, F32: []float32{1, 2, 3, 4, 5, -6.5}},
		"b":        {Shape: []int{2}, F64: []float64{1e-300, 3}},
		"step":     {Shape: []int{}, I64: []int64{-7}},
	}
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := WriteFile(path, in, map[string]string{"config": "{}"}); err != nil {
		t.Fatal(err)
	}
	out, meta, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta["config"] != "{}" {
		t.Errorf("metadata %v", meta)
	}
	if got := out["a.weight"].F32; len(got) != 6 || got[5] != -6.5 || out["a.weight"].Shape[1] != 3 {
		t.Errorf("a.weight %+v", out["a.weight"])
	}
	if out["b"].F64[0] != 1e-300 || out["step"].I64[0] != -7 || len(out["step"].Shape) != 0 {
		t.Errorf("b/step %+v %+v", out["b"], out["step"])
	}
	// The header is 8-byte aligned and the data follows in name order.
	raw, _ := os.ReadFile(path)
	hl := binary.LittleEndian.Uint64(raw[:8])
	if hl%8 != 0 {
		t.Errorf("header length %d not aligned", hl)
	}
	if !bytes.Contains(raw[8:8+hl], []byte(`"a.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}`)) {
		t.Errorf("header %s", raw[8:8+hl])
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(entries))
	}
}

func TestDecodeErrors(t *testing.T) {
	var good bytes.Buffer
	if err := Encode(&good, map[string]Tensor{"w": {Shape: []int{2}, F32: []float32{1, 2}}}, nil); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"too short":    {1, 2},
		"header":       append([]byte{255, 255, 0, 0, 0, 0, 0, 0}, good.Bytes()[8:]...),
		"outside data": good.Bytes()[:good.Len()-4],
		"unsupported":  []byte(strings.Replace(good.String(), `"F32"`, `"F16"`, 1)),
	}
	for want, data := range cases {
		_, _, err := Decode(data)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v", want, err)
		}
	}
	if err := Encode(&good, map[string]Tensor{"w": {Shape: []int{3}, F32: []float32{1}}}, nil); err == nil || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("shape mismatch: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	var good bytes.Buffer
	Encode(&good, map[string]Tensor{"w": {Shape: []int{2}, F32: []float32{1, 2}}, "i": {Shape: []int{1}, I64: []int64{3}}}, map[string]string{"k": "v"})
	f.Add(good.Bytes())
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '})
	f.Fuzz(func(t *testing.T, data []byte) {
		Decode(data) // must not panic
	})
}
