package experiment

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(want) != math.IsNaN(got) || !math.IsNaN(want) && math.Abs(got-want) > tol {
		t.Errorf("%s = %v, want %v (±%g)", what, got, want, tol)
	}
}

func TestSummarizeAndMedian(t *testing.T) {
	// Deviations −0.1, 0, +0.1: Σ² = 0.02, /(3−1) = 0.01, std 0.1.
	s := Summarize([]float64{0.8, 1.0, 0.9})
	if s.N != 3 {
		t.Errorf("N = %d", s.N)
	}
	near(t, "mean", s.Mean, 0.9, 1e-12)
	near(t, "std", s.Std, 0.1, 1e-12)
	near(t, "min", s.Min, 0.8, 0)
	near(t, "max", s.Max, 1.0, 0)
	one := Summarize([]float64{0.5})
	near(t, "single std", one.Std, 0, 0)
	near(t, "single mean", one.Mean, 0.5, 0)
	none := Summarize(nil)
	if none.N != 0 || !math.IsNaN(none.Mean) || !math.IsNaN(none.Std) || !math.IsNaN(none.Min) {
		t.Errorf("empty summary %+v, want NaNs", none)
	}
	near(t, "odd median", Median([]float64{3, 1, 2}), 2, 0)
	near(t, "even median", Median([]float64{4, 1, 3, 2}), 2.5, 0)
	near(t, "empty median", Median(nil), math.NaN(), 0)
	in := []float64{3, 1, 2}
	Median(in)
	if !reflect.DeepEqual(in, []float64{3, 1, 2}) {
		t.Errorf("Median reordered its input: %v", in)
	}
}

func TestVariants(t *testing.T) {
	vs, err := Variants([]string{"text", "audio", "vision"}, map[string]float64{"text": 0.3, "vision": 0.1, "audio": 0})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
	}
	want := []string{"vision", "audio", "text", "early", "late", "hybrid", "hierarchical", NoDropout}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("variants %v, want %v", names, want)
	}
	// A single row trains its modality alone, through early fusion, without
	// the modality dropout that would blank its only input.
	if got := vs[2].TrainArgs(); !reflect.DeepEqual(got, []string{"--fusion-strategy", "early", "--modalities", "text", "--set", "model.modality_dropout.text=0"}) {
		t.Errorf("text alone args %q", got)
	}
	if got := vs[1].TrainArgs(); !reflect.DeepEqual(got, []string{"--fusion-strategy", "early", "--modalities", "audio"}) {
		t.Errorf("audio alone args %q", got)
	}
	if got := vs[6].TrainArgs(); !reflect.DeepEqual(got, []string{"--fusion-strategy", "hierarchical"}) || !vs[6].Ablate || vs[0].Ablate {
		t.Errorf("hierarchical args %q ablate %v; vision ablate %v", got, vs[6].Ablate, vs[0].Ablate)
	}
	off := vs[7]
	if !reflect.DeepEqual(off.Sets, []string{"model.modality_dropout.vision=0", "model.modality_dropout.text=0", "model.missing_embedding=false"}) || off.Strategy != "hybrid" {
		t.Errorf("dropout-off row %+v", off)
	}
	if DropoutSummary([]string{"text", "audio", "vision"}, map[string]float64{"text": 0.3, "vision": 0.1}) != "vision 0.1, text 0.3" {
		t.Errorf("dropout summary %q", DropoutSummary([]string{"text", "audio", "vision"}, map[string]float64{"text": 0.3, "vision": 0.1}))
	}

	for _, c := range []struct {
		mods    []string
		dropout map[string]float64
		want    string
	}{
		{[]string{"text"}, map[string]float64{"text": 0.3}, "at least two modalities"},
		{[]string{"text", "audio"}, nil, "needs model.modality_dropout rates"},
		{[]string{"text", "audio"}, map[string]float64{"video": 0.2}, "model.modality_dropout.video: no such modality"},
	} {
		if _, err := Variants(c.mods, c.dropout); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Variants(%v, %v) error %v, want %q", c.mods, c.dropout, err, c.want)
		}
	}
}

// fixture is a three-seed table with hand-picked numbers: early's median
// throughput is 100 samples/s, its median peak memory 100 MiB and its
// median training CPU time 100 s; hybrid's seed 3 failed and hierarchical
// has no successful run.
func fixture(t *testing.T) ([]Variant, []Run) {
	t.Helper()
	vs, err := Variants([]string{"vision", "audio", "text"}, map[string]float64{"text": 0.3})
	if err != nil {
		t.Fatal(err)
	}
	const mb = 1 << 20
	run := func(v string, seed int64, acc, sps float64, rssMB int64, abl map[string]float64) Run {
		// The training CPU time is 10000 samples / throughput.
		return Run{Variant: v, Seed: seed, Accuracy: acc, MacroF1: acc - 0.01, SamplesPerSec: sps, PeakRSS: rssMB * mb, Ablation: abl, TestN: 1000,
			TrainCPUSeconds: 1e4 / sps}
	}
	runs := []Run{
		run("vision", 1, 0.40, 300, 50, nil), run("vision", 2, 0.42, 310, 52, nil), run("vision", 3, 0.44, 290, 51, nil),
		run("audio", 1, 0.50, 300, 50, nil), run("audio", 2, 0.52, 300, 50, nil), run("audio", 3, 0.54, 300, 50, nil),
		run("text", 1, 0.80, 2000, 30, nil), run("text", 2, 0.82, 2000, 30, nil), run("text", 3, 0.84, 2000, 30, nil),
		run("early", 1, 0.85, 90, 110, map[string]float64{"text": 0.5}), run("early", 2, 0.86, 100, 100, map[string]float64{"text": 0.6}),
		run("early", 3, 0.87, 120, 90, map[string]float64{"text": 0.7}),
		run("late", 1, 0.88, 90, 120, nil), run("late", 2, 0.88, 90, 120, nil), run("late", 3, 0.88, 90, 120, nil),
		run("hybrid", 1, 0.90, 80, 130, map[string]float64{"text": 0.8}), run("hybrid", 2, 0.92, 60, 150, map[string]float64{"text": 0.7}),
		{Variant: "hybrid", Seed: 3, Err: "train: exit status 1: boom\nsecond line"},
		{Variant: "hierarchical", Seed: 1, Err: "eval: exit status 2"},
		run(NoDropout, 1, 0.89, 80, 130, map[string]float64{"text": 0.3}), run(NoDropout, 2, 0.89, 80, 130, map[string]float64{"text": 0.3}),
		run(NoDropout, 3, 0.89, 80, 130, map[string]float64{"text": 0.3}),
		run("unknown", 1, 1, 1, 1, nil),
	}
	return vs, runs
}

func TestAggregate(t *testing.T) {
	vs, runs := fixture(t)
	rows := Aggregate(vs, 3, runs)
	if len(rows) != len(vs) {
		t.Fatalf("%d rows for %d variants", len(rows), len(vs))
	}
	by := map[string]Row{}
	for _, r := range rows {
		by[r.Variant.Name] = r
	}
	early, hybrid, hier := by["early"], by["hybrid"], by["hierarchical"]
	near(t, "early accuracy mean", early.Accuracy.Mean, 0.86, 1e-12)
	near(t, "early accuracy std", early.Accuracy.Std, 0.01, 1e-12)
	near(t, "early macro-F1 mean", early.MacroF1.Mean, 0.85, 1e-12)
	near(t, "early samples/s (median of 90, 100, 120)", early.SamplesPerSec, 100, 0)
	near(t, "early speed", early.Speed, 1, 0)
	near(t, "early memory", early.Memory, 1, 0)
	near(t, "early CPU", early.CPU, 1, 0)
	near(t, "early CPU seconds (median of 111.1, 100, 83.3)", early.TrainCPU, 100, 0)
	near(t, "early ablation text (mean of 0.5, 0.6, 0.7)", early.Ablation["text"].Mean, 0.6, 1e-12)
	// The failed seed is missing from every aggregate: two runs remain.
	if hybrid.OK != 2 || hybrid.Seeds != 3 || len(hybrid.Failed) != 1 || hybrid.Failed[0].Seed != 3 {
		t.Errorf("hybrid ok %d/%d, failed %+v", hybrid.OK, hybrid.Seeds, hybrid.Failed)
	}
	near(t, "hybrid accuracy mean", hybrid.Accuracy.Mean, 0.91, 1e-12)
	near(t, "hybrid accuracy std (0.01·√2)", hybrid.Accuracy.Std, 0.01*math.Sqrt2, 1e-12)
	near(t, "hybrid speed (median 70 / 100)", hybrid.Speed, 0.7, 1e-12)
	near(t, "hybrid memory (median 140 MiB / 100 MiB)", hybrid.Memory, 1.4, 1e-12)
	near(t, "hybrid CPU (median of 125 s and 166.7 s / 100 s)", hybrid.CPU, (125+1e4/60)/2/100, 1e-12)
	near(t, "text speed", by["text"].Speed, 20, 1e-12)
	if hier.OK != 0 || !math.IsNaN(hier.Accuracy.Mean) || !math.IsNaN(hier.Speed) || !math.IsNaN(hier.Memory) || !math.IsNaN(hier.CPU) {
		t.Errorf("hierarchical without runs: %+v", hier)
	}

	// Without the baseline, ratios are unknown.
	var noEarly []Run
	for _, r := range runs {
		if r.Variant != Baseline {
			noEarly = append(noEarly, r)
		}
	}
	for _, r := range Aggregate(vs, 3, noEarly) {
		if !math.IsNaN(r.Speed) || !math.IsNaN(r.Memory) || !math.IsNaN(r.CPU) {
			t.Errorf("%s: speed %v memory %v without an early row", r.Variant.Name, r.Speed, r.Memory)
		}
	}
}

func TestMarkdown(t *testing.T) {
	vs, runs := fixture(t)
	rows := Aggregate(vs, 3, runs)
	md := Markdown(Report{Title: "T", Command: "lsfuse experiment table -c x.yaml", Settings: []string{"seeds 1, 2, 3"},
		Machine: "linux/amd64, 2 CPUs", Modalities: []string{"text", "audio", "vision"}, Rows: rows})
	lines := strings.Split(md, "\n")
	row := func(label string) string {
		t.Helper()
		for _, l := range lines {
			if strings.HasPrefix(l, "| "+label+" |") {
				return l
			}
		}
		t.Fatalf("no row %q in\n%s", label, md)
		return ""
	}
	for _, want := range []struct{ label, cells string }{
		{"vision alone", "| vision alone | 42.0 ± 2.0 | 40.0–44.0 | 41.0 ± 2.0 | 3.00x (300 samples/s) | 0.51x (51 MB) | 0.33x (33 s) | — | — | — | 3/3 |"},
		{"**early**", "| **early** | 86.0 ± 1.0 | 85.0–87.0 | 85.0 ± 1.0 | 1.00x (100 samples/s) | 1.00x (100 MB) | 1.00x (100 s) | — | — | 60.0 (-26.0) | 3/3 |"},
		{"hybrid (modality dropout on)", "| hybrid (modality dropout on) | 91.0 ± 1.4 | 90.0–92.0 | 90.0 ± 1.4 | 0.70x (70 samples/s) | 1.40x (140 MB) | 1.46x (146 s) | — | — | 75.0 (-16.0) | 2/3 |"},
		{"hierarchical", "| hierarchical | — | — | — | — | — | — | — | — | — | 0/3 |"},
		{"hybrid, modality dropout off", "| hybrid, modality dropout off | 89.0 ± 0.0 | 89.0–89.0 | 88.0 ± 0.0 | 0.80x (80 samples/s) | 1.30x (130 MB) | 1.25x (125 s) | — | — | 30.0 (-59.0) | 3/3 |"},
	} {
		if got := row(want.label); got != want.cells {
			t.Errorf("row %s:\n got %s\nwant %s", want.label, got, want.cells)
		}
	}
	if !strings.Contains(md, "| Run | Test accuracy % | range % | Macro-F1 % | Speed vs early | Peak memory vs early | Train CPU vs early | Without vision | Without audio | Without text | Runs |") {
		t.Errorf("header (ablation columns in table order):\n%s", md)
	}
	for _, want := range []string{
		"# T\n", "Reproduce with `lsfuse experiment table -c x.yaml`.", "- seeds 1, 2, 3\n", "- machine: linux/amd64, 2 CPUs\n",
		"mean ± sample standard deviation over the seeds",
		"Fusion beats the best single modality: hybrid (modality dropout on) reaches 91.0 ± 1.4% against 82.0 ± 2.0% for text alone (+9.0 points); 4 of 4 fused rows have a higher mean than text alone, 4 of them by more than the larger standard deviation.",
		"Measured order of the strategies by mean test accuracy: hybrid 91.0 > late 88.0 > early 86.0. Not every strategy has successful runs",
		"measured speed: late 0.90x (seed: 0.9x), hybrid 0.70x (seed: 0.8x); peak memory: late 1.20x (seed: 1.2x), hybrid 1.40x (seed: 1.3x); training CPU time: late 1.11x, hybrid 1.46x.",
		"Modality dropout: hybrid reaches 91.0 ± 1.4% with it and 89.0 ± 0.0% without (+2.0 points). With a modality removed at evaluation, with dropout against without: without text 75.0% against 30.0%.",
		"- hybrid seed 3: train: exit status 1: boom …\n", "- hierarchical seed 1: eval: exit status 2\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestVerdictsOrderAndNoFusionGain(t *testing.T) {
	mk := func(name, group string, mean, std float64) Row {
		return Row{Variant: Variant{Name: name, Label: name, Group: group}, Accuracy: Stat{N: 3, Mean: mean, Std: std}, SamplesPerSec: math.NaN()}
	}
	rows := []Row{mk("text", GroupSingle, 0.90, 0.01), mk("early", GroupFusion, 0.80, 0.01), mk("late", GroupFusion, 0.81, 0.01),
		mk("hybrid", GroupFusion, 0.85, 0.01), mk("hierarchical", GroupFusion, 0.88, 0.01)}
	v := strings.Join(Verdicts(rows, nil), "\n")
	for _, want := range []string{
		"Fusion does NOT beat the best single modality: text reaches 90.0 ± 1.0%; the best fused row, hierarchical, reaches 88.0 ± 1.0% (-2.0 points).",
		"hierarchical 88.0 > hybrid 85.0 > late 81.0 > early 80.0. It matches the seed's claim",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("verdicts lack %q:\n%s", want, v)
		}
	}
	// A fused row ahead of the best single one by less than the spread.
	v = strings.Join(Verdicts([]Row{rows[0], mk("late", GroupFusion, 0.905, 0.01), mk("early", GroupFusion, 0.95, 0.06)}, nil), "\n")
	if want := "(+5.0 points); 2 of 2 fused rows have a higher mean than text, 0 of them by more than the larger standard deviation. " +
		"The margin is smaller than the spread over seeds, so it is not established by these runs."; !strings.Contains(v, want) {
		t.Errorf("verdicts lack %q:\n%s", want, v)
	}
	// Swap hybrid above hierarchical by less than a standard deviation.
	rows[3].Accuracy.Mean = 0.885
	v = strings.Join(Verdicts(rows, nil), "\n")
	for _, want := range []string{"It DIFFERS from the seed's claim (hierarchical > hybrid > late > early).",
		"whose order these runs do not resolve: hybrid/hierarchical (0.5 points apart)"} {
		if !strings.Contains(v, want) {
			t.Errorf("verdicts lack %q:\n%s", want, v)
		}
	}
}

func TestReadEpochs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "metrics.jsonl")
	body := `{"type":"start","epochs":3}
{"type":"step","samples_per_sec":5}
{"type":"epoch","epoch":1,"train":{"n":630},"val":{"n":70},"samples_per_sec":200}
{"type":"epoch","epoch":2,"train":{"n":630},"val":{"n":70},"samples_per_sec":"NaN"}
{"type":"epoch","epoch":3,"train":{"n":630},"val":{"n":70},"samples_per_sec":100}
`
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := readEpochs(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e.rates, []float64{200, 100}) || e.trainN != 630 || e.valN != 70 {
		t.Errorf("epochs %+v", e)
	}
	if err := os.WriteFile(p, []byte(`{"type":"start"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readEpochs(p); err == nil || !strings.Contains(err.Error(), "no epoch lines") {
		t.Errorf("no epochs: %v", err)
	}
	var tb tailBuffer
	tb.Write([]byte("epoch 1/2\nlsfuse: data.train: manifest x.csv does not exist\n"))
	if got := tb.lastError(); got != "data.train: manifest x.csv does not exist" {
		t.Errorf("lastError %q", got)
	}
}
