package data

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pkoukk/tiktoken-go"
	tiktokenloader "github.com/pkoukk/tiktoken-go-loader"
)

// SpecialTokens are the ids of a tokenizer's special tokens; -1 when the
// tokenizer has no such token.
type SpecialTokens struct {
	Pad, Unk, BOS, EOS int
}

// Tokenizer maps text to token ids. Implementations are safe for concurrent
// use once built.
type Tokenizer interface {
	// Encode returns the ids of text without special tokens.
	Encode(text string) ([]int, error)
	// Decode maps ids back to text (special tokens dropped).
	Decode(ids []int) (string, error)
	// VocabSize is one more than the largest id Encode can return, including
	// the special tokens (the size of an embedding table).
	VocabSize() int
	// Specials returns the special token ids.
	Specials() SpecialTokens
}

// GPT-2 constants: the r50k_base encoding has 50257 ids, the last being
// <|endoftext|>, which GPT-2 also uses as BOS, EOS and padding.
const (
	gpt2Vocab      = 50257
	gpt2EndOfText  = 50256
	gpt2Pattern    = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	gpt2RanksAsset = "r50k_base.tiktoken"
)

// maxTextBytes bounds the length of one text so that a corrupt file cannot
// stall the tokenizer.
const maxTextBytes = 1 << 20

// BPETokenizer is GPT-2's byte-level BPE (tiktoken's r50k_base encoding),
// read from the ranks embedded by github.com/pkoukk/tiktoken-go-loader, so
// it never touches the network. Any valid UTF-8 text encodes (byte-level:
// there is no unknown token); text that merely spells "<|endoftext|>" is
// encoded as ordinary text, never as the special token.
type BPETokenizer struct {
	tk *tiktoken.Tiktoken
}

// NewGPT2Tokenizer builds the GPT-2 tokenizer offline. It parses ~50k ranks
// (tens of milliseconds): build one and share it.
func NewGPT2Tokenizer() (*BPETokenizer, error) {
	// The offline loader looks the asset up by base name; no URL is fetched.
	ranks, err := tiktokenloader.NewOfflineLoader().LoadTiktokenBpe(gpt2RanksAsset)
	if err != nil {
		return nil, fmt.Errorf("gpt2 tokenizer: load embedded ranks: %w", err)
	}
	if len(ranks) != gpt2EndOfText {
		return nil, fmt.Errorf("gpt2 tokenizer: embedded r50k_base has %d ranks, want %d", len(ranks), gpt2EndOfText)
	}
	special := map[string]int{"<|endoftext|>": gpt2EndOfText}
	core, err := tiktoken.NewCoreBPE(ranks, special, gpt2Pattern)
	if err != nil {
		return nil, fmt.Errorf("gpt2 tokenizer: %w", err)
	}
	enc := &tiktoken.Encoding{Name: "r50k_base", PatStr: gpt2Pattern, MergeableRanks: ranks, SpecialTokens: special, ExplicitNVocab: gpt2Vocab}
	return &BPETokenizer{tk: tiktoken.NewTiktoken(core, enc, map[string]any{"<|endoftext|>": true})}, nil
}

// maxBPEWord bounds a run of non-space bytes for the BPE tokenizer, whose
// merge loop is quadratic in the length of one word (64 KiB of letters
// takes seconds; 4 KiB takes milliseconds).
const maxBPEWord = 4096

// Encode implements Tokenizer. Invalid UTF-8 is an error (the tokenizer would
// otherwise replace it with U+FFFD, silently altering the text), and so is a
// single run of more than 4096 non-space bytes (a corrupt cell or an
// embedded blob), which would stall the tokenizer.
func (t *BPETokenizer) Encode(text string) ([]int, error) {
	if err := validateText(text); err != nil {
		return nil, err
	}
	run := 0
	for _, r := range text {
		if unicode.IsSpace(r) {
			run = 0
			continue
		}
		if run += utf8.RuneLen(r); run > maxBPEWord {
			return nil, fmt.Errorf("text has a run of more than %d bytes without a space; GPT-2 BPE is quadratic in word length", maxBPEWord)
		}
	}
	return t.tk.EncodeOrdinary(text), nil
}

// Decode implements Tokenizer.
func (t *BPETokenizer) Decode(ids []int) (string, error) {
	keep := make([]int, 0, len(ids))
	for _, id := range ids {
		if id < 0 || id >= gpt2Vocab {
			return "", fmt.Errorf("gpt2 token id %d out of range [0,%d)", id, gpt2Vocab)
		}
		if id != gpt2EndOfText {
			keep = append(keep, id)
		}
	}
	return t.tk.Decode(keep), nil
}

// VocabSize implements Tokenizer (50257).
func (t *BPETokenizer) VocabSize() int { return gpt2Vocab }

// Specials implements Tokenizer: <|endoftext|> serves as pad, BOS and EOS.
func (t *BPETokenizer) Specials() SpecialTokens {
	return SpecialTokens{Pad: gpt2EndOfText, Unk: -1, BOS: gpt2EndOfText, EOS: gpt2EndOfText}
}

func validateText(text string) error {
	if len(text) > maxTextBytes {
		return fmt.Errorf("text of %d bytes exceeds %d", len(text), maxTextBytes)
	}
	if !utf8.ValidString(text) {
		return errors.New("text is not valid UTF-8")
	}
	return nil
}

// TextConfig says how a text becomes a fixed-length id sequence.
type TextConfig struct {
	// Tokenizer: "gpt2" (byte-level BPE, offline), "word" or "char" (a
	// vocabulary built from the training split, see Vocab). Default "word".
	Tokenizer string `json:"tokenizer,omitempty"`
	// Length pads (with the pad id) or truncates every sequence to this many
	// ids, BOS/EOS included. 0 keeps the natural length.
	Length int `json:"length,omitempty"`
	// AddBOS and AddEOS wrap the ids in the begin/end tokens. Truncation keeps
	// the EOS token as the last id.
	AddBOS bool `json:"add_bos,omitempty"`
	AddEOS bool `json:"add_eos,omitempty"`
	// Vocab configures vocabulary building for "word" and "char".
	Vocab VocabConfig `json:"vocab,omitempty"`
	// AllowEmpty accepts empty (all-whitespace) texts; by default they are
	// an error, because an empty cell is more often a data bug than a sample.
	AllowEmpty bool `json:"allow_empty,omitempty"`
}

func (c TextConfig) tokenizer() string {
	if c.Tokenizer == "" {
		return "word"
	}
	return c.Tokenizer
}

// Validate checks the configuration.
func (c TextConfig) Validate() error {
	switch c.tokenizer() {
	case "gpt2", "word", "char":
	default:
		return fmt.Errorf("text tokenizer %q: want gpt2, word or char", c.Tokenizer)
	}
	if c.Length < 0 {
		return fmt.Errorf("text length %d must be >= 0", c.Length)
	}
	if c.Length > 0 && c.Length < boolInt(c.AddBOS)+boolInt(c.AddEOS)+1 {
		return fmt.Errorf("text length %d leaves no room for tokens between BOS/EOS", c.Length)
	}
	return c.Vocab.Validate()
}

// NeedsVocab reports whether the tokenizer is built from training data.
func (c TextConfig) NeedsVocab() bool { return c.tokenizer() != "gpt2" }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// EncodeText tokenizes text and applies BOS/EOS and pad/truncate per cfg.
// Truncation keeps the beginning. It also returns the number of ids before
// padding (the real length), which a model can use for masking.
func EncodeText(tok Tokenizer, text string, cfg TextConfig) (ids []int, n int, err error) {
	if !cfg.AllowEmpty && strings.TrimSpace(text) == "" {
		return nil, 0, errors.New("empty text")
	}
	body, err := tok.Encode(text)
	if err != nil {
		return nil, 0, err
	}
	sp := tok.Specials()
	if (cfg.AddBOS && sp.BOS < 0) || (cfg.AddEOS && sp.EOS < 0) || (cfg.Length > 0 && sp.Pad < 0) {
		return nil, 0, errors.New("tokenizer lacks the BOS/EOS/pad token the text config needs")
	}
	ids = make([]int, 0, len(body)+2)
	if cfg.AddBOS {
		ids = append(ids, sp.BOS)
	}
	ids = append(ids, body...)
	if cfg.Length > 0 && len(ids)+boolInt(cfg.AddEOS) > cfg.Length {
		ids = ids[:cfg.Length-boolInt(cfg.AddEOS)]
	}
	if cfg.AddEOS {
		ids = append(ids, sp.EOS)
	}
	n = len(ids)
	for cfg.Length > 0 && len(ids) < cfg.Length {
		ids = append(ids, sp.Pad)
	}
	return ids, n, nil
}
