package data

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"testing"
)

// TestSpokenWordsMatchesAVDigits checks that spokenWords draws and degrades
// a clip exactly as GenerateAVDigits does (same random draws in the same
// order, same processing), so the generators that share it speak like
// avdigits, and avdigits could use it without changing its files.
func TestSpokenWordsMatchesAVDigits(t *testing.T) {
	requireEspeak(t)
	cfg := DefaultAVDigitsConfig()
	cfg.Train, cfg.Test, cfg.Seed = 0, 3, 7
	cfg.Speech.SampleRate, cfg.Speech.MaxSeconds = 8000, 0.5
	dir := filepath.Join(t.TempDir(), "av")
	ctx := context.Background()
	res, err := GenerateAVDigits(ctx, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := newSpokenWords(ctx, cfg.Speech)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.close()
	mnistDir, err := DefaultMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	src := testSplitOf(t, mnistDir)["test"]
	for i, row := range readManifestCSV(t, res.Manifest) {
		idx, _ := strconv.Atoi(row["source_index"])
		r := rowRNG(cfg.Seed, "test", i)
		cfg.Image.apply(src.image(idx), 28, 28, r) // the image's draws come first
		clip, err := sw.speak(ctx, DigitWords[src.labels[idx]], r)
		if err != nil {
			t.Fatal(err)
		}
		cols := clip.columns()
		if cols[0] != row["voice"] || cols[1] != row["speed"] || cols[2] != row["pitch"] || cols[3] != row["snr_db"] {
			t.Fatalf("row %d: voice columns %v, avdigits wrote %v %v %v %v", i, cols, row["voice"], row["speed"], row["pitch"], row["snr_db"])
		}
		if !bytes.Equal(encodeWAV16(clip.wave, 8000), mustRead(t, filepath.Join(dir, row["audio"]))) {
			t.Fatalf("row %d: clip differs from avdigits' %s", i, row["audio"])
		}
	}
}
