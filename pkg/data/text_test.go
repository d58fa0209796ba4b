package data

import (
	"strings"
	"sync"
	"testing"
)

var (
	gpt2Once sync.Once
	gpt2Tok  *BPETokenizer
	gpt2Err  error
)

// sharedGPT2 builds the tokenizer once per test binary (parsing 50k ranks).
func sharedGPT2(t testing.TB) *BPETokenizer {
	t.Helper()
	gpt2Once.Do(func() { gpt2Tok, gpt2Err = NewGPT2Tokenizer() })
	if gpt2Err != nil {
		t.Fatal(gpt2Err)
	}
	return gpt2Tok
}

func TestGPT2TokenizerOffline(t *testing.T) {
	// Any network access would fail: proxies point at a closed port and the
	// tiktoken cache is empty. The offline loader must not need either.
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("TIKTOKEN_CACHE_DIR", t.TempDir())
	tok, err := NewGPT2Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	// Reference ids from OpenAI's GPT-2 / tiktoken r50k_base.
	cases := []struct {
		text string
		want []int
	}{
		{"Hello world", []int{15496, 995}},
		{"Hello, world!", []int{15496, 11, 995, 0}},
		{" the", []int{262}},
		// Text that spells the special token is ordinary text, never id 50256.
		{"<|endoftext|>", []int{27, 91, 437, 1659, 5239, 91, 29}},
	}
	for _, tc := range cases {
		got, err := tok.Encode(tc.text)
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(got, tc.want) {
			t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
	if tok.VocabSize() != 50257 || tok.Specials().Pad != 50256 || tok.Specials().Unk != -1 {
		t.Errorf("vocab %d specials %+v", tok.VocabSize(), tok.Specials())
	}
}

func TestGPT2RoundTripAndErrors(t *testing.T) {
	tok := sharedGPT2(t)
	for _, s := range []string{"naïve café — 東京 🚀", "  spaces\tand\nnewlines  ", "x"} {
		ids, err := tok.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := tok.Decode(ids)
		if err != nil || back != s {
			t.Errorf("round trip %q → %v → %q (%v)", s, ids, back, err)
		}
	}
	if _, err := tok.Encode("bad \xff utf8"); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8: %v", err)
	}
	if _, err := tok.Encode(strings.Repeat("ab", 2049)); err == nil || !strings.Contains(err.Error(), "4096") {
		t.Errorf("4098-byte word: %v", err)
	}
	// "word" + 1999 × " word" + the trailing space
	if ids, err := tok.Encode(strings.Repeat("word ", 2000)); err != nil || len(ids) != 2001 {
		t.Errorf("long text of short words: %d ids, %v", len(ids), err)
	}
	if _, err := tok.Decode([]int{50257}); err == nil {
		t.Error("id 50257: no error")
	}
}

func TestEncodeTextPadTruncate(t *testing.T) {
	v := buildVocab(t, "word", VocabConfig{}, "a b c d e")
	ids := func(text string, cfg TextConfig) []int {
		t.Helper()
		out, _, err := EncodeText(v, text, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b, c := vid(t, v, "a"), vid(t, v, "b"), vid(t, v, "c")
	cases := []struct {
		name string
		cfg  TextConfig
		text string
		want []int
	}{
		{"natural", TextConfig{}, "a b", []int{a, b}},
		{"pad", TextConfig{Length: 5}, "a b", []int{a, b, 0, 0, 0}},
		{"bos eos pad", TextConfig{Length: 5, AddBOS: true, AddEOS: true}, "a b", []int{2, a, b, 3, 0}},
		{"truncate keeps eos", TextConfig{Length: 4, AddBOS: true, AddEOS: true}, "a b c a b", []int{2, a, b, 3}},
		{"truncate", TextConfig{Length: 2}, "a b c", []int{a, b}},
		{"unknown", TextConfig{Length: 3}, "a zebra c", []int{a, 1, c}},
	}
	for _, tc := range cases {
		if got := ids(tc.text, tc.cfg); !equalInts(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	_, n, _ := EncodeText(v, "a b", TextConfig{Length: 5, AddEOS: true})
	if n != 3 {
		t.Errorf("real length %d, want 3", n)
	}
	if _, _, err := EncodeText(v, "  \t", TextConfig{}); err == nil || !strings.Contains(err.Error(), "empty text") {
		t.Errorf("empty text: %v", err)
	}
	if got, _, err := EncodeText(v, "", TextConfig{AllowEmpty: true, Length: 2}); err != nil || !equalInts(got, []int{0, 0}) {
		t.Errorf("allowed empty: %v %v", got, err)
	}
	// GPT-2: <|endoftext|> pads and wraps.
	g, _, err := EncodeText(sharedGPT2(t), "Hello world", TextConfig{Tokenizer: "gpt2", Length: 5, AddEOS: true})
	if err != nil || !equalInts(g, []int{15496, 995, 50256, 50256, 50256}) {
		t.Errorf("gpt2 padded: %v %v", g, err)
	}
	for _, bad := range []TextConfig{{Tokenizer: "bert"}, {Length: -1}, {Length: 2, AddBOS: true, AddEOS: true}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
