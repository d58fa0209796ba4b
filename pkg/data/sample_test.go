package data

import (
	"strings"
	"testing"
)

func sampleWith(idx int, img []float32, shape []int, toks []int, class int) Sample {
	return Sample{
		Index:   idx,
		Inputs:  map[string]Tensor{"vision": {Shape: shape, Data: img}},
		Tokens:  map[string][]int{"text": toks},
		Present: map[string]bool{"vision": true, "text": idx%2 == 0},
		Label:   Label{Class: class},
	}
}

func TestCollateStacksSamples(t *testing.T) {
	a := sampleWith(7, []float32{1, 2, 3, 4}, []int{1, 2, 2}, []int{5, 6, 0}, 2)
	b := sampleWith(9, []float32{5, 6, 7, 8}, []int{1, 2, 2}, []int{7, 0, 0}, 0)
	bt, err := Collate([]Sample{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if bt.Size != 2 || bt.Indices[0] != 7 || bt.Indices[1] != 9 {
		t.Fatalf("size/indices %d %v", bt.Size, bt.Indices)
	}
	v := bt.Inputs["vision"]
	shapeIs(t, "vision", v.Shape, 2, 1, 2, 2)
	sliceNear(t, "vision", v.Data, []float32{1, 2, 3, 4, 5, 6, 7, 8}, 0)
	if got := bt.Tokens["text"]; len(got) != 6 || got[0] != 5 || got[3] != 7 || bt.TokenLen["text"] != 3 {
		t.Fatalf("tokens %v len %d", got, bt.TokenLen["text"])
	}
	if p := bt.Present["text"]; p[0] != false || p[1] != false { // 7 and 9 are odd
		t.Fatalf("present text %v", p)
	}
	if p := bt.Present["vision"]; !p[0] || !p[1] {
		t.Fatalf("present vision %v", p)
	}
	if bt.Classes[0] != 2 || bt.Classes[1] != 0 || bt.Vectors.Data != nil || bt.LabelTokens != nil {
		t.Fatalf("labels %v %v %v", bt.Classes, bt.Vectors, bt.LabelTokens)
	}
	// The batch owns its memory.
	a.Inputs["vision"].Data[0] = 100
	if v.Data[0] != 1 {
		t.Fatal("batch aliases the sample")
	}
}

func TestCollateVectorAndTokenLabels(t *testing.T) {
	s := func(i int, v []float32, tk []int) Sample {
		return Sample{Index: i, Inputs: map[string]Tensor{"x": {Shape: []int{1}, Data: []float32{float32(i)}}},
			Label: Label{Class: NoClass, Vector: v, Tokens: tk}}
	}
	bt, err := Collate([]Sample{s(0, []float32{1, 2}, []int{3, 4, 5}), s(1, []float32{3, 4}, []int{6, 7, 8})})
	if err != nil {
		t.Fatal(err)
	}
	if bt.Classes != nil {
		t.Fatalf("classes %v for NoClass samples", bt.Classes)
	}
	shapeIs(t, "vectors", bt.Vectors.Shape, 2, 2)
	sliceNear(t, "vectors", bt.Vectors.Data, []float32{1, 2, 3, 4}, 0)
	if bt.LabelLen != 3 || len(bt.LabelTokens) != 6 || bt.LabelTokens[5] != 8 {
		t.Fatalf("label tokens %v len %d", bt.LabelTokens, bt.LabelLen)
	}
	if p := bt.Present["x"]; len(p) != 2 || !p[0] || !p[1] {
		t.Fatalf("presence defaults to true for present inputs: %v", p)
	}
}

func TestCollateErrorsNameModalityAndSample(t *testing.T) {
	good := sampleWith(3, []float32{1, 2, 3, 4}, []int{1, 2, 2}, []int{1, 2, 3}, 1)
	cases := []struct {
		name  string
		other Sample
		want  []string
	}{
		{"shape", sampleWith(11, []float32{1, 2, 3, 4, 5, 6}, []int{1, 2, 3}, []int{1, 2, 3}, 1), []string{`"vision"`, "sample 11", "[1 2 3]"}},
		{"tokens", sampleWith(12, []float32{1, 2, 3, 4}, []int{1, 2, 2}, []int{1, 2}, 1), []string{`"text"`, "sample 12", "length 2"}},
		{"missing", Sample{Index: 13, Tokens: map[string][]int{"text": {1, 2, 3}}, Label: Label{Class: 1}}, []string{`"vision"`, "sample 13"}},
		{"label", sampleWith(14, []float32{1, 2, 3, 4}, []int{1, 2, 2}, []int{1, 2, 3}, NoClass), []string{"sample 14", "class"}},
		{"bad data", sampleWith(15, []float32{1, 2, 3}, []int{1, 2, 2}, []int{1, 2, 3}, 1), []string{`"vision"`, "sample 15"}},
	}
	for _, tc := range cases {
		_, err := Collate([]Sample{good, tc.other})
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
	}
	if _, err := Collate(nil); err == nil {
		t.Error("empty batch: no error")
	}
}
