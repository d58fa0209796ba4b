package data

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// wordnetNouns is a WordNet 3.0 data.noun file held in memory. A synset's
// offset is the byte offset of its line in the file, so lookups are direct.
type wordnetNouns struct {
	path string
	data []byte
}

// synset is one parsed data.noun record.
type synset struct {
	offset   int
	lexFile  int      // lexicographer file number (6 = noun.artifact)
	words    []string // lemmas, underscores kept
	hyponyms []int    // offsets of direct (and instance) hyponyms
	gloss    string   // definition, without the quoted examples
}

// synset parses the record at offset. Layout (wndb(5WN)): "offset lex_filenum
// ss_type w_cnt word lex_id ... p_cnt [ptr_symbol offset pos source/target]...
// | gloss", with w_cnt in hex and p_cnt in decimal.
func (w *wordnetNouns) synset(offset int) (synset, error) {
	bad := func(why string) (synset, error) {
		return synset{}, fmt.Errorf("%s: synset %08d: %s (is this WordNet 3.0's data.noun?)", w.path, offset, why)
	}
	if offset < 0 || offset >= len(w.data) || (offset > 0 && w.data[offset-1] != '\n') {
		return bad("offset is not the start of a line")
	}
	line := w.data[offset:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	head, gloss, ok := strings.Cut(string(line), " | ")
	if !ok {
		return bad("no gloss")
	}
	f := strings.Fields(head)
	if len(f) < 4 || f[0] != fmt.Sprintf("%08d", offset) || f[2] != "n" {
		return bad("line does not start with this offset and part of speech n")
	}
	s := synset{offset: offset}
	var err error
	if s.lexFile, err = strconv.Atoi(f[1]); err != nil {
		return bad("bad lex_filenum")
	}
	wc, err := strconv.ParseInt(f[3], 16, 32)
	if err != nil || wc < 1 || len(f) < 5+2*int(wc) {
		return bad("bad word count")
	}
	for i := range int(wc) {
		s.words = append(s.words, f[4+2*i])
	}
	p := 4 + 2*int(wc)
	pc, err := strconv.Atoi(f[p])
	if err != nil || len(f) < p+1+4*pc {
		return bad("bad pointer count")
	}
	for i := range pc {
		sym, off, pos := f[p+1+4*i], f[p+2+4*i], f[p+3+4*i]
		if (sym == "~" || sym == "~i") && pos == "n" {
			o, err := strconv.Atoi(off)
			if err != nil {
				return bad("bad pointer offset")
			}
			s.hyponyms = append(s.hyponyms, o)
		}
	}
	def, _, _ := strings.Cut(strings.TrimSpace(gloss), `; "`)
	s.gloss = strings.TrimSpace(def)
	return s, nil
}

// has reports whether the synset lists word (case-insensitive, spaces or
// underscores).
func (s synset) has(word string) bool {
	word = strings.ReplaceAll(word, " ", "_")
	for _, w := range s.words {
		if strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}

// describe renders the synset as text: "first lemma: definition", e.g.
// "raincoat: a water-resistant coat".
func (s synset) describe() string {
	return strings.ReplaceAll(s.words[0], "_", " ") + ": " + s.gloss
}
