package modality_test

import (
	"reflect"
	"testing"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/modality"
)

func tinyAudio(arch string) modality.Config {
	return modality.Config{Kind: "audio", Architecture: arch, OutputDim: 3, Audio: modality.AudioConfig{
		SampleRate: 1600, Samples: 64, NFFT: 16, Hop: 8, NMels: 4, Channels: []int{4, 5}, Pool: 2,
		RawKernel: 8, RawStride: 4}}
}

func TestAudioGradients(t *testing.T) {
	shape := []int{2, 64}
	x := randVals(21, 1, prod(shape))
	// mel: conv1, bn1, conv2, bn2 (weights; convs have no bias), fc, + x.
	t.Run("mel", func(t *testing.T) { gradCheck(t, mustNew(t, tinyAudio("mel")), shape, x, nil, 9) })
	t.Run("raw", func(t *testing.T) { gradCheck(t, mustNew(t, tinyAudio("raw")), shape, x, nil, 9) })
}

func TestAudioShapesAndParameters(t *testing.T) {
	for _, arch := range []string{"mel", "raw"} {
		p := mustNew(t, tinyAudio(arch))
		if got := p.InputShape(4); !reflect.DeepEqual(got, []int{4, 64}) {
			t.Errorf("%s InputShape = %v", arch, got)
		}
		for _, n := range []int{64, 100, 33} {
			r := forward(t, p, tensor.Float32, false, []int{3, n}, randVals(22, 1, 3*n), nil, nil)
			if !reflect.DeepEqual([]int(r.shape), []int{3, 3}) {
				t.Errorf("%s on %d samples: output %v, want [3 3]", arch, n, r.shape)
			}
			shapes := paramShapes(r.store)
			// mel: the first conv reads the 4 mel channels; raw: one
			// waveform channel with the raw kernel.
			want := "[4 4 3]"
			if arch == "raw" {
				want = "[4 1 8]"
			}
			if got := shapes["pre.conv1.weight"]; got != want {
				t.Errorf("%s conv1.weight %s, want %s (all: %v)", arch, got, want, shapes)
			}
			if _, ok := shapes["pre.conv1.bias"]; ok {
				t.Errorf("%s: conv before batch norm has a bias", arch)
			}
		}
	}
}

func TestAudioDefaults(t *testing.T) {
	cfg := modality.Config{Kind: "audio"}.WithDefaults()
	a := cfg.Audio
	if cfg.Architecture != "mel" || cfg.OutputDim != 128 || a.SampleRate != 16000 || a.Samples != 16000 ||
		a.NFFT != 400 || a.Hop != 160 || a.NMels != 64 || a.FMax != 8000 || a.LogEps != 1e-6 ||
		!reflect.DeepEqual(a.Channels, []int{64, 128}) || a.Kernel != 3 || a.Pool != 2 {
		t.Errorf("defaults %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestAudioRejectsWrongInput(t *testing.T) {
	p := mustNew(t, tinyAudio("mel"))
	wantErr(t, buildErr(p, tensor.Float64, []int{2, 1, 64}), "audio preprocessor expects input [batch, samples]")
	wantErr(t, buildErr(p, tensor.Float64, []int{2, 8}), "pre.melspec: ", "too short for centred frames")
	r := mustNew(t, tinyAudio("raw"))
	wantErr(t, buildErr(r, tensor.Float64, []int{2, 7}), "pre: audio preprocessor (raw)", "shorter than raw_kernel 8")
}
