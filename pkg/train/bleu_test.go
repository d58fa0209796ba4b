package train

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// words maps space-separated words to ids (a fresh id per new word, shared
// across the calls of one test through dict).
func words(dict map[string]int, s string) []int {
	var ids []int
	for _, w := range strings.Fields(s) {
		id, ok := dict[w]
		if !ok {
			id = len(dict) + 10
			dict[w] = id
		}
		ids = append(ids, id)
	}
	return ids
}

// TestBLEUHandComputed checks BLEU-4 against values worked out by hand.
func TestBLEUHandComputed(t *testing.T) {
	d := map[string]int{}
	ref := words(d, "the cat sat on a mat today")
	cand := words(d, "the cat sat on the mat today")
	short := words(d, "the cat sat on")

	// Identical → 1.
	if b, _ := CorpusBLEU([][]int{ref}, [][][]int{{ref}}); b.Score != 1 || b.BrevityPenalty != 1 {
		t.Errorf("identical: %+v, want 1", b)
	}
	// p1 = 6/7 ("the" clipped to 1), p2 = 4/6, p3 = 2/5, p4 = 1/4, BP 1:
	// (6/7·4/6·2/5·1/4)^¼ = 0.488923….
	b, err := CorpusBLEU([][]int{cand}, [][][]int{{ref}})
	if err != nil {
		t.Fatal(err)
	}
	want := [4]float64{6.0 / 7, 4.0 / 6, 2.0 / 5, 1.0 / 4}
	if b.Precisions != want || b.BrevityPenalty != 1 || math.Abs(b.Score-0.48892302243490104) > 1e-12 {
		t.Errorf("partial match: %+v, want precisions %v and 0.488923", b, want)
	}
	// A short candidate matches perfectly but pays BP = exp(1 − 7/4).
	b, _ = CorpusBLEU([][]int{short}, [][][]int{{ref}})
	if math.Abs(b.Score-math.Exp(-0.75)) > 1e-12 || b.CandidateLen != 4 || b.ReferenceLen != 7 {
		t.Errorf("short candidate: %+v, want exp(-0.75) = 0.472367", b)
	}
	// Corpus level: counts are summed before the ratios —
	// exp(1 − 14/11)·(10/11·7/9·4/7·2/5)^¼ = 0.482700…, not the mean
	// of the sentence scores (0.480645).
	b, _ = CorpusBLEU([][]int{cand, short}, [][][]int{{ref}, {ref}})
	if math.Abs(b.Score-0.4826999428554263) > 1e-12 {
		t.Errorf("corpus: %.12f, want 0.482699942855", b.Score)
	}
	// Papineni et al.'s example of modified precision: 7 × "the" against
	// two references scores unigram precision 2/7 (and BLEU 0: no bigram
	// matches, no smoothing).
	the := words(d, "the the the the the the the")
	refs := [][]int{words(d, "the cat is on the mat"), words(d, "there is a cat on the mat")}
	b, _ = CorpusBLEU([][]int{the}, [][][]int{refs})
	if math.Abs(b.Precisions[0]-2.0/7) > 1e-15 || b.Precisions[1] != 0 || b.Score != 0 {
		t.Errorf("modified precision: %+v, want p1 = 2/7 and BLEU 0", b)
	}
	// The reference length is the one closest to the candidate (7 is
	// closer to 7 than 6): BP 1.
	if b.ReferenceLen != 7 || b.BrevityPenalty != 1 {
		t.Errorf("closest reference length: r = %d, BP %g, want 7 and 1", b.ReferenceLen, b.BrevityPenalty)
	}
	// Empty candidate, mismatched lengths.
	if b, _ := CorpusBLEU([][]int{{}}, [][][]int{{ref}}); b.Score != 0 {
		t.Errorf("empty candidate: %g", b.Score)
	}
	if _, err := CorpusBLEU([][]int{cand}, nil); err == nil {
		t.Error("candidates without references: no error")
	}
	// Accumulating batch by batch equals scoring the corpus at once.
	var a1, a2 BLEUCounts
	_ = a1.Add(cand, [][]int{ref})
	_ = a2.Add(short, [][]int{ref})
	a1.Merge(a2)
	if a1.Score().Score != b2(t, cand, short, ref) {
		t.Error("merged counts differ from the corpus score")
	}
}

func b2(t *testing.T, c1, c2, ref []int) float64 {
	b, err := CorpusBLEU([][]int{c1, c2}, [][][]int{{ref}, {ref}})
	if err != nil {
		t.Fatal(err)
	}
	return b.Score
}

func TestCaptionReference(t *testing.T) {
	for _, tc := range []struct {
		in, want []int
	}{
		{[]int{2, 7, 8, 3, 0, 0}, []int{7, 8}},
		{[]int{2, 7, 0, 8}, []int{7, 8}}, // truncated: no <eos>
		{[]int{7, 3}, []int{7}},          // no <bos>
		{[]int{2, 3, 0}, []int{}},
	} {
		if got := CaptionReference(tc.in, 2, 3, 0); !equalIDs(got, tc.want) {
			t.Errorf("%v → %v, want %v", tc.in, got, tc.want)
		}
	}
}

func equalIDs(a, b []int) bool {
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

// Corpus BLEU-4 of two captions against their references: counts are
// summed over the corpus before the ratios.
func ExampleCorpusBLEU() {
	ids := map[string]int{}
	cands := [][]int{words(ids, "a red shirt with long sleeves"), words(ids, "a pair of blue jeans")}
	refs := [][][]int{{words(ids, "a red shirt with short sleeves")}, {words(ids, "a pair of blue jeans")}}
	b, err := CorpusBLEU(cands, refs)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("BLEU-4 %.4f, precisions %.3f %.3f %.3f %.3f, BP %.2f\n", b.Score, b.Precisions[0], b.Precisions[1], b.Precisions[2], b.Precisions[3], b.BrevityPenalty)
	// Output: BLEU-4 0.7419, precisions 0.909 0.778 0.714 0.600, BP 1.00
}
