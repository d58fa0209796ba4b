package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWordNetSynsetParse(t *testing.T) {
	requireDebianData(t, filepath.Join(DefaultWordNetDir, "data.noun"), "wordnet-base")
	b, err := os.ReadFile(filepath.Join(DefaultWordNetDir, "data.noun"))
	if err != nil {
		t.Fatal(err)
	}
	wn := &wordnetNouns{path: "data.noun", data: b}
	s, err := wn.synset(3057021)
	if err != nil {
		t.Fatal(err)
	}
	// WordNet 3.0: coat.n.01 (noun.artifact, file 6) has 16 direct hyponyms,
	// from box coat to topper; its gloss has no quoted example to cut.
	if !s.has("coat") || s.lexFile != 6 || s.describe() != "coat: an outer garment that has sleeves and covers the body from shoulder down; worn outdoors" || len(s.hyponyms) != 16 {
		t.Fatalf("synset 03057021 = %+v (%q)", s, s.describe())
	}
	if _, err := wn.synset(3057022); err == nil || !strings.Contains(err.Error(), "not the start of a line") {
		t.Fatalf("offset inside a line: error %v", err)
	}
}

// FuzzWordNetSynset: any data.noun content and offset gives a synset or an
// error, never a panic.
func FuzzWordNetSynset(f *testing.F) {
	f.Add([]byte("03057021 06 n 01 coat 0 001 @ 03419014 n 0000 | an outer garment\n"), 0)
	f.Add([]byte("x\n00000002 06 n 7fffffff coat 0 | g\n"), 2)
	f.Add([]byte("00000000 06 n -1 003 | g\n"), 0)
	f.Add([]byte("00000000 06 n 00 000 | g\n"), 0)
	f.Add([]byte("00000000 06 n 01 a 0 -4 ~ | g"), 0)
	f.Fuzz(func(t *testing.T, data []byte, offset int) {
		wn := &wordnetNouns{path: "fuzz", data: data}
		if s, err := wn.synset(offset); err == nil && !strings.Contains(s.describe(), ": ") {
			t.Fatalf("synset %+v describes as %q", s, s.describe())
		}
	})
}
