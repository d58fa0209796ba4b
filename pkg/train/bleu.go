package train

import (
	"fmt"
	"math"
)

// BLEUOrder is the longest n-gram BLEU-4 counts.
const BLEUOrder = 4

// BLEU is a corpus-level BLEU-4 score (Papineni et al. 2002, "BLEU: a
// Method for Automatic Evaluation of Machine Translation"):
//
//	BLEU = BP · exp(Σ_{n=1..4} ¼·log p_n)
//	p_n  = Σ_candidates Σ_ngrams min(count, max count in any reference)
//	       / Σ_candidates number of candidate n-grams
//	BP   = 1 if c > r, else exp(1 − r/c)
//
// where c is the total candidate length and r the sum over candidates of
// the reference length closest to the candidate's (the shorter on ties).
// Counts are summed over the corpus before the ratios (not an average of
// sentence scores). Without smoothing a p_n of 0 makes BLEU 0, as NLTK's
// corpus_bleu; scores are in [0, 1].
type BLEU struct {
	// Score is BLEU-4 in [0, 1].
	Score float64 `json:"bleu4"`
	// Precisions are the modified n-gram precisions p_1 … p_4 (0 when the
	// corpus has no n-gram of that order).
	Precisions [BLEUOrder]float64 `json:"precisions"`
	// BrevityPenalty is BP.
	BrevityPenalty float64 `json:"brevity_penalty"`
	// CandidateLen and ReferenceLen are c and r.
	CandidateLen int `json:"candidate_len"`
	ReferenceLen int `json:"reference_len"`
}

// BLEUCounts accumulates the sufficient statistics of corpus BLEU one
// candidate at a time (so batches can be scored as they come).
type BLEUCounts struct {
	// Match[n-1] and Total[n-1] are the clipped matches and the candidate
	// n-grams of order n.
	Match, Total [BLEUOrder]int
	// CandLen and RefLen are c and r.
	CandLen, RefLen int
}

// Add counts one candidate against its references (token ids; at least
// one reference).
func (b *BLEUCounts) Add(candidate []int, references [][]int) error {
	if len(references) == 0 {
		return fmt.Errorf("bleu: a candidate needs at least one reference")
	}
	b.CandLen += len(candidate)
	best := -1
	for _, r := range references {
		d, bd := abs(len(r)-len(candidate)), abs(best-len(candidate))
		if best < 0 || d < bd || (d == bd && len(r) < best) {
			best = len(r)
		}
	}
	b.RefLen += best
	for n := 1; n <= BLEUOrder; n++ {
		cand := ngramCounts(candidate, n)
		maxRef := map[string]int{}
		for _, r := range references {
			for g, k := range ngramCounts(r, n) {
				maxRef[g] = max(maxRef[g], k)
			}
		}
		for g, k := range cand {
			b.Match[n-1] += min(k, maxRef[g])
			b.Total[n-1] += k
		}
	}
	return nil
}

// Merge adds another accumulator's counts.
func (b *BLEUCounts) Merge(o BLEUCounts) {
	for i := range b.Match {
		b.Match[i] += o.Match[i]
		b.Total[i] += o.Total[i]
	}
	b.CandLen += o.CandLen
	b.RefLen += o.RefLen
}

// Score computes BLEU-4 from the counts.
func (b BLEUCounts) Score() BLEU {
	s := BLEU{CandidateLen: b.CandLen, ReferenceLen: b.RefLen}
	logSum, zero := 0.0, false
	for i := range b.Match {
		if b.Total[i] > 0 {
			s.Precisions[i] = float64(b.Match[i]) / float64(b.Total[i])
		}
		if s.Precisions[i] == 0 {
			zero = true
			continue
		}
		logSum += math.Log(s.Precisions[i]) / BLEUOrder
	}
	switch {
	case b.CandLen == 0:
		s.BrevityPenalty = 0
	case b.CandLen > b.RefLen:
		s.BrevityPenalty = 1
	default:
		s.BrevityPenalty = math.Exp(1 - float64(b.RefLen)/float64(b.CandLen))
	}
	if !zero {
		s.Score = s.BrevityPenalty * math.Exp(logSum)
	}
	return s
}

// CorpusBLEU scores candidates[i] against references[i] (one or more
// token sequences each).
func CorpusBLEU(candidates [][]int, references [][][]int) (BLEU, error) {
	if len(candidates) != len(references) {
		return BLEU{}, fmt.Errorf("bleu: %d candidates for %d reference sets", len(candidates), len(references))
	}
	var b BLEUCounts
	for i, c := range candidates {
		if err := b.Add(c, references[i]); err != nil {
			return BLEU{}, fmt.Errorf("candidate %d: %w", i, err)
		}
	}
	return b.Score(), nil
}

// ngramCounts counts the n-grams of ids, keyed by their ids.
func ngramCounts(ids []int, n int) map[string]int {
	out := map[string]int{}
	for i := 0; i+n <= len(ids); i++ {
		out[fmt.Sprint(ids[i:i+n])]++
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// CaptionReference extracts the caption words of a label token row:
// after a leading <bos>, up to (not including) the first <eos>, without
// padding ids.
func CaptionReference(labels []int, bos, eos, pad int) []int {
	if len(labels) > 0 && labels[0] == bos {
		labels = labels[1:]
	}
	out := make([]int, 0, len(labels))
	for _, id := range labels {
		if id == eos {
			break
		}
		if id != pad {
			out = append(out, id)
		}
	}
	return out
}
