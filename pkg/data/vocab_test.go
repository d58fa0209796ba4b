package data

import (
	"encoding/json"
	"strings"
	"testing"
)

func buildVocab(t *testing.T, level string, cfg VocabConfig, texts ...string) *Vocab {
	t.Helper()
	b, err := NewVocabBuilder(level, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range texts {
		if err := b.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	return b.Build()
}

func vid(t *testing.T, v *Vocab, tok string) int {
	t.Helper()
	id, ok := v.ID(tok)
	if !ok {
		t.Fatalf("token %q not in vocab %v", tok, v.Tokens)
	}
	return id
}

func TestSplitTokens(t *testing.T) {
	got := splitTokens("Don't stop: X-ray café, 3.5  mph!", "word", true)
	want := []string{"don't", "stop", ":", "x-ray", "café", ",", "3", ".", "5", "mph", "!"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("words %q, want %q", got, want)
	}
	if c := splitTokens("Ab c", "char", false); strings.Join(c, "|") != "A|b| |c" {
		t.Errorf("chars %q", c)
	}
}

func TestVocabBuildOrderAndLimits(t *testing.T) {
	texts := []string{"the cat sat", "the dog sat", "The end"}
	v := buildVocab(t, "word", VocabConfig{Lowercase: true}, texts...)
	// specials, then by count: the(3) sat(2), then cat dog end (1, lexical).
	want := []string{PadToken, UnkToken, BOSToken, EOSToken, "the", "sat", "cat", "dog", "end"}
	if strings.Join(v.Tokens, " ") != strings.Join(want, " ") {
		t.Fatalf("tokens %v, want %v", v.Tokens, want)
	}
	ids, _ := v.Encode("The cat flew")
	if !equalInts(ids, []int{4, 6, 1}) {
		t.Errorf("encode %v", ids)
	}
	if s, _ := v.Decode([]int{2, 4, 6, 1, 3, 0}); s != "the cat <unk>" {
		t.Errorf("decode %q", s)
	}
	min2 := buildVocab(t, "word", VocabConfig{Lowercase: true, MinFreq: 2}, texts...)
	if len(min2.Tokens) != 6 {
		t.Errorf("min_freq 2: %v", min2.Tokens)
	}
	capped := buildVocab(t, "word", VocabConfig{Lowercase: true, MaxSize: 5}, texts...)
	if len(capped.Tokens) != 5 || capped.Tokens[4] != "the" {
		t.Errorf("max_size 5: %v", capped.Tokens)
	}
	// A literal "<pad>" in the data is not a special token.
	sp := buildVocab(t, "word", VocabConfig{}, "<pad>")
	if ids, _ := sp.Encode("<pad>"); ids[0] == 0 {
		t.Errorf("text <pad> encoded as the pad id: %v (vocab %v)", ids, sp.Tokens)
	}
	chars := buildVocab(t, "char", VocabConfig{}, "abba")
	if strings.Join(chars.Tokens[4:], "") != "ab" {
		t.Errorf("char vocab %v", chars.Tokens)
	}
	if _, err := NewVocabBuilder("bpe", VocabConfig{}); err == nil {
		t.Error("level bpe: no error")
	}
}

func TestVocabJSONRoundTrip(t *testing.T) {
	v := buildVocab(t, "word", VocabConfig{Lowercase: true}, "b a b c")
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var w Vocab
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	x, _ := v.Encode("A B C D")
	y, _ := w.Encode("A B C D")
	if !equalInts(x, y) || w.VocabSize() != v.VocabSize() || !w.Lowercase {
		t.Errorf("after JSON: %v vs %v", y, x)
	}
	for _, bad := range []string{
		`{"level":"word","tokens":["a","b"]}`,
		`{"level":"word","tokens":["<pad>","<unk>","<bos>","<eos>","a","a"]}`,
		`{"level":"bpe","tokens":["<pad>","<unk>","<bos>","<eos>"]}`,
	} {
		if err := json.Unmarshal([]byte(bad), &w); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
