package data

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for every decoder and both manifest parsers. `go test` runs
// the seeds (the real fixtures, truncated copies, and any crashers saved
// under testdata/fuzz/); `go test -fuzz=FuzzX` explores further. Each target
// checks the contract: an error or a well-formed result, never a panic, never
// a non-finite value.

// addTruncations seeds b and a few truncated copies of it.
func addTruncations(f *testing.F, b []byte) {
	f.Add(b)
	for _, n := range []int{len(b) / 2, len(b) - 1, 12, 44, 64} {
		if n > 0 && n < len(b) {
			f.Add(b[:n])
		}
	}
}

func checkFinite(t *testing.T, what string, xs []float32) {
	t.Helper()
	for i, v := range xs {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("%s[%d] = %v", what, i, v)
		}
	}
}

func FuzzDecodeImage(f *testing.F) {
	for _, name := range []string{"gray4x3.png", "gray16_4x3.png", "rgb4x3.png", "rgb4x3.gif", "rgb4x3.jpg", "rgba4x3.png", "rose.jpg"} {
		addTruncations(f, readFixture(f, "image", name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, cfg := range []ImageConfig{{Channels: 1}, {Height: 5, Width: 7}} {
			x, err := ImageBytesToTensor(b, cfg)
			if err != nil {
				continue
			}
			if err := x.Validate(); err != nil || len(x.Shape) != 3 || x.Shape[0] != cfg.channels() {
				t.Fatalf("bad tensor %v: %v", x.Shape, err)
			}
			for _, v := range x.Data {
				if !(v >= 0 && v <= 1) {
					t.Fatalf("pixel %v outside [0,1]", v)
				}
			}
		}
	})
}

func FuzzDecodeWAV(f *testing.F) {
	for _, name := range []string{"speech8k.wav", "speech8k_adpcm.wav", "speech22k_u8.wav", "speech22k_s24.wav", "speech22k_f32.wav", "stereo22k.wav"} {
		addTruncations(f, readFixture(f, "audio", name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := DecodeWAV(b)
		if err != nil {
			return
		}
		if len(w.Channels) == 0 || w.Rate <= 0 {
			t.Fatalf("decoded %d channels at %d Hz", len(w.Channels), w.Rate)
		}
		for c, ch := range w.Channels {
			if len(ch) != w.Len() {
				t.Fatalf("channel %d has %d samples, channel 0 %d", c, len(ch), w.Len())
			}
			checkFinite(t, "sample", ch)
			if !w.Float {
				for _, v := range ch {
					if v < -1 || v >= 1 {
						t.Fatalf("PCM sample %v outside [-1,1)", v)
					}
				}
			}
		}
		if w.Len() > 0 && w.Len() < 1<<16 {
			d, _ := NewAudioDecoder(AudioConfig{SampleRate: 16000, Length: 1000})
			x, err := d.Process(w)
			if err != nil {
				t.Fatal(err)
			}
			checkFinite(t, "processed", x.Data)
		}
	})
}

func FuzzReadIDX(f *testing.F) {
	for _, name := range []string{"train8-labels.idx", "train8-labels.idx.gz", "train8-images.idx", "train8-images.idx.gz"} {
		addTruncations(f, readFixture(f, "idx", name))
	}
	f.Add([]byte{0, 0, IDXFloat32, 1, 0, 0, 0, 1, 0x7f, 0xc0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ReadIDX(bytes.NewReader(b))
		if err != nil {
			return
		}
		size, _ := idxElemSize(x.Type)
		n := 1
		for _, d := range x.Dims {
			n *= d
		}
		if len(x.Raw) != n*size {
			t.Fatalf("dims %v type %#x but %d bytes", x.Dims, x.Type, len(x.Raw))
		}
		if x.Len() > 0 {
			it, err := x.Item(x.Len()-1, 1)
			if err != nil || it.Validate() != nil {
				t.Fatalf("last item: %v", err)
			}
		}
	})
}

func FuzzSensorCSV(f *testing.F) {
	for _, name := range []string{"macro_00.csv", "bad_nan.csv", "bad_ragged.csv"} {
		f.Add(readFixture(f, "sensor", name))
	}
	f.Add([]byte("a,b\n1,2\n\"3\",4\n"))
	f.Add([]byte("t,x\n0,1e39\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ReadSensorCSV(bytes.NewReader(b), "fuzz.csv", SensorConfig{Length: 8})
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.File != "fuzz.csv" {
				t.Fatalf("error %v does not name the file", err)
			}
			return
		}
		if len(x.Shape) != 2 || x.Shape[0] != 8 || x.Validate() != nil {
			t.Fatalf("shape %v", x.Shape)
		}
		checkFinite(t, "value", x.Data)
	})
}

func FuzzGIFVideo(f *testing.F) {
	addTruncations(f, readFixture(f, "video", "anim.gif"))
	f.Add(readFixture(f, "image", "rgb4x3.gif"))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := DecodeGIFVideo(b, VideoConfig{Frames: 3})
		if err != nil {
			return
		}
		if len(x.Shape) != 4 || x.Shape[0] != 3 || x.Shape[1] != 3 || x.Validate() != nil {
			t.Fatalf("shape %v", x.Shape)
		}
		checkFinite(t, "pixel", x.Data)
	})
}

func FuzzPPMStream(f *testing.F) {
	frame := append([]byte("P6\n2 1\n255\n"), 1, 2, 3, 4, 5, 6)
	f.Add(append(append([]byte(nil), frame...), frame...))
	f.Add([]byte("P6 # comment\n1 1 255\n\x00\x00\x00"))
	f.Add([]byte("P6\n99999 99999\n255\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, err := readPPMStream(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, fr := range frames {
			if fr.Bounds().Empty() {
				t.Fatal("empty frame")
			}
		}
	})
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"Hello world", "naïve café — 東京 🚀", "<|endoftext|>", "   ", "a\xffb", "don't x-ray 3.5"} {
		f.Add(s)
	}
	tok := sharedGPT2(f)
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := tok.Encode(s)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatal("invalid UTF-8 accepted")
			}
			return
		}
		if err != nil {
			if strings.Contains(err.Error(), "without a space") {
				return
			}
			t.Fatal(err)
		}
		back, err := tok.Decode(ids)
		if err != nil || back != s {
			t.Fatalf("gpt2 round trip %q → %q (%v)", s, back, err)
		}
		for _, level := range []string{"word", "char"} {
			b, _ := NewVocabBuilder(level, VocabConfig{Lowercase: true})
			if err := b.Add(s); err != nil {
				t.Fatal(err)
			}
			v := b.Build()
			ids, err := v.Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				if id < 1 || id >= v.VocabSize() {
					t.Fatalf("%s id %d out of range", level, id)
				}
			}
			if _, _, err := EncodeText(v, s, TextConfig{Length: 5, AddBOS: true, AddEOS: true, AllowEmpty: true}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// fuzzManifest opens manifest bytes with a text input and a category label,
// fits statistics on every row and decodes every row: errors are fine,
// panics and errors without a location are not.
func fuzzManifest(t *testing.T, path string, b []byte) {
	cfg := ManifestConfig{Path: path, LabelColumn: "label",
		Columns: map[string]ColumnSpec{"text": {Kind: KindText, Text: TextConfig{Length: 4}}}}
	m, err := openManifestBytes(cfg, b)
	if err != nil {
		return
	}
	all := make([]int, m.Len())
	for i := range all {
		all[i] = i
	}
	stats, err := m.FitStats(all)
	if err != nil {
		return
	}
	ds, err := m.Dataset(stats, DatasetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < ds.Len(); i++ {
		s, err := ds.Get(i)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.File != path || ie.Row == 0 {
				t.Fatalf("row %d: error %v lacks file and line", i, err)
			}
			continue
		}
		if len(s.Tokens["text"]) != 4 || s.Label.Class < 0 || s.Label.Class >= len(stats.Categories) {
			t.Fatalf("row %d: tokens %v class %d", i, s.Tokens["text"], s.Label.Class)
		}
	}
}

func FuzzManifestCSV(f *testing.F) {
	f.Add(readFixture(f, "manifest", "macro.csv"))
	f.Add([]byte("text,label\nhello,a\n\"quoted, text\",b\n"))
	f.Add([]byte("\xef\xbb\xbftext,label\n\"open,a\nx,y,z\n,\n"))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzManifest(t, "fuzz.csv", b) })
}

func FuzzManifestJSONL(f *testing.F) {
	f.Add(readFixture(f, "manifest", "macro.jsonl"))
	f.Add([]byte(`{"text": "hi", "label": 3}` + "\n" + `{"text": null, "label": "x"}` + "\nnot json\n"))
	f.Add([]byte(`{"text": "a", "label": [1, 2]} {"x": 1}` + "\n" + strings.Repeat(" ", 10) + "\n" + `{"text": {"a": 1}, "label": true}`))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzManifest(t, "fuzz.jsonl", b) })
}
