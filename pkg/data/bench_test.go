package data

import (
	"bytes"
	"testing"
)

// Decode throughput per modality: `go test ./pkg/data -run '^$' -bench .`
// Each reports samples/s on one goroutine (the loader decodes in parallel).

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

func benchImage(b *testing.B, name string, cfg ImageConfig) {
	data := readFixture(b, "image", name)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ImageBytesToTensor(data, cfg); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkImagePNG70x46(b *testing.B)  { benchImage(b, "rose.png", ImageConfig{}) }
func BenchmarkImageJPEG70x46(b *testing.B) { benchImage(b, "rose.jpg", ImageConfig{}) }
func BenchmarkImagePNGResize32(b *testing.B) {
	benchImage(b, "rose.png", ImageConfig{Height: 32, Width: 32})
}

func BenchmarkImageIDXItem28x28(b *testing.B) {
	x, err := ReadIDX(bytes.NewReader(readFixture(b, "idx", "train8-images.idx")))
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if _, err := x.Item(i%8, 1.0/255); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportRate(b)
}

func BenchmarkAudioDecodeWAV(b *testing.B) {
	data := readFixture(b, "audio", "speech22k.wav") // 0.4 s, 16-bit
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeWAV(data); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkAudio22kTo16k is the full audio path of a 0.4 s clip: decode,
// band-limited resample to 16 kHz, pad to 1 s.
func BenchmarkAudio22kTo16k(b *testing.B) {
	data := readFixture(b, "audio", "speech22k.wav")
	d, _ := NewAudioDecoder(AudioConfig{SampleRate: 16000, Length: 16000})
	for b.Loop() {
		w, err := DecodeWAV(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Process(w); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkResample1s reports the cost of resampling one second of audio.
func BenchmarkResample1s22050To16000(b *testing.B) {
	x := sine(22050, 22050, 440, 0.5)
	r, _ := NewResampler(22050, 16000, ResampleConfig{})
	for b.Loop() {
		r.Process(x)
	}
	reportRate(b)
}

func BenchmarkTextGPT2(b *testing.B) {
	tok := sharedGPT2(b)
	text := "a domestic animal kept for companionship, and an instrument for measuring time"
	for b.Loop() {
		if _, _, err := EncodeText(tok, text, TextConfig{Tokenizer: "gpt2", Length: 32}); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkTextWordVocab(b *testing.B) {
	text := "a domestic animal kept for companionship, and an instrument for measuring time"
	vb, _ := NewVocabBuilder("word", VocabConfig{Lowercase: true})
	vb.Add(text)
	v := vb.Build()
	for b.Loop() {
		if _, _, err := EncodeText(v, text, TextConfig{Length: 32}); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkSensorCSV16x5(b *testing.B) {
	data := readFixture(b, "sensor", "macro_00.csv")
	for b.Loop() {
		if _, err := ReadSensorCSV(bytes.NewReader(data), "macro_00.csv", SensorConfig{TimeColumn: "t", Length: 16}); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkVideoGIF6Frames(b *testing.B) {
	data := readFixture(b, "video", "anim.gif")
	for b.Loop() {
		if _, err := DecodeGIFVideo(data, VideoConfig{Frames: 4}); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkVideoFrameFolder(b *testing.B) {
	for b.Loop() {
		if _, err := LoadVideo(fixture("video", "frames"), VideoConfig{Frames: 4}); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkManifestSample decodes one full multimodal manifest sample (image,
// audio with resampling, text, sensor, label) from disk.
func BenchmarkManifestSample(b *testing.B) {
	m, err := OpenManifest(ManifestConfig{Path: fixture("manifest", "macro.csv"), Columns: macroColumns(), LabelColumn: "label"})
	if err != nil {
		b.Fatal(err)
	}
	stats, err := m.FitStats([]int{0, 1, 2, 3, 4, 5})
	if err != nil {
		b.Fatal(err)
	}
	ds, _ := m.Dataset(stats, DatasetOptions{})
	i := 0
	for b.Loop() {
		if _, err := ds.Get(i % ds.Len()); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportRate(b)
}
