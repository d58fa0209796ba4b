package modality_test

import (
	"math"
	"reflect"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/modality"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/nn/nntest"
)

func TestMelScale(t *testing.T) {
	// HTK: 1000 Hz ↦ 2595·log10(1 + 1000/700) = 999.9855 mel (the scale is
	// built so that 1 kHz ≈ 1000 mel).
	if got := modality.HzToMel(1000); math.Abs(got-999.98553) > 1e-4 {
		t.Errorf("HzToMel(1000) = %v, want 999.98553", got)
	}
	for _, f := range []float64{0, 55, 440, 3999.5, 22050} {
		if got := modality.MelToHz(modality.HzToMel(f)); math.Abs(got-f) > 1e-9*(1+f) {
			t.Errorf("MelToHz(HzToMel(%v)) = %v", f, got)
		}
	}
}

func TestMelFilterbankHandComputed(t *testing.T) {
	// sr 8000, n_fft 8: 5 bins at 0, 1000, 2000, 3000, 4000 Hz. Two HTK
	// filters over [0, 4000] Hz: mel(4000) = 2595·log10(1+4000/700) =
	// 2146.0645, edges at 0, 715.35, 1430.71, 2146.06 mel = 0, 620.580,
	// 1791.330, 4000 Hz. Filter 0 at 1000 Hz is on its falling side:
	// (1791.330−1000)/(1791.330−620.580) = 0.675917; filter 1 rises there:
	// (1000−620.580)/1170.750 = 0.324083, and falls at 2000 and 3000 Hz:
	// 2000/2208.670 = 0.905522, 1000/2208.670 = 0.452761.
	fb, err := modality.MelFilterbank(8000, 8, 2, 0, 4000)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{ // [bin][mel]
		0, 0,
		0.6759170156775076, 0.3240829843224924,
		0, 0.9055223143747371,
		0, 0.4527611571873685,
		0, 0,
	}
	assertClose(t, "filterbank", fb, want, 1e-12, 0)

	// With f_min 500 Hz the 0 Hz bin lies below every filter.
	fb, err = modality.MelFilterbank(8000, 8, 2, 500, 4000)
	if err != nil {
		t.Fatal(err)
	}
	if fb[0] != 0 || fb[1] != 0 {
		t.Errorf("0 Hz bin has weights %v with f_min 500 Hz", fb[:2])
	}
}

func TestMelFilterbankRejectsEmptyFilters(t *testing.T) {
	// 128 HTK mels over 201 bins (n_fft 400 at 16 kHz): the lowest filters
	// are narrower than the 40 Hz bin spacing (torchaudio only warns).
	_, err := modality.MelFilterbank(16000, 400, 128, 0, 8000)
	wantErr(t, err, "mel filter 0", "contains no FFT bin", "lower n_mels or raise n_fft")
	_, err = modality.MelFilterbank(16000, 400, 40, 0, 9000)
	wantErr(t, err, "f_max 9000")
}

func TestHannWindowIsPeriodic(t *testing.T) {
	w := modality.HannWindow(4)
	assertClose(t, "hann(4)", w, []float64{0, 0.5, 1, 0.5}, 1e-15, 0)
}

// logMel runs LogMelSpectrogram on x [B, samples] in float64.
func logMel(t *testing.T, cfg modality.AudioConfig, shape []int, x []float64) ([]float64, tensor.Shape) {
	t.Helper()
	store, err := nn.NewStore(tensor.Float64, 1)
	if err != nil {
		t.Fatal(err)
	}
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{})
	in := inputNode(g, tensor.Float64, shape, x, nil)
	y, err := modality.LogMelSpectrogram(c, in, cfg)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	out, err := nn.ToFloat64(y.Value().(tensor.Tensor))
	if err != nil {
		t.Fatal(err)
	}
	if len(store.Params()) != 0 {
		t.Errorf("the log-mel front end created parameters: %v", paramShapes(store))
	}
	return out, y.Shape().Clone()
}

// refLogMel is a direct evaluation of the front end: reflect padding (or
// none), periodic Hann window, DFT by the definition, power, filterbank,
// log(· + eps). Output [B, n_mels, frames].
func refLogMel(x []float64, b, n int, sr, nFFT, hop, nMels int, center bool, eps float64, fb []float64) ([]float64, int) {
	pad := 0
	if center {
		pad = nFFT / 2
	}
	frames := 1 + (n+2*pad-nFFT)/hop
	nFreq := nFFT/2 + 1
	w := modality.HannWindow(nFFT)
	out := make([]float64, b*nMels*frames)
	for r := 0; r < b; r++ {
		sig := x[r*n : (r+1)*n]
		at := func(i int) float64 {
			i -= pad
			if i < 0 {
				i = -i
			}
			if i >= n {
				i = 2*(n-1) - i
			}
			return sig[i]
		}
		for f := 0; f < frames; f++ {
			power := make([]float64, nFreq)
			for k := 0; k < nFreq; k++ {
				var re, im float64
				for j := 0; j < nFFT; j++ {
					v := w[j] * at(f*hop+j)
					a := 2 * math.Pi * float64(k*j) / float64(nFFT)
					re += v * math.Cos(a)
					im -= v * math.Sin(a)
				}
				power[k] = re*re + im*im
			}
			for m := 0; m < nMels; m++ {
				s := 0.0
				for k := 0; k < nFreq; k++ {
					s += power[k] * fb[k*nMels+m]
				}
				out[(r*nMels+m)*frames+f] = math.Log(s + eps)
			}
		}
	}
	return out, frames
}

func TestLogMelMatchesDirectComputation(t *testing.T) {
	for _, center := range []bool{true, false} {
		cfg := modality.AudioConfig{SampleRate: 1600, NFFT: 16, Hop: 5, NMels: 6, NoCenter: !center, LogEps: 1e-6}
		shape := []int{2, 50}
		x := randVals(11, 1, prod(shape))
		got, gotShape := logMel(t, cfg, shape, x)
		fb, err := modality.MelFilterbank(1600, 16, 6, 0, 800)
		if err != nil {
			t.Fatal(err)
		}
		want, frames := refLogMel(x, 2, 50, 1600, 16, 5, 6, center, 1e-6, fb)
		wantFrames := 11 // centred: 1 + 50/5
		if !center {
			wantFrames = 7 // 1 + (50−16)/5, integer division
		}
		if frames != wantFrames || !reflect.DeepEqual([]int(gotShape), []int{2, 6, wantFrames}) {
			t.Fatalf("center=%v: shape %v, reference frames %d, want [2 6 %d]", center, gotShape, frames, wantFrames)
		}
		assertClose(t, "log-mel", got, want, 1e-9, 1e-9)
	}
}

func TestLogMelOfSineToneHitsItsMelBand(t *testing.T) {
	// A 1 kHz tone at 16 kHz with n_fft 512 sits exactly on FFT bin 32
	// (31.25 Hz bins); the loudest mel band must be the filter whose
	// centre is nearest 1 kHz, in every frame.
	const sr, nFFT, hop, nMels, n = 16000, 512, 256, 40, 4096
	x := make([]float64, n)
	for i := range x {
		x[i] = math.Sin(2 * math.Pi * 1000 * float64(i) / sr)
	}
	cfg := modality.AudioConfig{SampleRate: sr, NFFT: nFFT, Hop: hop, NMels: nMels}
	got, shape := logMel(t, cfg, []int{1, n}, x)
	frames := shape[2]
	best, bestDist := -1, math.Inf(1)
	mMax := modality.HzToMel(sr / 2)
	for m := 0; m < nMels; m++ {
		centre := modality.MelToHz(mMax * float64(m+1) / float64(nMels+1))
		if d := math.Abs(centre - 1000); d < bestDist {
			best, bestDist = m, d
		}
	}
	// Band centres 13 and 14 are 955 and 1060 Hz (HTK, 40 bands to 8 kHz).
	if best != 13 {
		t.Fatalf("nearest band %d, expected 13 (test premise)", best)
	}
	for f := 0; f < frames; f++ {
		arg, top := -1, math.Inf(-1)
		for m := 0; m < nMels; m++ {
			if v := got[m*frames+f]; v > top {
				arg, top = m, v
			}
		}
		if arg != best {
			t.Errorf("frame %d: loudest mel band %d, want %d", f, arg, best)
		}
		// Far bands hold only window leakage: ≥ 8 nats (≈ 35 dB) below.
		if far := got[(nMels-1)*frames+f]; top-far < 8 {
			t.Errorf("frame %d: top band %.2f, band %d %.2f: tone not isolated", f, top, nMels-1, far)
		}
	}
}

func TestLogMelGradientReachesWaveform(t *testing.T) {
	cfg := modality.AudioConfig{SampleRate: 1600, NFFT: 16, Hop: 6, NMels: 5}
	shape := []int{2, 40}
	x := randVals(12, 1, prod(shape))
	res := nntest.Check(t, func(c *nn.Ctx) (*G.Node, G.Nodes, error) {
		in := inputNode(c.Graph(), tensor.Float64, shape, x, nil)
		y, err := modality.LogMelSpectrogram(c, in, cfg)
		if err != nil {
			return nil, nil, err
		}
		loss, err := nntest.WeightedSum(y, 3)
		return loss, G.Nodes{in}, err
	}, nntest.Options{Entries: 12})
	if res.Entries != 12 {
		t.Errorf("checked %d waveform entries, want 12", res.Entries)
	}
}

func TestLogMelRejectsShortWaveforms(t *testing.T) {
	store, _ := nn.NewStore(tensor.Float64, 1)
	g := G.NewGraph()
	c := nn.NewCtx(g, store, nn.CtxOptions{}).Sub("audio")
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 8), G.WithName("x"))
	_, err := modality.LogMelSpectrogram(c, x, modality.AudioConfig{SampleRate: 1600, NFFT: 16, Hop: 4, NMels: 4})
	wantErr(t, err, "audio: ", "8 samples is too short for centred frames of n_fft 16")
	_, err = modality.LogMelSpectrogram(c, x, modality.AudioConfig{SampleRate: 1600, NFFT: 16, Hop: 4, NMels: 4, NoCenter: true})
	wantErr(t, err, "shorter than one frame")
}
