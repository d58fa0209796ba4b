package data

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// Special tokens of a built vocabulary, always ids 0..3 in this order.
const (
	PadToken = "<pad>"
	UnkToken = "<unk>"
	BOSToken = "<bos>"
	EOSToken = "<eos>"
)

// VocabConfig controls building a word or character vocabulary.
type VocabConfig struct {
	// Lowercase folds case before counting and encoding.
	Lowercase bool `json:"lowercase,omitempty"`
	// MinFreq drops tokens seen fewer times in the training split (they
	// encode as <unk>). 0 or 1 keeps everything.
	MinFreq int `json:"min_freq,omitempty"`
	// MaxSize caps the vocabulary size, special tokens included; the most
	// frequent tokens are kept. 0 means no cap.
	MaxSize int `json:"max_size,omitempty"`
}

// Validate checks the configuration.
func (c VocabConfig) Validate() error {
	if c.MinFreq < 0 {
		return fmt.Errorf("vocab min_freq %d must be >= 0", c.MinFreq)
	}
	if c.MaxSize != 0 && c.MaxSize < 5 {
		return fmt.Errorf("vocab max_size %d must be 0 or >= 5 (4 special tokens + 1)", c.MaxSize)
	}
	return nil
}

// Vocab is a word- or character-level vocabulary: ids 0..3 are <pad>,
// <unk>, <bos>, <eos>, then tokens by decreasing training frequency (ties in
// lexical order), so building is deterministic. It implements Tokenizer and
// round-trips through JSON (saved with the run's statistics).
type Vocab struct {
	Level     string   `json:"level"` // "word" or "char"
	Lowercase bool     `json:"lowercase,omitempty"`
	Tokens    []string `json:"tokens"`
	index     map[string]int
}

// VocabBuilder counts tokens of training texts.
type VocabBuilder struct {
	level  string
	cfg    VocabConfig
	counts map[string]int
}

// NewVocabBuilder starts a vocabulary of level "word" or "char".
func NewVocabBuilder(level string, cfg VocabConfig) (*VocabBuilder, error) {
	if level != "word" && level != "char" {
		return nil, fmt.Errorf("vocab level %q: want word or char", level)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &VocabBuilder{level: level, cfg: cfg, counts: map[string]int{}}, nil
}

// Add counts the tokens of one training text. Invalid UTF-8 is an error.
func (b *VocabBuilder) Add(text string) error {
	if err := validateText(text); err != nil {
		return err
	}
	for _, tok := range splitTokens(text, b.level, b.cfg.Lowercase) {
		b.counts[tok]++
	}
	return nil
}

// Build returns the vocabulary.
func (b *VocabBuilder) Build() *Vocab {
	type tc struct {
		tok string
		n   int
	}
	all := make([]tc, 0, len(b.counts))
	for tok, n := range b.counts {
		if n >= b.cfg.MinFreq && !isSpecial(tok) {
			all = append(all, tc{tok, n})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].tok < all[j].tok
	})
	v := &Vocab{Level: b.level, Lowercase: b.cfg.Lowercase, Tokens: []string{PadToken, UnkToken, BOSToken, EOSToken}}
	for _, t := range all {
		if b.cfg.MaxSize > 0 && len(v.Tokens) >= b.cfg.MaxSize {
			break
		}
		v.Tokens = append(v.Tokens, t.tok)
	}
	v.reindex()
	return v
}

func isSpecial(tok string) bool {
	return tok == PadToken || tok == UnkToken || tok == BOSToken || tok == EOSToken
}

func (v *Vocab) reindex() {
	v.index = make(map[string]int, len(v.Tokens))
	for i, t := range v.Tokens {
		v.index[t] = i
	}
}

// UnmarshalJSON restores a saved vocabulary and checks its invariants.
func (v *Vocab) UnmarshalJSON(b []byte) error {
	type plain Vocab
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if p.Level != "word" && p.Level != "char" {
		return fmt.Errorf("vocab level %q: want word or char", p.Level)
	}
	if len(p.Tokens) < 4 || p.Tokens[0] != PadToken || p.Tokens[1] != UnkToken || p.Tokens[2] != BOSToken || p.Tokens[3] != EOSToken {
		return fmt.Errorf("vocab must start with %s %s %s %s", PadToken, UnkToken, BOSToken, EOSToken)
	}
	*v = Vocab(p)
	v.reindex()
	if len(v.index) != len(v.Tokens) {
		return fmt.Errorf("vocab has duplicate tokens")
	}
	return nil
}

// Encode implements Tokenizer; unknown tokens map to <unk> (id 1).
func (v *Vocab) Encode(text string) ([]int, error) {
	if err := validateText(text); err != nil {
		return nil, err
	}
	toks := splitTokens(text, v.Level, v.Lowercase)
	ids := make([]int, len(toks))
	for i, t := range toks {
		id, ok := v.index[t]
		if !ok || isSpecial(t) {
			id = 1
		}
		ids[i] = id
	}
	return ids, nil
}

// Decode implements Tokenizer: words joined by spaces, characters
// concatenated; special tokens dropped except <unk>.
func (v *Vocab) Decode(ids []int) (string, error) {
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		if id < 0 || id >= len(v.Tokens) {
			return "", fmt.Errorf("token id %d out of range [0,%d)", id, len(v.Tokens))
		}
		if id == 0 || id == 2 || id == 3 {
			continue
		}
		parts = append(parts, v.Tokens[id])
	}
	if v.Level == "char" {
		return strings.Join(parts, ""), nil
	}
	return strings.Join(parts, " "), nil
}

// VocabSize implements Tokenizer.
func (v *Vocab) VocabSize() int { return len(v.Tokens) }

// Specials implements Tokenizer.
func (v *Vocab) Specials() SpecialTokens { return SpecialTokens{Pad: 0, Unk: 1, BOS: 2, EOS: 3} }

// ID returns the id of a token and whether it is in the vocabulary.
func (v *Vocab) ID(tok string) (int, bool) {
	id, ok := v.index[tok]
	return id, ok
}

// splitTokens splits text into words or characters. Words are maximal runs
// of letters, digits and marks (an apostrophe or hyphen between two such
// characters stays inside the word: "don't", "x-ray"); every other
// non-space character is a token of its own; spaces separate. Characters are
// every rune, spaces included.
func splitTokens(text, level string, lower bool) []string {
	if lower {
		text = strings.ToLower(text)
	}
	if level == "char" {
		out := make([]string, 0, len(text))
		for _, r := range text {
			out = append(out, string(r))
		}
		return out
	}
	var out []string
	rs := []rune(text)
	wordy := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) }
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case wordy(r):
			j := i + 1
			for j < len(rs) && (wordy(rs[j]) || ((rs[j] == '\'' || rs[j] == '-') && j+1 < len(rs) && wordy(rs[j+1]))) {
				j++
			}
			out = append(out, string(rs[i:j]))
			i = j
		default:
			out = append(out, string(r))
			i++
		}
	}
	return out
}
