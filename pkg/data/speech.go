package data

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

// ErrEspeakMissing is returned by the spoken-digit generator when no espeak-ng
// executable is on PATH.
var ErrEspeakMissing = errors.New("espeak-ng not found on PATH: install it (Debian/Ubuntu: apt-get install espeak-ng) to synthesise spoken digits")

// speechSynth runs espeak-ng as a subprocess. espeak-ng is deterministic:
// the same voice, speed, pitch and text give the same samples.
type speechSynth struct {
	bin      string
	tmp      string          // scratch directory for the WAV files espeak-ng writes
	variants map[string]bool // installed voice variants (m1, f3, klatt, ...)
	version  string
	seq      atomic.Int64
}

// newSpeechSynth finds espeak-ng and lists its voice variants.
func newSpeechSynth(ctx context.Context) (*speechSynth, error) {
	bin, err := exec.LookPath("espeak-ng")
	if err != nil {
		return nil, ErrEspeakMissing
	}
	s := &speechSynth{bin: bin, variants: map[string]bool{}}
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("espeak-ng --version: %w", err)
	}
	// "eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/...": keep the
	// version, not the machine's path.
	version, _, _ := strings.Cut(string(out), "Data at:")
	s.version = strings.TrimSpace(version)
	out, err = exec.CommandContext(ctx, bin, "--voices=variant").Output()
	if err != nil {
		return nil, fmt.Errorf("espeak-ng --voices=variant: %w", err)
	}
	// Lines: "Pty Language Age/Gender VoiceName File Other"; File is "!v/NAME".
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if name, ok := strings.CutPrefix(f, "!v/"); ok {
				s.variants[name] = true
			}
		}
	}
	if s.tmp, err = os.MkdirTemp("", "lsfuse-espeak-"); err != nil {
		return nil, err
	}
	return s, nil
}

// close removes the scratch directory.
func (s *speechSynth) close() error { return os.RemoveAll(s.tmp) }

// checkVoices reports the first variant that espeak-ng does not have
// (espeak-ng itself silently falls back to its default voice for an unknown
// variant, which would quietly shrink the voice diversity).
func (s *speechSynth) checkVoices(variants []string) error {
	for _, v := range variants {
		if !s.variants[v] {
			return fmt.Errorf("espeak-ng has no voice variant %q (see espeak-ng --voices=variant)", v)
		}
	}
	return nil
}

// speak synthesises text with voice "accent+variant" at speed words per
// minute and pitch (0–99) and returns the mono waveform (22050 Hz for
// espeak-ng's own voices).
func (s *speechSynth) speak(ctx context.Context, accent, variant string, speed, pitch int, text string) ([]float32, int, error) {
	voice := accent
	if variant != "" {
		voice += "+" + variant
	}
	path := filepath.Join(s.tmp, strconv.FormatInt(s.seq.Add(1), 10)+".wav")
	defer os.Remove(path)
	cmd := exec.CommandContext(ctx, s.bin, "-v", voice, "-s", strconv.Itoa(speed), "-p", strconv.Itoa(pitch), "-w", path, text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, 0, fmt.Errorf("espeak-ng -v %s -s %d -p %d %q: %v: %s", voice, speed, pitch, text, err, strings.TrimSpace(stderr.String()))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	w, err := DecodeWAV(b)
	if err != nil {
		return nil, 0, fmt.Errorf("espeak-ng -v %s %q wrote an unreadable WAV: %w", voice, text, err)
	}
	return w.Mono(), w.Rate, nil
}

// trimSilence cuts the leading and trailing samples whose magnitude stays
// below rel × the peak magnitude, keeping margin samples of context on each
// side. An all-silent signal is returned empty.
func trimSilence(x []float32, rel float64, margin int) []float32 {
	var peak float64
	for _, v := range x {
		peak = max(peak, math.Abs(float64(v)))
	}
	thr := rel * peak
	lo, hi := -1, -1
	for i, v := range x {
		if math.Abs(float64(v)) > thr {
			if lo < 0 {
				lo = i
			}
			hi = i
		}
	}
	if lo < 0 || peak == 0 {
		return x[:0]
	}
	return x[max(lo-margin, 0):min(hi+margin+1, len(x))]
}

// encodeWAV16 encodes mono samples in [-1, 1] as a 16-bit PCM RIFF/WAVE file
// (values outside are clipped; rounding to the nearest step).
func encodeWAV16(x []float32, rate int) []byte {
	const headerLen = 44
	data := 2 * len(x)
	b := make([]byte, headerLen+data)
	le := binary.LittleEndian
	copy(b[0:], "RIFF")
	le.PutUint32(b[4:], uint32(headerLen-8+data))
	copy(b[8:], "WAVEfmt ")
	le.PutUint32(b[16:], 16)             // fmt chunk size
	le.PutUint16(b[20:], 1)              // PCM
	le.PutUint16(b[22:], 1)              // channels
	le.PutUint32(b[24:], uint32(rate))   // sample rate
	le.PutUint32(b[28:], uint32(2*rate)) // byte rate
	le.PutUint16(b[32:], 2)              // block align
	le.PutUint16(b[34:], 16)             // bits per sample
	copy(b[36:], "data")
	le.PutUint32(b[40:], uint32(data))
	for i, v := range x {
		q := math.Round(float64(v) * 32767)
		le.PutUint16(b[headerLen+2*i:], uint16(int16(min(max(q, -32768), 32767))))
	}
	return b
}
