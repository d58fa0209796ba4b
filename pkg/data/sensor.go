package data

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// SensorConfig says how a CSV time series becomes a [T,C] tensor: one row
// per time step, one column per channel.
//
// Pipeline: parse (every cell a finite number) → select channels →
// per-channel normalisation (x−Mean[c])/Std[c] → pad/trim to Length.
type SensorConfig struct {
	// NoHeader says the first row is data. Channels are then named "0", "1", …
	NoHeader bool `json:"no_header,omitempty"`
	// TimeColumn names a column to drop (a timestamp). "" keeps every column.
	TimeColumn string `json:"time_column,omitempty"`
	// Channels lists the columns to keep, in order. Empty keeps all columns
	// except TimeColumn, in file order.
	Channels []string `json:"channels,omitempty"`
	// Length in time steps: longer series are trimmed, shorter zero-padded
	// (after normalisation, so padding is the channel mean). 0 keeps the
	// natural length.
	Length int `json:"length,omitempty"`
	// Align "start" (default) or "center", as for audio.
	Align string `json:"align,omitempty"`
	// Normalize "dataset" computes Mean/Std per channel on the training split
	// (see Stats); "" uses Mean/Std as given (both empty: none).
	Normalize string    `json:"normalize,omitempty"`
	Mean      []float32 `json:"mean,omitempty"`
	Std       []float32 `json:"std,omitempty"`
}

// Validate checks the configuration.
func (c SensorConfig) Validate() error {
	if c.Length < 0 {
		return fmt.Errorf("sensor length %d must be >= 0", c.Length)
	}
	if c.Align != "" && c.Align != "start" && c.Align != "center" {
		return fmt.Errorf("sensor align %q: want \"start\" or \"center\"", c.Align)
	}
	if c.Normalize != "" && c.Normalize != "dataset" {
		return fmt.Errorf("sensor normalize must be \"\" or \"dataset\", got %q", c.Normalize)
	}
	if len(c.Mean) != len(c.Std) || (len(c.Channels) > 0 && len(c.Mean) > 0 && len(c.Mean) != len(c.Channels)) {
		return fmt.Errorf("sensor mean/std have %d and %d entries for %d channels", len(c.Mean), len(c.Std), len(c.Channels))
	}
	for i, s := range c.Std {
		if !(s > 0) {
			return fmt.Errorf("sensor std[%d] = %v must be > 0", i, s)
		}
	}
	seen := map[string]bool{}
	for _, ch := range c.Channels {
		if seen[ch] || ch == c.TimeColumn {
			return fmt.Errorf("sensor channel %q listed twice or equal to the time column", ch)
		}
		seen[ch] = true
	}
	return nil
}

// OutputShape is [Length, len(Channels)] when both are known, else nil.
func (c SensorConfig) OutputShape() []int {
	if c.Length > 0 && len(c.Channels) > 0 {
		return []int{c.Length, len(c.Channels)}
	}
	return nil
}

// SampleShape is the shape of a sensor input in a Sample: channels first,
// [len(Channels), Length] (the sensor preprocessor's [sensors, time]), when
// both are known, else nil. Files are read time-major (OutputShape).
func (c SensorConfig) SampleShape() []int {
	if s := c.OutputShape(); s != nil {
		return []int{s[1], s[0]}
	}
	return nil
}

// ChannelsFirst transposes a time-major sensor series [T, C] (as
// LoadSensorCSV returns it) to [C, T].
func ChannelsFirst(t Tensor) (Tensor, error) {
	if len(t.Shape) != 2 || t.Shape[0]*t.Shape[1] != len(t.Data) {
		return Tensor{}, fmt.Errorf("sensor series: want a [time, channels] tensor, got shape %v with %d values", t.Shape, len(t.Data))
	}
	T, C := t.Shape[0], t.Shape[1]
	out := Tensor{Shape: []int{C, T}, Data: make([]float32, len(t.Data))}
	for i := 0; i < T; i++ {
		for j := 0; j < C; j++ {
			out.Data[j*T+i] = t.Data[i*C+j]
		}
	}
	return out, nil
}

// maxSensorCells bounds rows×columns of one sensor file (64 Mi values).
const maxSensorCells = 1 << 26

// LoadSensorCSV reads the sensor CSV at path. Errors are *InputError naming
// path, and for bad values the line and column.
func LoadSensorCSV(path string, cfg SensorConfig) (Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Tensor{}, inputErr(path, 0, "", err)
	}
	return ReadSensorCSV(bytes.NewReader(b), path, cfg)
}

// ReadSensorCSV parses a CSV time series from r; name is the file name used
// in errors. Every data row must have as many fields as the header, and
// every kept cell must be a finite number: an empty cell, NaN, ±Inf or text
// is an *InputError with the 1-based line and the column name.
func ReadSensorCSV(r io.Reader, name string, cfg SensorConfig) (Tensor, error) {
	if err := cfg.Validate(); err != nil {
		return Tensor{}, err
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked below, with a better message
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true

	var header []string
	var keep []int // column index of each output channel
	var data []float32
	width := -1
	rows := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return Tensor{}, &InputError{File: name, Row: pe.Line, Err: pe.Err}
			}
			return Tensor{}, &InputError{File: name, Err: err}
		}
		line, _ := cr.FieldPos(0)
		if width < 0 {
			width = len(rec)
			if cfg.NoHeader {
				header = make([]string, width)
				for i := range header {
					header[i] = strconv.Itoa(i)
				}
			} else {
				header = append([]string(nil), rec...)
				for i := range header {
					header[i] = strings.TrimSpace(header[i])
				}
			}
			if keep, err = sensorColumns(header, cfg); err != nil {
				return Tensor{}, &InputError{File: name, Row: line, Err: err}
			}
			if len(cfg.Mean) > 0 && len(cfg.Mean) != len(keep) {
				return Tensor{}, &InputError{File: name, Err: fmt.Errorf("%d channels but %d normalisation means", len(keep), len(cfg.Mean))}
			}
			if !cfg.NoHeader {
				continue
			}
		}
		if len(rec) != width {
			return Tensor{}, &InputError{File: name, Row: line, Err: fmt.Errorf("row has %d fields, header has %d (ragged row)", len(rec), width)}
		}
		if (rows+1)*len(keep) > maxSensorCells {
			return Tensor{}, &InputError{File: name, Row: line, Err: fmt.Errorf("more than %d values", maxSensorCells)}
		}
		for _, j := range keep {
			v, err := parseFinite(rec[j])
			if err != nil {
				ln, _ := cr.FieldPos(j)
				return Tensor{}, &InputError{File: name, Row: ln, Column: header[j], Err: err}
			}
			data = append(data, v)
		}
		rows++
	}
	if rows == 0 {
		return Tensor{}, &InputError{File: name, Err: errors.New("no data rows")}
	}
	C := len(keep)
	t := Tensor{Shape: []int{rows, C}, Data: data}
	if len(cfg.Mean) > 0 {
		for i := 0; i < rows; i++ {
			for c := 0; c < C; c++ {
				t.Data[i*C+c] = (t.Data[i*C+c] - cfg.Mean[c]) / cfg.Std[c]
			}
		}
	}
	if cfg.Length > 0 && cfg.Length != rows {
		t = fitRows(t, cfg.Length, cfg.Align)
	}
	return t, nil
}

// sensorColumns maps the configured channels to column indices.
func sensorColumns(header []string, cfg SensorConfig) ([]int, error) {
	idx := map[string]int{}
	for i, h := range header {
		if _, dup := idx[h]; dup {
			return nil, fmt.Errorf("duplicate column %q in header", h)
		}
		idx[h] = i
	}
	if cfg.TimeColumn != "" {
		if _, ok := idx[cfg.TimeColumn]; !ok {
			return nil, fmt.Errorf("time column %q not in header %v", cfg.TimeColumn, header)
		}
	}
	var keep []int
	if len(cfg.Channels) == 0 {
		for i, h := range header {
			if h != cfg.TimeColumn {
				keep = append(keep, i)
			}
		}
	} else {
		for _, ch := range cfg.Channels {
			i, ok := idx[ch]
			if !ok {
				return nil, fmt.Errorf("channel %q not in header %v", ch, header)
			}
			keep = append(keep, i)
		}
	}
	if len(keep) == 0 {
		return nil, errors.New("no channels")
	}
	return keep, nil
}

// parseFinite parses a float cell and rejects empty, NaN and infinite values.
func parseFinite(s string) (float32, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty value")
	}
	v, err := strconv.ParseFloat(s, 32)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return 0, fmt.Errorf("value %q out of float32 range", s)
		}
		return 0, fmt.Errorf("value %q is not a number", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("value %q is not finite", s)
	}
	return float32(v), nil
}

// fitRows trims or zero-pads the first axis of t to n (align as FitLength).
func fitRows(t Tensor, n int, align string) Tensor {
	rowLen := 1
	for _, d := range t.Shape[1:] {
		rowLen *= d
	}
	out := Tensor{Shape: append([]int{n}, t.Shape[1:]...), Data: make([]float32, n*rowLen)}
	fitInto(out.Data, t.Data, rowLen, align)
	return out
}
