package data

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// committedAVDigits is the avdigits subset committed under testdata/ (made by
// `make testdata`, see mk/data.mk).
const committedAVDigits = "../../testdata/avdigits"

// openCommitted opens the manifest.csv of the committed subset in dir
// with cfg (its Path set here), checks that it has rows rows, and returns
// its dataset (statistics fitted on every row) and the CSV rows.
func openCommitted(t *testing.T, dir string, cfg ManifestConfig, rows int) (*ManifestDataset, []map[string]string) {
	t.Helper()
	cfg.Path = filepath.Join(dir, "manifest.csv")
	m, err := OpenManifest(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != rows {
		t.Fatalf("%s: %d rows, want %d", cfg.Path, m.Len(), rows)
	}
	stats, err := m.FitStats(rowIndices(m.Len()))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := m.Dataset(stats, DatasetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ds, readManifestCSV(t, cfg.Path)
}

// readManifestCSV returns a generated manifest's rows as column → value maps.
func readManifestCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for j, h := range recs[0] {
			row[h] = rec[j]
		}
		rows = append(rows, row)
	}
	return rows
}

// correlation is the normalised inner product of a and b over their common
// length (1 for identical shapes up to gain).
func correlation(a, b []float32) float64 {
	n := min(len(a), len(b))
	var ab, aa, bb float64
	for i := range n {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

func mnistForTest(t *testing.T) map[string]mnistSplit {
	t.Helper()
	dir, err := DefaultMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	train, err := readIDXPair(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
	if err != nil {
		t.Fatal(err)
	}
	test, err := readIDXPair(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]mnistSplit{"train": train, "test": test}
}

// TestGenerateAVDigitsPairsModalities generates a tiny avdigits set and checks
// that every row's image, audio and text carry its label, and that the files
// do not depend on the number of workers.
func TestGenerateAVDigitsPairsModalities(t *testing.T) {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng): skipping avdigits generation")
	}
	cfg := DefaultAVDigitsConfig()
	cfg.Train, cfg.Test, cfg.Seed = 12, 10, 3
	cfg.Image = ImageDegradation{} // images must equal their MNIST source
	cfg.Speech.AddNoise = false    // clean clips, comparable to a reference
	cfg.Text = TextCorruption{TypoProb: 0.4, ReplaceProb: 0.3}
	cfg.Workers = 2
	dir := filepath.Join(t.TempDir(), "av")
	ctx := context.Background()
	res, err := GenerateAVDigits(ctx, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 12 rows over 10 classes: digits 0 and 1 get two.
	if want := []int{2, 2, 1, 1, 1, 1, 1, 1, 1, 1}; !slices.Equal(res.Splits["train"], want) {
		t.Fatalf("train rows per class %v, want %v", res.Splits["train"], want)
	}
	rows := readManifestCSV(t, res.Manifest)
	if len(rows) != 22 {
		t.Fatalf("%d manifest rows, want 22", len(rows))
	}
	mnist := mnistForTest(t)
	synth, err := newSpeechSynth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer synth.close()
	kinds := map[string]int{}
	for i, row := range rows {
		label, _ := strconv.Atoi(row["label"])
		src, _ := strconv.Atoi(row["source_index"])
		split := mnist[row["split"]]

		// Image: the MNIST image at source_index, which has this label.
		if split.labels[src] != label {
			t.Fatalf("row %d: label %d but MNIST %s image %d is a %d", i, label, row["split"], src, split.labels[src])
		}
		img, err := LoadImage(filepath.Join(dir, row["image"]), ImageConfig{Channels: 1})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range split.image(src) {
			if got := math.Round(float64(img.Data[k]) * 255); got != float64(v) {
				t.Fatalf("row %d: pixel %d is %v/255, MNIST source has %v/255", i, k, got, v)
			}
		}

		// Audio: the label's word in the row's voice, not silent.
		b, err := os.ReadFile(filepath.Join(dir, row["audio"]))
		if err != nil {
			t.Fatal(err)
		}
		w, err := DecodeWAV(b)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		clip := w.Mono()
		if w.Rate != 16000 || w.Bits != 16 || len(w.Channels) != 1 || len(clip) > int(0.8*16000) || rms(clip) < 0.02 {
			t.Fatalf("row %d: %d Hz %d-bit %d channels, %d samples, rms %.4f; want 16 kHz 16-bit mono ≤ 12800 samples, audible",
				i, w.Rate, w.Bits, len(w.Channels), len(clip), rms(clip))
		}
		accent, variant, _ := strings.Cut(row["voice"], "+")
		speed, _ := strconv.Atoi(row["speed"])
		pitch, _ := strconv.Atoi(row["pitch"])
		reference := func(word string) []float32 {
			x, rate, err := synth.speak(ctx, accent, variant, speed, pitch, word)
			if err != nil {
				t.Fatal(err)
			}
			y, err := Resample(trimSilence(x, 0.01, rate/100), rate, 16000)
			if err != nil {
				t.Fatal(err)
			}
			return y
		}
		if c := correlation(clip, reference(DigitWords[label])); c < 0.999 {
			t.Fatalf("row %d: audio correlates %.4f with %q spoken by %s, want > 0.999", i, c, DigitWords[label], row["voice"])
		}
		if i < 4 { // the check can fail: another word in the same voice does not match
			if c := correlation(clip, reference(DigitWords[(label+1)%10])); c > 0.9 {
				t.Fatalf("row %d: audio of %q correlates %.4f with %q: the check cannot tell words apart", i, DigitWords[label], c, DigitWords[(label+1)%10])
			}
		}

		// Text: the word, a misspelling of it, or (recorded) another digit.
		text, kind := row["text"], row["text_noise"]
		kinds[kind]++
		switch kind {
		case textClean:
			if text != DigitWords[label] {
				t.Fatalf("row %d: clean text %q for digit %d", i, text, label)
			}
		case textTypo:
			if w := DigitWords[label]; text == w || len(text) < len(w)-2 || len(text) > len(w)+2 || strings.Trim(text, "abcdefghijklmnopqrstuvwxyz") != "" {
				t.Fatalf("row %d: typo text %q is not one or two letter edits of %q", i, text, w)
			}
		case textReplaced:
			if j := slices.Index(DigitWords, text); j < 0 || j == label {
				t.Fatalf("row %d: replaced text %q for digit %d", i, text, label)
			}
		default:
			t.Fatalf("row %d: text_noise %q", i, kind)
		}
	}
	if kinds[textClean] == 0 || kinds[textTypo] == 0 || kinds[textReplaced] == 0 {
		t.Fatalf("text noise kinds %v: want all three among 22 rows at these probabilities", kinds)
	}

	// One worker writes the same bytes.
	cfg.Workers = 1
	dir1 := filepath.Join(t.TempDir(), "av1")
	if _, err := GenerateAVDigits(ctx, dir1, cfg); err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		for _, f := range []string{row["image"], row["audio"]} {
			a, _ := os.ReadFile(filepath.Join(dir, f))
			b, _ := os.ReadFile(filepath.Join(dir1, f))
			if !bytes.Equal(a, b) {
				t.Fatalf("%s differs between 2 workers and 1", f)
			}
		}
	}
	for _, f := range []string{"manifest.csv", "metadata.json", "README.md"} {
		a, _ := os.ReadFile(filepath.Join(dir, f))
		b, _ := os.ReadFile(filepath.Join(dir1, f))
		if !bytes.Equal(a, b) {
			t.Fatalf("%s differs between 2 workers and 1", f)
		}
	}
}

func TestAVDigitsConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		edit func(*AVDigitsConfig)
		want string
	}{
		{func(c *AVDigitsConfig) { c.Train, c.Test = 0, 0 }, "not both 0"},
		{func(c *AVDigitsConfig) { c.Speech.SampleRate = 4000 }, "sample_rate 4000"},
		{func(c *AVDigitsConfig) { c.Speech.Accents = nil }, "accents is empty"},
		{func(c *AVDigitsConfig) { c.Speech.Variants = []string{"m1+f2"} }, `voice name "m1+f2"`},
		{func(c *AVDigitsConfig) { c.Speech.SpeedMin = 300; c.Speech.SpeedMax = 200 }, "speed range [300, 200]"},
		{func(c *AVDigitsConfig) { c.Speech.SNRMaxDB = math.Inf(1) }, "snr range [0, +Inf] dB"},
		{func(c *AVDigitsConfig) { c.Speech.SNRMinDB = math.NaN() }, "snr range [NaN, 15] dB"},
		{func(c *AVDigitsConfig) { c.Text.ReplaceProb = 2 }, "replace_prob 2"},
		{func(c *AVDigitsConfig) { c.Image.OcclusionMax = 30 }, "≤ 28"},
	} {
		cfg := DefaultAVDigitsConfig()
		tc.edit(&cfg)
		if _, err := GenerateAVDigits(context.Background(), t.TempDir(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

func TestGenerateAVDigitsWithoutEspeak(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no espeak-ng here
	cfg := DefaultAVDigitsConfig()
	cfg.Train, cfg.Test = 1, 0
	if _, err := GenerateAVDigits(context.Background(), t.TempDir(), cfg); err != ErrEspeakMissing || !strings.Contains(err.Error(), "apt-get install espeak-ng") {
		t.Fatalf("error %v, want ErrEspeakMissing naming the package", err)
	}
}

func TestUnknownVoiceVariantIsAnError(t *testing.T) {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
	}
	cfg := DefaultAVDigitsConfig()
	cfg.Train, cfg.Test = 1, 0
	cfg.Speech.Variants = []string{"m1", "nosuchvoice"}
	_, err := GenerateAVDigits(context.Background(), t.TempDir(), cfg)
	if err == nil || !strings.Contains(err.Error(), `no voice variant "nosuchvoice"`) {
		t.Fatalf("error %v, want one naming the unknown variant", err)
	}
}

// avdigitsManifest opens the committed subset through the manifest reader,
// as the quickstart config does.
func avdigitsManifest(t testing.TB) (*Manifest, Split) {
	t.Helper()
	m, err := OpenManifest(ManifestConfig{
		Path: filepath.Join(committedAVDigits, "manifest.csv"),
		Columns: map[string]ColumnSpec{
			"image": {Kind: KindImage, Image: ImageConfig{Channels: 1}},
			"audio": {Kind: KindAudio, Audio: AudioConfig{SampleRate: 8000, Length: 6400}},
			"text":  {Kind: KindText, Text: TextConfig{Tokenizer: "char", Length: 8}},
		},
		LabelColumn:  "label",
		LabelClasses: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
	})
	if err != nil {
		t.Fatal(err)
	}
	names, err := m.Column("split")
	if err != nil {
		t.Fatal(err)
	}
	split, err := SplitByName(names)
	if err != nil {
		t.Fatal(err)
	}
	return m, split
}

func TestCommittedAVDigits(t *testing.T) {
	var meta struct {
		Config  AVDigitsConfig `json:"config"`
		Summary struct {
			Rows map[string][]int `json:"rows_per_class"`
		} `json:"summary"`
	}
	b, err := os.ReadFile(filepath.Join(committedAVDigits, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Config.Train != 700 || meta.Config.Test != 200 || meta.Config.Speech.SampleRate != 8000 {
		t.Fatalf("metadata says %d train, %d test rows at %d Hz; the subset is 700 + 200 at 8000 Hz (mk/data.mk)",
			meta.Config.Train, meta.Config.Test, meta.Config.Speech.SampleRate)
	}

	m, split := avdigitsManifest(t)
	if m.Len() != 900 || len(split.Train) != 700 || len(split.Test) != 200 || len(split.Val) != 0 {
		t.Fatalf("%d rows (train %d, val %d, test %d), want 900 (700, 0, 200)", m.Len(), len(split.Train), len(split.Val), len(split.Test))
	}
	// Exact label balance: 70 per digit in train, 20 in test.
	rows := readManifestCSV(t, filepath.Join(committedAVDigits, "manifest.csv"))
	for name, part := range map[string][]int{"train": split.Train, "test": split.Test} {
		per := make([]int, 10)
		for _, i := range part {
			l, err := strconv.Atoi(rows[i]["label"])
			if err != nil || l < 0 || l > 9 {
				t.Fatalf("row %d: label %q", i, rows[i]["label"])
			}
			per[l]++
		}
		want := slices.Repeat([]int{len(part) / 10}, 10)
		if !slices.Equal(per, want) || !slices.Equal(meta.Summary.Rows[name], want) {
			t.Fatalf("%s: rows per digit %v (metadata %v), want %v", name, per, meta.Summary.Rows[name], want)
		}
	}

	// Every row decodes through the manifest pipeline, with its label.
	stats, err := m.FitStats(split.Train)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := m.Dataset(stats, DatasetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mnist := mnistForTest(t)
	var total int64
	for i, row := range rows {
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := strconv.Atoi(row["label"]); s.Label.Class != want {
			t.Fatalf("row %d: class %d, manifest label %d", i, s.Label.Class, want)
		}
		if img := s.Inputs["image"]; !slices.Equal(img.Shape, []int{1, 28, 28}) {
			t.Fatalf("row %d: image shape %v", i, img.Shape)
		}
		if a := s.Inputs["audio"]; !slices.Equal(a.Shape, []int{6400}) || rms(a.Data) < 0.01 {
			t.Fatalf("row %d: audio shape %v rms %.4f, want [6400] and audible", i, a.Shape, rms(a.Data))
		}
		if len(s.Tokens["text"]) != 8 {
			t.Fatalf("row %d: %d text ids, want 8", i, len(s.Tokens["text"]))
		}
		src, _ := strconv.Atoi(row["source_index"])
		if l, _ := strconv.Atoi(row["label"]); mnist[row["split"]].labels[src] != l {
			t.Fatalf("row %d: label %d but its MNIST source image is a %d", i, l, mnist[row["split"]].labels[src])
		}
		for _, f := range []string{row["image"], row["audio"]} {
			st, err := os.Stat(filepath.Join(committedAVDigits, f))
			if err != nil {
				t.Fatal(err)
			}
			total += st.Size()
		}
		w, err := os.ReadFile(filepath.Join(committedAVDigits, row["audio"]))
		if err != nil {
			t.Fatal(err)
		}
		if wav, err := DecodeWAV(w); err != nil || wav.Rate != 8000 || wav.Bits != 16 || len(wav.Channels) != 1 {
			t.Fatalf("row %d: %s: %v (rate %d, %d bits, %d channels), want 8 kHz 16-bit mono", i, row["audio"], err, wav.Rate, wav.Bits, len(wav.Channels))
		}
	}
	if total > 8<<20 {
		t.Fatalf("committed avdigits files hold %d bytes, over the 8 MiB budget", total)
	}
	t.Logf("committed avdigits: %d rows, %d bytes of images and audio", len(rows), total)
}

// BenchmarkLoaderAVDigits measures throughput (samples/s) of the committed
// subset through the manifest pipeline and the Loader: decoding with 1 and 2
// workers, and from a warm cache.
func BenchmarkLoaderAVDigits(b *testing.B) {
	m, split := avdigitsManifest(b)
	stats, err := m.FitStats(split.Train)
	if err != nil {
		b.Fatal(err)
	}
	ds, err := m.Dataset(stats, DatasetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		workers int
		cache   bool
	}{{"workers=1", 1, false}, {"workers=2", 2, false}, {"workers=1/cached", 1, true}} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := NewLoader(ds, LoaderConfig{BatchSize: 32, Shuffle: true, Workers: bc.workers, Prefetch: 2, Cache: bc.cache})
			if err != nil {
				b.Fatal(err)
			}
			if bc.cache { // fill the cache: later epochs only collate
				for _, err := range l.Epoch(context.Background(), -1, 0) {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			samples := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for batch, err := range l.Epoch(context.Background(), i, 0) {
					if err != nil {
						b.Fatal(err)
					}
					samples += batch.Size
				}
			}
			b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
