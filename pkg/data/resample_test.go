package data

import (
	"fmt"
	"math"
	"testing"
)

// toneAmplitude is the amplitude of the f-Hz component of x (least-squares
// projection on sin and cos over whole samples lo..hi).
func toneAmplitude(x []float32, rate, f float64, lo, hi int) float64 {
	var ss, sc, cc, ys, yc float64
	for n := lo; n < hi; n++ {
		w := 2 * math.Pi * f * float64(n) / rate
		s, c := math.Sin(w), math.Cos(w)
		ss += s * s
		cc += c * c
		sc += s * c
		ys += float64(x[n]) * s
		yc += float64(x[n]) * c
	}
	det := ss*cc - sc*sc
	a := (ys*cc - yc*sc) / det
	b := (yc*ss - ys*sc) / det
	return math.Hypot(a, b)
}

// peakFrequency finds the frequency in [lo,hi] Hz (step 0.1 Hz) with the
// largest projection.
func peakFrequency(x []float32, rate, lo, hi float64, n0, n1 int) float64 {
	best, bestF := -1.0, 0.0
	for f := lo; f <= hi; f += 0.1 {
		if a := toneAmplitude(x, rate, f, n0, n1); a > best {
			best, bestF = a, f
		}
	}
	return bestF
}

func sine(n int, rate, f, amp float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(amp * math.Sin(2*math.Pi*f*float64(i)/rate))
	}
	return x
}

func rms(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

func TestResampleSineSurvives(t *testing.T) {
	cases := []struct {
		name    string
		x       []float32
		in, out int
		f, amp  float64
		ampTol  float64
		freqTol float64
	}{
		// The real sox-made 440 Hz fixture (amplitude 0.5, table-based synth ≈1e-3 accurate).
		{"sox 440 Hz 22050→16000", decodeFixtureWAV(t, "sine440_22k.wav").Channels[0], 22050, 16000, 440, 0.5, 2e-3, 0.2},
		{"1 kHz 8000→16000", sine(4000, 8000, 1000, 0.8), 8000, 16000, 1000, 0.8, 1e-3, 0.2},
		{"3 kHz 8000→16000", sine(4000, 8000, 3000, 0.3), 8000, 16000, 3000, 0.3, 1e-3, 0.2},
		{"5 kHz 44100→16000", sine(8820, 44100, 5000, 0.5), 44100, 16000, 5000, 0.5, 1e-3, 0.2},
		{"440 Hz 16000→48000", sine(3200, 16000, 440, 0.5), 16000, 48000, 440, 0.5, 1e-3, 0.2},
	}
	for _, tc := range cases {
		y, err := Resample(tc.x, tc.in, tc.out)
		if err != nil {
			t.Fatal(err)
		}
		wantLen := int(math.Ceil(float64(len(tc.x)) * float64(tc.out) / float64(tc.in)))
		if len(y) != wantLen {
			t.Errorf("%s: %d samples, want %d", tc.name, len(y), wantLen)
		}
		// Skip the filter's edge region (zeros outside the signal).
		lo, hi := len(y)/8, len(y)-len(y)/8
		near(t, tc.name+" amplitude", toneAmplitude(y, float64(tc.out), tc.f, lo, hi), tc.amp, tc.ampTol)
		near(t, tc.name+" frequency", peakFrequency(y, float64(tc.out), tc.f-5, tc.f+5, lo, hi), tc.f, tc.freqTol)
		// Phase: the output at time n/out equals the input signal at that time.
		for _, n := range []int{lo, (lo + hi) / 2} {
			want := tc.amp * math.Sin(2*math.Pi*tc.f*float64(n)/float64(tc.out))
			near(t, fmt.Sprintf("%s y[%d]", tc.name, n), float64(y[n]), want, tc.ampTol*3)
		}
	}
}

func TestResampleRejectsAboveNyquist(t *testing.T) {
	// 10 kHz is above 16 kHz's Nyquist (8 kHz): nearest-neighbour or linear
	// interpolation would fold it to a loud 6 kHz alias. The windowed sinc must
	// remove it (> 60 dB down).
	x := sine(11025, 22050, 10000, 0.5)
	y, err := Resample(x, 22050, 16000)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := len(y)/8, len(y)-len(y)/8
	alias := toneAmplitude(y, 16000, 6000, lo, hi)
	level := rms(y[lo:hi]) / rms(x)
	t.Logf("10 kHz through 22050→16000: residual %.1f dB, 6 kHz alias amplitude %.2g", 20*math.Log10(level), alias)
	if level > 1e-3 || alias > 5e-4 {
		t.Errorf("tone above the new Nyquist kept at %.1f dB (alias %.2g), want < -60 dB", 20*math.Log10(level), alias)
	}
	// Upsampling must not create an image: 1 kHz at 8 kHz → 16 kHz has no 7 kHz.
	up, _ := Resample(sine(4000, 8000, 1000, 0.8), 8000, 16000)
	lo, hi = len(up)/8, len(up)-len(up)/8
	if img := toneAmplitude(up, 16000, 7000, lo, hi); img > 1e-3*0.8 {
		t.Errorf("8k→16k image at 7 kHz: amplitude %.2g, want < -60 dB", img)
	}
}

func TestResampleMatchesSox(t *testing.T) {
	// References made by sox's very-high-quality rate effect at fixture time.
	for _, tc := range []struct{ in, ref string }{
		{"speech22k.wav", "ref_speech22k_to16k_sox.wav"},
		{"speech8k.wav", "ref_speech8k_to16k_sox.wav"},
	} {
		w := decodeFixtureWAV(t, tc.in)
		ref := decodeFixtureWAV(t, tc.ref)
		y, err := Resample(w.Channels[0], w.Rate, 16000)
		if err != nil {
			t.Fatal(err)
		}
		want := ref.Channels[0]
		if ref.Rate != 16000 || len(y) != len(want) {
			t.Fatalf("%s: %d samples, sox %d at %d Hz", tc.in, len(y), len(want), ref.Rate)
		}
		var e2 float64
		maxErr := 0.0
		for i := range y {
			d := float64(y[i] - want[i])
			e2 += d * d
			maxErr = math.Max(maxErr, math.Abs(d))
		}
		rel := math.Sqrt(e2/float64(len(y))) / rms(want)
		t.Logf("%s → 16 kHz vs sox: relative RMS error %.2g, max abs %.2g", tc.in, rel, maxErr)
		if rel > 0.01 {
			t.Errorf("%s: relative RMS error vs sox %.3g, want < 1%%", tc.in, rel)
		}
		// The first samples, one by one, to 1 % of the signal's peak.
		sliceNear(t, tc.in+" first samples", y[:32], want[:32], 0.01*peak(want))
	}
}

func peak(x []float32) float64 {
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

func TestResamplerDCAndIdentity(t *testing.T) {
	x := make([]float32, 2000)
	for i := range x {
		x[i] = 0.25
	}
	for _, rates := range [][2]int{{22050, 16000}, {8000, 16000}, {44100, 16001}, {48000, 16000}} {
		r, err := NewResampler(rates[0], rates[1], ResampleConfig{})
		if err != nil {
			t.Fatal(err)
		}
		y := r.Process(x)
		for i := len(y) / 4; i < 3*len(y)/4; i++ {
			near(t, fmt.Sprintf("%v DC", rates), float64(y[i]), 0.25, 1e-6)
		}
	}
	same, _ := Resample(x[:10], 16000, 16000)
	sliceNear(t, "identity", same, x[:10], 0)
	for _, bad := range []ResampleConfig{{ZeroCrossings: -1}, {Rolloff: 1.5}, {KaiserBeta: -2}} {
		if _, err := NewResampler(8000, 16000, bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if _, err := NewResampler(0, 16000, ResampleConfig{}); err == nil {
		t.Error("rate 0: no error")
	}
}
