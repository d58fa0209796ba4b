package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/go-audio/wav"
)

func decodeFixtureWAV(t testing.TB, name string) Waveform {
	t.Helper()
	w, err := DecodeWAV(readFixture(t, "audio", name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w
}

func TestDecodeWAVFormatsAgree(t *testing.T) {
	// speech22k.wav is espeak-ng's 16-bit output; sox re-encoded it losslessly
	// as 24-bit, 32-bit and float32 (and lossily as unsigned 8-bit).
	ref := decodeFixtureWAV(t, "speech22k.wav")
	if ref.Rate != 22050 || len(ref.Channels) != 1 || ref.Len() != 8820 || ref.Bits != 16 || ref.Float {
		t.Fatalf("speech22k: rate %d channels %d len %d bits %d", ref.Rate, len(ref.Channels), ref.Len(), ref.Bits)
	}
	for _, tc := range []struct {
		name  string
		bits  int
		float bool
		tol   float64
	}{
		{"speech22k_s24.wav", 24, false, 0},
		{"speech22k_s32.wav", 32, false, 0},
		{"speech22k_f32.wav", 32, true, 0},
		{"speech22k_u8.wav", 8, false, 1.0/256 + 1e-7}, // requantised: at most half a step of 1/128
	} {
		w := decodeFixtureWAV(t, tc.name)
		if w.Bits != tc.bits || w.Float != tc.float || w.Rate != 22050 {
			t.Errorf("%s: bits %d float %v rate %d", tc.name, w.Bits, w.Float, w.Rate)
		}
		sliceNear(t, tc.name, w.Channels[0], ref.Channels[0], tc.tol)
	}
}

func TestDecodeWAVMatchesGoAudio(t *testing.T) {
	// An independent decoder: go-audio/wav's integer samples / 2^(bits-1).
	for _, name := range []string{"speech22k.wav", "speech22k_s24.wav", "stereo22k.wav"} {
		b := readFixture(t, "audio", name)
		d := wav.NewDecoder(bytes.NewReader(b))
		buf, err := d.FullPCMBuffer()
		if err != nil {
			t.Fatal(err)
		}
		w := decodeFixtureWAV(t, name)
		nch := len(w.Channels)
		if buf.Format.NumChannels != nch || buf.Format.SampleRate != w.Rate || len(buf.Data) != nch*w.Len() {
			t.Fatalf("%s: go-audio %d ch %d Hz %d samples; ours %d ch %d Hz %d", name,
				buf.Format.NumChannels, buf.Format.SampleRate, len(buf.Data), nch, w.Rate, nch*w.Len())
		}
		scale := math.Ldexp(1, -(int(d.BitDepth) - 1))
		want := make([]float32, w.Len())
		for c := 0; c < nch; c++ {
			for i := range want {
				want[i] = float32(float64(buf.Data[i*nch+c]) * scale)
			}
			sliceNear(t, name, w.Channels[c], want, 0)
		}
	}
}

func TestWaveformMonoMixdown(t *testing.T) {
	st := decodeFixtureWAV(t, "stereo22k.wav")
	speech := decodeFixtureWAV(t, "speech22k.wav").Channels[0]
	sine := decodeFixtureWAV(t, "sine440_22k.wav").Channels[0]
	if len(st.Channels) != 2 {
		t.Fatalf("stereo has %d channels", len(st.Channels))
	}
	sliceNear(t, "left", st.Channels[0], speech, 0)
	sliceNear(t, "right", st.Channels[1], sine, 0)
	want := make([]float32, len(speech))
	for i := range want {
		want[i] = (speech[i] + sine[i]) / 2
	}
	sliceNear(t, "mono", st.Mono(), want, 1e-7)
	// The sine is 0.5·sin(2π·440·t) from sox's synth, which is accurate to
	// about 1e-3 (it is table-based).
	for i := 1; i < 20; i++ {
		near(t, "sine sample", float64(sine[i]), 0.5*math.Sin(2*math.Pi*440*float64(i)/22050), 1.5e-3)
	}
}

// wavHeader builds a canonical 44-byte WAV header.
func wavHeader(format, nch, rate, bits, dataLen int) []byte {
	b := make([]byte, 44)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+dataLen))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], uint16(format))
	binary.LittleEndian.PutUint16(b[22:], uint16(nch))
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*nch*bits/8))
	binary.LittleEndian.PutUint16(b[32:], uint16(nch*bits/8))
	binary.LittleEndian.PutUint16(b[34:], uint16(bits))
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(dataLen))
	return b
}

func TestDecodeWAVErrors(t *testing.T) {
	good := readFixture(t, "audio", "speech22k.wav")
	nan := append(wavHeader(3, 1, 8000, 32, 8), 0, 0, 0, 0, 0, 0, 0xc0, 0x7f)
	align := wavHeader(1, 2, 8000, 16, 4)
	binary.LittleEndian.PutUint16(align[32:], 2)
	align = append(align, 0, 0, 0, 0)
	cases := []struct {
		name string
		b    []byte
		want string
		is   error
	}{
		{"truncated data", good[:len(good)-100], "declares 17640 bytes, file has 17540", ErrTruncated},
		{"truncated header", good[:20], "fmt chunk", ErrTruncated},
		{"not wav", []byte("RIFF\x00\x00\x00\x00AVI LIST"), "not a RIFF/WAVE", nil},
		{"adpcm", readFixture(t, "audio", "speech8k_adpcm.wav"), "format tag 0x11", ErrUnsupported},
		{"12-bit", append(wavHeader(1, 1, 8000, 12, 0), nil...), "12-bit PCM", ErrUnsupported},
		{"nan", nan, "sample 1 of channel 0 is NaN", nil},
		{"align", align, "block align 2, want 4", nil},
		{"partial frame", append(wavHeader(1, 1, 8000, 16, 3), 1, 2, 3), "whole number", ErrTruncated},
		{"zero channels", wavHeader(1, 0, 8000, 16, 0), "0 channels", nil},
		{"zero rate", wavHeader(1, 1, 0, 16, 0), "rate 0", nil},
		{"no data", good[:36], "no data chunk", ErrTruncated},
	}
	for _, tc := range cases {
		_, err := DecodeWAV(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v is not %v", tc.name, err, tc.is)
		}
	}
}

func TestAudioDecoderPipeline(t *testing.T) {
	speech := decodeFixtureWAV(t, "speech22k.wav").Channels[0]
	// Keep rate, fixed length: trims the 8820 samples to 4000 from the start.
	d, err := NewAudioDecoder(AudioConfig{Length: 4000})
	if err != nil {
		t.Fatal(err)
	}
	x, err := d.Load(fixture("audio", "speech22k.wav"))
	if err != nil {
		t.Fatal(err)
	}
	shapeIs(t, "trimmed", x.Shape, 4000)
	sliceNear(t, "trimmed", x.Data, speech[:4000], 0)
	// Centre padding to 10000: 590 zeros each side.
	d, _ = NewAudioDecoder(AudioConfig{Length: 10000, Align: "center"})
	x, _ = d.Load(fixture("audio", "speech22k.wav"))
	sliceNear(t, "centre pad", x.Data[590:590+8820], speech, 0)
	for _, i := range []int{0, 589, 9410, 9999} {
		if x.Data[i] != 0 {
			t.Errorf("padding[%d] = %v", i, x.Data[i])
		}
	}
	// Stereo kept as [2,L] when asked, an error when the count differs.
	d, _ = NewAudioDecoder(AudioConfig{Channels: 2, SampleRate: 16000})
	x, err = d.Load(fixture("audio", "stereo22k.wav"))
	if err != nil {
		t.Fatal(err)
	}
	shapeIs(t, "stereo", x.Shape, 2, 6400)
	_, err = d.Load(fixture("audio", "speech22k.wav"))
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "1 channels, config wants 2") || !strings.HasSuffix(ie.File, "speech22k.wav") {
		t.Errorf("channel mismatch error: %v", err)
	}
	if _, err := NewAudioDecoder(AudioConfig{Align: "end"}); err == nil {
		t.Error("bad align: no error")
	}
}

func TestAddNoiseSNR(t *testing.T) {
	speech := decodeFixtureWAV(t, "speech22k.wav").Channels[0]
	power := func(x []float32) float64 {
		var p float64
		for _, v := range x {
			p += float64(v) * float64(v)
		}
		return p / float64(len(x))
	}
	for _, snr := range []float64{20, 5, 0, -5} {
		x := append([]float32(nil), speech...)
		AddNoise(x, snr, NewAugmentRand(7))
		noise := make([]float32, len(x))
		for i := range x {
			noise[i] = x[i] - speech[i]
		}
		got := 10 * math.Log10(power(speech)/power(noise))
		near(t, "measured SNR", got, snr, 0.01)
		y := append([]float32(nil), speech...)
		AddNoise(y, snr, NewAugmentRand(7))
		sliceNear(t, "same seed", y, x, 0)
	}
	silent := make([]float32, 100)
	AddNoise(silent, 10, NewAugmentRand(1))
	for _, v := range silent {
		if v != 0 {
			t.Fatal("noise added to a silent signal (SNR undefined)")
		}
	}
}
