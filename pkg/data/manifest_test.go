package data

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// macroColumns types the fixture manifests testdata/data/manifest/macro.{csv,jsonl}.
func macroColumns() map[string]ColumnSpec {
	return map[string]ColumnSpec{
		"image":  {Kind: KindImage, Modality: "vision", Image: ImageConfig{Height: 8, Width: 8, Normalize: "dataset"}},
		"audio":  {Kind: KindAudio, Audio: AudioConfig{SampleRate: 16000, Length: 8000}},
		"text":   {Kind: KindText, Text: TextConfig{Length: 8, AddBOS: true, AddEOS: true, Vocab: VocabConfig{Lowercase: true}}},
		"sensor": {Kind: KindSensor, Sensor: SensorConfig{TimeColumn: "t", Normalize: "dataset", Length: 16}},
	}
}

func macroConfig(format string) ManifestConfig {
	return ManifestConfig{Path: fixture("manifest", "macro."+format), Columns: macroColumns(), LabelColumn: "label", Workers: 2}
}

func openManifest(t *testing.T, cfg ManifestConfig) *Manifest {
	t.Helper()
	m, err := OpenManifest(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var trainRows = []int{0, 1, 2, 3, 4, 5}

func TestManifestCSVAndJSONLAgree(t *testing.T) {
	var samples [2][]Sample
	for k, format := range []string{"csv", "jsonl"} {
		m := openManifest(t, macroConfig(format))
		if m.Len() != 8 || m.Summary().Skipped != 0 || m.Summary().Rows != 8 {
			t.Fatalf("%s: len %d summary %v", format, m.Len(), m.Summary())
		}
		stats, err := m.FitStats(trainRows)
		if err != nil {
			t.Fatal(err)
		}
		ds, err := m.Dataset(stats, DatasetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < ds.Len(); i++ {
			s, err := ds.Get(i)
			if err != nil {
				t.Fatalf("%s row %d: %v", format, i, err)
			}
			samples[k] = append(samples[k], s)
		}
	}
	for i := range samples[0] {
		a, b := samples[0][i], samples[1][i]
		for name, x := range a.Inputs {
			sliceNear(t, fmt.Sprintf("row %d %s", i, name), b.Inputs[name].Data, x.Data, 0)
		}
		if !equalInts(a.Tokens["text"], b.Tokens["text"]) || a.Label.Class != b.Label.Class {
			t.Errorf("row %d: csv %v/%d jsonl %v/%d", i, a.Tokens["text"], a.Label.Class, b.Tokens["text"], b.Label.Class)
		}
	}
}

func TestManifestStatsFromTrainingSplitOnly(t *testing.T) {
	m := openManifest(t, macroConfig("csv"))
	stats, err := m.FitStats(trainRows)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(stats.Categories, ",") != "high,low" || stats.TrainRows != 6 {
		t.Errorf("categories %v rows %d", stats.Categories, stats.TrainRows)
	}
	// Sensor moments: recompute over the six training files directly (float64).
	var rows [][]float32
	for _, i := range trainRows {
		x, err := LoadSensorCSV(fixture("sensor", fmt.Sprintf("macro_%02d.csv", i)), SensorConfig{TimeColumn: "t"})
		if err != nil {
			t.Fatal(err)
		}
		for r := 0; r < x.Shape[0]; r++ {
			rows = append(rows, x.Data[r*5:(r+1)*5])
		}
	}
	got := stats.Columns["sensor"].Moments
	for c := 0; c < 5; c++ {
		var mu, v float64
		for _, r := range rows {
			mu += float64(r[c]) / float64(len(rows))
		}
		for _, r := range rows {
			v += (float64(r[c]) - mu) * (float64(r[c]) - mu) / float64(len(rows))
		}
		near(t, fmt.Sprintf("sensor mean[%d]", c), got.Mean[c], mu, 1e-9*math.Max(1, math.Abs(mu)))
		near(t, fmt.Sprintf("sensor std[%d]", c), got.Std[c], math.Sqrt(v), 1e-9*math.Max(1, math.Sqrt(v)))
	}
	// The vocabulary holds training words only: "year" appears only in row 7.
	v := stats.Columns["text"].Vocab
	if _, ok := v.ID("quarter"); !ok {
		t.Error(`"quarter" (row 1) missing from the vocabulary`)
	}
	if _, ok := v.ID("year"); ok {
		t.Error(`"year" (validation row 7) leaked into the vocabulary`)
	}
	if img := stats.Columns["image"].Moments; img == nil || len(img.Mean) != 3 || img.Count[0] != 6*64 {
		t.Errorf("image moments %+v", img)
	}

	// Normalised sensor input of row 0 = (raw − mean)/std.
	ds, err := m.Dataset(stats, DatasetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ds.Get(0)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := LoadSensorCSV(fixture("sensor", "macro_00.csv"), SensorConfig{TimeColumn: "t"})
	x := s.Inputs["sensor"]
	// Samples are channels first, [C, T]: channel c of time step 0 sits at
	// c·16 (the file is time-major).
	shapeIs(t, "sensor", x.Shape, 5, 16)
	for c := 0; c < 5; c++ {
		want := (float64(raw.Data[c]) - got.Mean[c]) / got.Std[c]
		near(t, fmt.Sprintf("normalised sensor[%d,0]", c), float64(x.Data[c*16]), want, 1e-4)
	}
	shapeIs(t, "vision", s.Inputs["vision"].Shape, 3, 8, 8)
	shapeIs(t, "audio", s.Inputs["audio"].Shape, 8000)
	if s.Label.Class != 1 || !s.Present["vision"] || !s.Present["text"] || s.Index != 0 {
		t.Errorf("row 0 (label low): class %d present %v", s.Label.Class, s.Present)
	}
	// "GDP grew, jobs followed" → <bos> gdp grew , jobs followed <eos> <pad>
	ids := s.Tokens["text"]
	if len(ids) != 8 || ids[0] != 2 || ids[6] != 3 || ids[7] != 0 {
		t.Errorf("text ids %v", ids)
	}
	if back, _ := v.Decode(ids); back != "gdp grew , jobs followed" {
		t.Errorf("decoded %q", back)
	}
	// Validation row 7 "a quiet year": "year" is unknown.
	s7, _ := ds.Get(7)
	if s7.Tokens["text"][3] != 1 {
		t.Errorf("row 7 ids %v, want <unk> for year", s7.Tokens["text"])
	}
	// The whole dataset collates into one batch.
	var all []Sample
	for i := 0; i < ds.Len(); i++ {
		s, _ := ds.Get(i)
		all = append(all, s)
	}
	b, err := Collate(all)
	if err != nil {
		t.Fatal(err)
	}
	shapeIs(t, "batch vision", b.Inputs["vision"].Shape, 8, 3, 8, 8)
	if b.TokenLen["text"] != 8 || len(b.Classes) != 8 {
		t.Errorf("batch tokens %d classes %v", b.TokenLen["text"], b.Classes)
	}
}

func TestManifestStatsSaveLoadReproduces(t *testing.T) {
	m := openManifest(t, macroConfig("jsonl"))
	stats, err := m.FitStats(trainRows)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "data_stats.json")
	if err := stats.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadStats(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Dataset(stats, DatasetOptions{})
	b, err := m.Dataset(loaded, DatasetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		x, _ := a.Get(i)
		y, err := b.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		for name := range x.Inputs {
			sliceNear(t, name, y.Inputs[name].Data, x.Inputs[name].Data, 0)
		}
		if !equalInts(x.Tokens["text"], y.Tokens["text"]) || x.Label.Class != y.Label.Class {
			t.Errorf("row %d differs after reloading stats", i)
		}
	}
	if _, err := m.Dataset(nil, DatasetOptions{}); err == nil || !strings.Contains(err.Error(), "FitStats") {
		t.Errorf("dataset without stats: %v", err)
	}
}

func TestManifestRegressionAndTokenLabels(t *testing.T) {
	cols := map[string]ColumnSpec{"sensor": {Kind: KindSensor, Sensor: SensorConfig{TimeColumn: "t"}}}
	cfg := ManifestConfig{Path: fixture("manifest", "macro.csv"), Columns: cols, LabelColumn: "target", LabelKind: LabelNumber, NormalizeLabel: true}
	m := openManifest(t, cfg)
	stats, err := m.FitStats(trainRows)
	if err != nil {
		t.Fatal(err)
	}
	// targets of rows 0..5 (sensor/labels.txt): mean inflation of the next year
	tg := []float64{1.63, 4.585, 9.1675, 8.845, 4.2025, 4.385}
	var mu, v float64
	for _, x := range tg {
		mu += x / 6
	}
	for _, x := range tg {
		v += (x - mu) * (x - mu) / 6
	}
	near(t, "label mean", stats.Label.Mean[0], mu, 1e-6) // labels are float32
	ds, _ := m.Dataset(stats, DatasetOptions{})
	s, _ := ds.Get(0)
	if len(s.Label.Vector) != 1 || s.Label.Class != NoClass {
		t.Fatalf("label %+v", s.Label)
	}
	near(t, "normalised target", float64(s.Label.Vector[0]), (1.63-mu)/math.Sqrt(v), 1e-5)

	for _, format := range []string{"csv", "jsonl"} {
		cfg = ManifestConfig{Path: fixture("manifest", "macro."+format), Columns: cols, LabelColumn: "vector", LabelKind: LabelVector}
		m = openManifest(t, cfg)
		ds, err = m.Dataset(nil, DatasetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s, _ = ds.Get(3)
		sliceNear(t, format+" vector", s.Label.Vector, []float32{8.845, 3}, 1e-6)
	}

	cfg = ManifestConfig{Path: fixture("manifest", "macro.csv"), Columns: cols, LabelColumn: "text", LabelKind: LabelTokens,
		LabelText: TextConfig{Tokenizer: "gpt2", Length: 6, AddEOS: true}}
	m = openManifest(t, cfg)
	ds, err = m.Dataset(nil, DatasetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ = ds.Get(1) // "a quiet quarter"
	want, _ := sharedGPT2(t).Encode("a quiet quarter")
	want = append(want, 50256)
	for len(want) < 6 {
		want = append(want, 50256)
	}
	if !equalInts(s.Label.Tokens, want) {
		t.Errorf("token label %v, want %v", s.Label.Tokens, want)
	}
}

func TestManifestAugmentationIsSeeded(t *testing.T) {
	cols := map[string]ColumnSpec{
		"image": {Kind: KindImage, Image: ImageConfig{Height: 16, Width: 16, Augment: ImageAugment{CropHeight: 12, CropWidth: 12, FlipHorizontal: true}}},
		"audio": {Kind: KindAudio, Audio: AudioConfig{SampleRate: 8000, Length: 3000, AddNoise: true, NoiseSNR: 10}},
	}
	m := openManifest(t, ManifestConfig{Path: fixture("manifest", "macro.csv"), Columns: cols})
	train, err := m.Dataset(nil, DatasetOptions{Augment: true, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	eval, _ := m.Dataset(nil, DatasetOptions{})
	a, _ := train.GetEpoch(1, 0)
	b, _ := train.GetEpoch(1, 0)
	c, _ := train.GetEpoch(1, 1)
	e, _ := eval.GetEpoch(1, 0)
	g, _ := eval.Get(1)
	shapeIs(t, "cropped", a.Inputs["image"].Shape, 3, 12, 12)
	shapeIs(t, "centre crop", e.Inputs["image"].Shape, 3, 12, 12)
	for _, name := range []string{"image", "audio"} {
		sliceNear(t, name+" same epoch", b.Inputs[name].Data, a.Inputs[name].Data, 0)
		sliceNear(t, name+" eval is deterministic", g.Inputs[name].Data, e.Inputs[name].Data, 0)
		if differ(a.Inputs[name].Data, c.Inputs[name].Data) == 0 {
			t.Errorf("%s: epochs 0 and 1 got the same augmentation", name)
		}
		if differ(a.Inputs[name].Data, e.Inputs[name].Data) == 0 {
			t.Errorf("%s: training sample equals the evaluation sample", name)
		}
	}
	// Unlabelled manifest: Class is NoClass.
	if a.Label.Class != NoClass {
		t.Errorf("class %d without a label column", a.Label.Class)
	}
}

func differ(a, b []float32) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// writeManifest writes a manifest into a temp dir; {{fx}} expands to the
// absolute fixture directory.
func writeManifest(t *testing.T, name, content string) string {
	t.Helper()
	fx, _ := filepath.Abs(fixture())
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "{{fx}}", filepath.ToSlash(fx))), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestManifestBadRows(t *testing.T) {
	imgCols := map[string]ColumnSpec{"image": {Kind: KindImage, Image: ImageConfig{Height: 4, Width: 4}}}
	csv := "image,label\n" +
		"{{fx}}/image/rgb4x3.png,cat\n" + // line 2 ok
		"{{fx}}/image/nope.png,dog\n" + // line 3 missing file
		"{{fx}}/audio/speech8k.wav,dog\n" + // line 4 not an image
		",cat\n" + // line 5 empty required cell
		"{{fx}}/image/gray4x3.png,\n" + // line 6 empty label
		"{{fx}}/image/rose.png,cat,extra\n" + // line 7 ragged
		"\"{{fx}}/image/rose.png,dog\n" // line 8 unterminated quote
	cases := []struct {
		line   int
		column string
		want   string
	}{
		{3, "image", "nope.png"}, {4, "image", "not a PNG, JPEG or GIF"}, {5, "image", "empty value"},
		{6, "label", "empty label"}, {7, "", "3 fields, header has 2"}, {8, "", "malformed CSV"},
	}
	path := writeManifest(t, "m.csv", csv)
	cfg := ManifestConfig{Path: path, Columns: imgCols, LabelColumn: "label"}

	// fail: opening reports the first bad line that needs no decoding (5)...
	_, err := OpenManifest(cfg)
	var ie *InputError
	if !errors.As(err, &ie) || ie.File != path || ie.Row != 5 || ie.Column != "image" {
		t.Fatalf("fail mode open: %v", err)
	}
	// skip: every bad row is dropped, counted and explained.
	cfg.OnError = "skip"
	m := openManifest(t, cfg)
	sum := m.Summary()
	if sum.Rows != 7 || sum.Kept != 1 || sum.Skipped != 6 || len(sum.Errors) != 6 {
		t.Fatalf("summary %v", sum)
	}
	for k, tc := range cases {
		err := sum.Errors[k]
		if !errors.As(err, &ie) || ie.Row != tc.line || ie.Column != tc.column || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("skipped row %d: %v; want line %d column %q mentioning %q", k, err, tc.line, tc.column, tc.want)
		}
	}
	if !strings.Contains(sum.String(), "7 rows: 1 kept, 6 skipped") {
		t.Errorf("summary string %q", sum)
	}

	// fail mode, decode errors surface at Get and name manifest, row, column, file.
	ok := writeManifest(t, "ok.csv", "image,label\n{{fx}}/image/rgb4x3.png,cat\n{{fx}}/image/nope.png,dog\n")
	m = openManifest(t, ManifestConfig{Path: ok, Columns: imgCols, LabelColumn: "label"})
	stats, _ := m.FitStats([]int{0}) // only "cat" in training
	ds, _ := m.Dataset(stats, DatasetOptions{})
	_, err = ds.Get(1)
	if !errors.As(err, &ie) || ie.Row != 3 || !strings.Contains(err.Error(), "nope.png") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Get of a missing file: %v", err)
	}
	if !strings.HasPrefix(err.Error(), ok+":3: column \"image\": ") {
		t.Errorf("message %q does not start with manifest:line: column", err)
	}
	// An unseen category in a non-training row is an error, not a wrong class.
	ok2 := writeManifest(t, "ok2.csv", "image,label\n{{fx}}/image/rgb4x3.png,cat\n{{fx}}/image/gray4x3.png,dog\n")
	m = openManifest(t, ManifestConfig{Path: ok2, Columns: imgCols, LabelColumn: "label"})
	stats, _ = m.FitStats([]int{0})
	ds, _ = m.Dataset(stats, DatasetOptions{})
	if _, err := ds.Get(1); err == nil || !strings.Contains(err.Error(), `unknown label "dog"`) || !strings.Contains(err.Error(), ":3:") {
		t.Errorf("unknown label: %v", err)
	}
	// Fixed label_classes reject unknown labels when opening.
	_, err = OpenManifest(ManifestConfig{Path: ok2, Columns: imgCols, LabelColumn: "label", LabelClasses: []string{"cat"}})
	if err == nil || !strings.Contains(err.Error(), `unknown label "dog"`) {
		t.Errorf("label_classes: %v", err)
	}
}

func TestManifestJSONLErrorsAndOptional(t *testing.T) {
	cols := map[string]ColumnSpec{
		"image": {Kind: KindImage, Optional: true, Image: ImageConfig{Height: 4, Width: 4, Channels: 1}},
		"text":  {Kind: KindText, Optional: true, Text: TextConfig{Tokenizer: "gpt2", Length: 4}},
	}
	jsonl := `{"image": "{{fx}}/image/gray4x3.png", "text": "hi", "y": 1}
{"image": null, "text": "hello there", "y": 2}

{"text": null, "y": 3}
{"image": "{{fx}}/image/gray4x3.png", "y": [1, 2]}
{"image": 5, "y": 1}
not json
{"image": "{{fx}}/image/gray4x3.png"} trailing
[1, 2]
`
	path := writeManifest(t, "m.jsonl", jsonl)
	m := openManifest(t, ManifestConfig{Path: path, Columns: cols, LabelColumn: "y", LabelKind: LabelNumber, OnError: "skip"})
	sum := m.Summary()
	if sum.Kept != 3 || sum.Skipped != 5 {
		t.Fatalf("summary %v (%v)", sum, sum.Errors)
	}
	wantLines := []int{5, 6, 7, 8, 9} // vector for a number label, number for a path, bad JSON ×3
	for k, line := range wantLines {
		var ie *InputError
		if !errors.As(sum.Errors[k], &ie) || ie.Row != line {
			t.Errorf("error %d: %v, want line %d", k, sum.Errors[k], line)
		}
	}
	ds, err := m.Dataset(nil, DatasetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := ds.Get(1) // image null → absent, zeros
	if s1.Present["image"] || !s1.Present["text"] {
		t.Errorf("row 2 presence %v", s1.Present)
	}
	shapeIs(t, "absent image", s1.Inputs["image"].Shape, 1, 4, 4)
	sliceNear(t, "absent image", s1.Inputs["image"].Data, make([]float32, 16), 0)
	s2, _ := ds.Get(2) // line 4: image key missing, text null
	if s2.Present["image"] || s2.Present["text"] || !equalInts(s2.Tokens["text"], []int{50256, 50256, 50256, 50256}) {
		t.Errorf("line 4: presence %v tokens %v", s2.Present, s2.Tokens["text"])
	}
	if m.Line(2) != 4 {
		t.Errorf("Line(2) = %d, want 4", m.Line(2))
	}
	ys, err := m.Column("y")
	if err != nil || strings.Join(ys, ",") != "1,2,3" {
		t.Errorf("Column(y) = %v %v", ys, err)
	}
	if _, err := m.Column("nope"); err == nil {
		t.Error("Column(nope): no error")
	}
}

func TestManifestConfigErrors(t *testing.T) {
	good := func() ManifestConfig { return macroConfig("csv") }
	cases := []struct {
		name string
		edit func(*ManifestConfig)
		want string
	}{
		{"format", func(c *ManifestConfig) { c.Path = "x.tsv" }, "cannot tell the format"},
		{"no columns", func(c *ManifestConfig) { c.Columns = nil }, "no input columns"},
		{"kind", func(c *ManifestConfig) { c.Columns["x"] = ColumnSpec{Kind: "smell"} }, `column "x": kind "smell"`},
		{"label input", func(c *ManifestConfig) { c.LabelColumn = "image" }, "both an input and the label"},
		{"modality clash", func(c *ManifestConfig) { c.Columns["audio"] = ColumnSpec{Kind: KindAudio, Modality: "vision"} }, "both feed modality"},
		{"optional shape", func(c *ManifestConfig) { c.Columns["audio"] = ColumnSpec{Kind: KindAudio, Optional: true} }, "needs a fixed output shape (set length)"},
		{"on_error", func(c *ManifestConfig) { c.OnError = "ignore" }, "on_error"},
		{"label kind", func(c *ManifestConfig) { c.LabelKind = "ordinal" }, "label_kind"},
		{"token length", func(c *ManifestConfig) { c.LabelKind = LabelTokens }, "label_text.length"},
		{"from_file", func(c *ManifestConfig) { c.Columns["audio"] = ColumnSpec{Kind: KindAudio, FromFile: true} }, "from_file"},
		{"missing column", func(c *ManifestConfig) { c.Columns["depth"] = ColumnSpec{Kind: KindImage} }, `column "depth" not in header`},
	}
	for _, tc := range cases {
		cfg := good()
		tc.edit(&cfg)
		if _, err := OpenManifest(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := OpenManifest(ManifestConfig{Path: filepath.Join(t.TempDir(), "none.csv"), Columns: macroColumns()}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing manifest: %v", err)
	}
	empty := writeManifest(t, "e.csv", "image\n")
	if _, err := OpenManifest(ManifestConfig{Path: empty, Columns: map[string]ColumnSpec{"image": {Kind: KindImage}}}); err == nil || !strings.Contains(err.Error(), "no data rows") {
		t.Errorf("empty manifest: %v", err)
	}
}

func TestManifestTextFromFile(t *testing.T) {
	path := writeManifest(t, "t.csv", "doc,label\n{{fx}}/text/gloss0.txt,pet\n{{fx}}/text/gloss1.txt,tool\n")
	cols := map[string]ColumnSpec{"doc": {Kind: KindText, FromFile: true, Text: TextConfig{Tokenizer: "char", Length: 12}}}
	m := openManifest(t, ManifestConfig{Path: path, Columns: cols, LabelColumn: "label"})
	stats, err := m.FitStats([]int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := m.Dataset(stats, DatasetOptions{})
	s, err := ds.Get(0)
	if err != nil {
		t.Fatal(err)
	}
	v := stats.Columns["doc"].Vocab
	if back, _ := v.Decode(s.Tokens["doc"]); back != "a domestic a" {
		t.Errorf("decoded %q", back)
	}
}

// ManifestDataset plugs into the Loader, including seeded augmentation.
var _ EpochDataset = (*ManifestDataset)(nil)
