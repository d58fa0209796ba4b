package data

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// Column kinds of a manifest.
const (
	KindImage  = "image"
	KindAudio  = "audio"
	KindText   = "text"
	KindSensor = "sensor"
	KindVideo  = "video"
)

// Label kinds of a manifest.
const (
	LabelCategory = "category" // a class name → Label.Class via Stats.Categories
	LabelNumber   = "number"   // one float → Label.Vector of length 1
	LabelVector   = "vector"   // several floats → Label.Vector
	LabelTokens   = "tokens"   // a text → Label.Tokens via LabelText
)

// ColumnSpec types one manifest column as a model input. The cell holds a
// path relative to the manifest (image, audio, sensor, video — a video path
// may be a frame folder), or the text itself (text, unless FromFile).
type ColumnSpec struct {
	// Kind is image, audio, text, sensor or video.
	Kind string `json:"kind"`
	// Modality is the key in Sample.Inputs / Sample.Tokens; default the
	// column name.
	Modality string `json:"modality,omitempty"`
	// FromFile (text only): the cell is a path to a UTF-8 text file.
	FromFile bool `json:"from_file,omitempty"`
	// Optional allows an empty cell (CSV "", JSON null or a missing key): the
	// modality is then absent (Sample.Present false) and its input is zeros
	// (pad ids for text) of the configured fixed shape. Without Optional an
	// empty cell is bad input.
	Optional bool `json:"optional,omitempty"`

	Image  ImageConfig  `json:"image,omitempty"`
	Audio  AudioConfig  `json:"audio,omitempty"`
	Text   TextConfig   `json:"text,omitempty"`
	Sensor SensorConfig `json:"sensor,omitempty"`
	Video  VideoConfig  `json:"video,omitempty"`
}

func (s ColumnSpec) modality(col string) string {
	if s.Modality != "" {
		return s.Modality
	}
	return col
}

// ManifestConfig describes a manifest dataset.
type ManifestConfig struct {
	// Path of the manifest file; data paths in it are relative to its folder.
	Path string `json:"path"`
	// Format "csv" or "jsonl" (one JSON object per line); "" picks by
	// extension (.csv; .jsonl, .ndjson).
	Format string `json:"format,omitempty"`
	// Columns types the input columns, keyed by column name (CSV header
	// field or JSON key). Other columns are kept and readable via Column.
	Columns map[string]ColumnSpec `json:"columns"`
	// LabelColumn names the target column; "" means unlabelled samples.
	LabelColumn string `json:"label_column,omitempty"`
	// LabelKind is category (default), number, vector or tokens. A vector
	// cell is a JSON array, or in CSV numbers separated by spaces, commas or
	// semicolons (optionally in brackets); every row must have the same length.
	LabelKind string `json:"label_kind,omitempty"`
	// LabelClasses fixes the category list (class id = position). Empty: the
	// sorted categories of the training split (see SortCategories).
	LabelClasses []string `json:"label_classes,omitempty"`
	// LabelText tokenizes tokens labels.
	LabelText TextConfig `json:"label_text,omitempty"`
	// NormalizeLabel standardises number/vector labels with the training
	// split's per-component mean and std (see Stats.Label).
	NormalizeLabel bool `json:"normalize_label,omitempty"`
	// OnError is "fail" (default: the first bad row is an error naming file,
	// row and column) or "skip" (bad rows are dropped when the manifest is
	// opened — every row is decoded once to find them — and counted in
	// Summary).
	OnError string `json:"on_error,omitempty"`
	// Workers decode rows in parallel when checking (skip) and fitting
	// statistics; 0 means GOMAXPROCS.
	Workers int `json:"workers,omitempty"`
}

func (c ManifestConfig) labelKind() string {
	if c.LabelKind == "" {
		return LabelCategory
	}
	return c.LabelKind
}

func (c ManifestConfig) format() (string, error) {
	if c.Format != "" {
		if c.Format != "csv" && c.Format != "jsonl" {
			return "", fmt.Errorf("manifest format %q: want csv or jsonl", c.Format)
		}
		return c.Format, nil
	}
	switch strings.ToLower(filepath.Ext(c.Path)) {
	case ".csv":
		return "csv", nil
	case ".jsonl", ".ndjson":
		return "jsonl", nil
	}
	return "", fmt.Errorf("manifest %s: cannot tell the format from the extension; set format to csv or jsonl", c.Path)
}

// Validate checks the configuration without reading the manifest.
func (c ManifestConfig) Validate() error {
	if c.Path == "" {
		return errors.New("manifest path is empty")
	}
	if _, err := c.format(); err != nil {
		return err
	}
	if len(c.Columns) == 0 {
		return errors.New("manifest has no input columns configured")
	}
	if c.OnError != "" && c.OnError != "fail" && c.OnError != "skip" {
		return fmt.Errorf("manifest on_error %q: want fail or skip", c.OnError)
	}
	if c.Workers < 0 {
		return fmt.Errorf("manifest workers %d must be >= 0", c.Workers)
	}
	mods := map[string]string{}
	for _, name := range sortedKeys(c.Columns) {
		s := c.Columns[name]
		if name == c.LabelColumn {
			return fmt.Errorf("column %q is both an input and the label", name)
		}
		if prev, dup := mods[s.modality(name)]; dup {
			return fmt.Errorf("columns %q and %q both feed modality %q", prev, name, s.modality(name))
		}
		mods[s.modality(name)] = name
		if err := s.validate(); err != nil {
			return fmt.Errorf("column %q: %w", name, err)
		}
	}
	if c.LabelColumn == "" {
		return nil
	}
	switch c.labelKind() {
	case LabelCategory:
		seen := map[string]bool{}
		for _, l := range c.LabelClasses {
			if seen[l] || l == "" {
				return fmt.Errorf("label_classes: %q is empty or listed twice", l)
			}
			seen[l] = true
		}
	case LabelNumber, LabelVector:
	case LabelTokens:
		if err := c.LabelText.Validate(); err != nil {
			return fmt.Errorf("label_text: %w", err)
		}
		if c.LabelText.Length == 0 {
			return errors.New("label_text.length must be set for token labels (batches need a fixed length)")
		}
	default:
		return fmt.Errorf("label_kind %q: want category, number, vector or tokens", c.LabelKind)
	}
	if c.NormalizeLabel && c.labelKind() != LabelNumber && c.labelKind() != LabelVector {
		return errors.New("normalize_label applies to number and vector labels only")
	}
	return nil
}

func (s ColumnSpec) validate() error {
	var err error
	var shape []int
	switch s.Kind {
	case KindImage:
		err, shape = s.Image.Validate(), s.Image.OutputShape()
	case KindAudio:
		err, shape = s.Audio.Validate(), s.Audio.OutputShape()
	case KindText:
		err = s.Text.Validate()
		if s.Text.Length > 0 {
			shape = []int{s.Text.Length}
		}
	case KindSensor:
		err, shape = s.Sensor.Validate(), s.Sensor.OutputShape()
	case KindVideo:
		err, shape = s.Video.Validate(), s.Video.OutputShape()
	default:
		return fmt.Errorf("kind %q: want image, audio, text, sensor or video", s.Kind)
	}
	if err != nil {
		return err
	}
	if s.FromFile && s.Kind != KindText {
		return errors.New("from_file applies to text columns only")
	}
	if s.Optional && shape == nil {
		return fmt.Errorf("optional %s column needs a fixed output shape (set %s) so that a missing value has a shape", s.Kind, fixedShapeHint[s.Kind])
	}
	return nil
}

var fixedShapeHint = map[string]string{
	KindImage:  "height and width",
	KindAudio:  "length",
	KindText:   "length",
	KindSensor: "channels and length",
	KindVideo:  "frames, height and width",
}

// Summary counts what opening a manifest kept and skipped.
type Summary struct {
	Rows    int     // data rows in the file
	Kept    int     // rows in the dataset
	Skipped int     // bad rows dropped (OnError "skip")
	Errors  []error // the first MaxSummaryErrors reasons, in row order
}

// MaxSummaryErrors bounds Summary.Errors.
const MaxSummaryErrors = 20

// String is a one-line report, e.g. "8 rows: 7 kept, 1 skipped (first: …)".
func (s Summary) String() string {
	out := fmt.Sprintf("%d rows: %d kept, %d skipped", s.Rows, s.Kept, s.Skipped)
	if len(s.Errors) > 0 {
		out += " (first: " + s.Errors[0].Error() + ")"
	}
	return out
}

// cell is one manifest value.
type cell struct {
	kind byte // cellString, cellNumber, cellArray, cellNull, cellOther
	s    string
	nums []float64
}

const (
	cellNull = iota
	cellString
	cellNumber
	cellArray
	cellOther
)

func (c cell) empty() bool {
	return c.kind == cellNull || (c.kind == cellString && strings.TrimSpace(c.s) == "")
}

type manifestRow struct {
	line  int
	cells []cell // by Manifest.header index
}

// Manifest is a parsed manifest: its rows (bad ones dropped in skip mode),
// ready to fit statistics on a training split and to become a Dataset.
type Manifest struct {
	cfg     ManifestConfig
	dir     string
	header  []string
	col     map[string]int
	rows    []manifestRow
	vecLen  int
	summary Summary
	gpt2    *BPETokenizer
}

// OpenManifest reads and checks the manifest of cfg. Structural problems
// (unreadable file, a configured column missing from the header, a bad
// configuration) are always errors. A bad row is an *InputError naming the
// manifest, line and column; with OnError "skip" it is instead dropped and
// counted — and then every row's files are decoded once, so that rows whose
// image, audio, sensor or video file is missing or corrupt are dropped too.
func OpenManifest(cfg ManifestConfig) (*Manifest, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(cfg.Path)
	if err != nil {
		return nil, err
	}
	return openManifestBytes(cfg, b)
}

// openManifestBytes is OpenManifest on the manifest's content (cfg
// validated, cfg.Path used for the folder and in errors).
func openManifestBytes(cfg ManifestConfig, b []byte) (*Manifest, error) {
	format, _ := cfg.format()
	var err error
	m := &Manifest{cfg: cfg, dir: filepath.Dir(cfg.Path), col: map[string]int{}, vecLen: -1}
	skip := cfg.OnError == "skip"
	// Row errors are collected over the whole file, so that fail mode reports
	// the first bad line whatever check found it.
	var rowErrs []error
	onRowErr := func(err error) error {
		rowErrs = append(rowErrs, err)
		return nil
	}
	if format == "csv" {
		err = m.parseCSV(b, onRowErr)
	} else {
		err = m.parseJSONL(b, onRowErr)
	}
	if err != nil {
		return nil, err
	}
	for _, name := range append(sortedKeys(cfg.Columns), cfg.LabelColumn) {
		if name == "" {
			continue
		}
		if _, ok := m.col[name]; !ok && format == "csv" {
			return nil, &InputError{File: cfg.Path, Row: 1, Err: fmt.Errorf("column %q not in header %v", name, m.header)}
		}
		if _, ok := m.col[name]; !ok {
			m.addColumn(name) // JSONL: a key no row has; every row then reports it missing
		}
	}
	// Cheap per-row checks: required cells present, labels parse.
	kept := m.rows[:0]
	for _, r := range m.rows {
		if err := m.checkRow(r); err != nil {
			if err := onRowErr(err); err != nil {
				return nil, err
			}
			continue
		}
		kept = append(kept, r)
	}
	m.rows = kept
	sort.SliceStable(rowErrs, func(i, j int) bool { return errRow(rowErrs[i]) < errRow(rowErrs[j]) })
	if !skip && len(rowErrs) > 0 {
		return nil, rowErrs[0]
	}
	if err := m.initTokenizers(); err != nil {
		return nil, err
	}
	if skip {
		bad, err := m.decodeCheck()
		if err != nil {
			return nil, err
		}
		kept := m.rows[:0]
		for i, r := range m.rows {
			if bad[i] != nil {
				rowErrs = append(rowErrs, bad[i])
				continue
			}
			kept = append(kept, r)
		}
		m.rows = kept
	}
	sort.SliceStable(rowErrs, func(i, j int) bool { return errRow(rowErrs[i]) < errRow(rowErrs[j]) })
	m.summary.Kept = len(m.rows)
	m.summary.Skipped = len(rowErrs)
	m.summary.Errors = rowErrs[:min(len(rowErrs), MaxSummaryErrors)]
	if len(m.rows) == 0 {
		if len(rowErrs) > 0 {
			return nil, fmt.Errorf("manifest %s: every row is bad (%s)", cfg.Path, m.summary)
		}
		return nil, &InputError{File: cfg.Path, Err: errors.New("manifest has no data rows")}
	}
	return m, nil
}

func errRow(err error) int {
	var ie *InputError
	if errors.As(err, &ie) {
		return ie.Row
	}
	return 0
}

func (m *Manifest) addColumn(name string) int {
	i := len(m.header)
	m.header = append(m.header, name)
	m.col[name] = i
	return i
}

func (m *Manifest) rowErr(line int, column string, err error) error {
	return &InputError{File: m.cfg.Path, Row: line, Column: column, Err: err}
}

func (m *Manifest) parseCSV(b []byte, onRowErr func(error) error) error {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // UTF-8 byte-order mark
	cr := csv.NewReader(bytes.NewReader(b))
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err == io.EOF {
		return &InputError{File: m.cfg.Path, Err: errors.New("manifest is empty (no header)")}
	}
	if err != nil {
		return &InputError{File: m.cfg.Path, Row: 1, Err: fmt.Errorf("header: %w", err)}
	}
	for _, h := range head {
		if _, dup := m.col[h]; dup {
			return &InputError{File: m.cfg.Path, Row: 1, Err: fmt.Errorf("column %q appears twice in the header", h)}
		}
		m.addColumn(h)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			line := 0 // FieldPos panics after a failed Read
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line, err = pe.StartLine, pe.Err
			}
			m.summary.Rows++
			if e := onRowErr(m.rowErr(line, "", fmt.Errorf("malformed CSV: %w", err))); e != nil {
				return e
			}
			continue
		}
		m.summary.Rows++
		line, _ := cr.FieldPos(0)
		if len(rec) != len(m.header) {
			if e := onRowErr(m.rowErr(line, "", fmt.Errorf("row has %d fields, header has %d", len(rec), len(m.header)))); e != nil {
				return e
			}
			continue
		}
		cells := make([]cell, len(rec))
		for i, v := range rec {
			cells[i] = cell{kind: cellString, s: v}
		}
		m.rows = append(m.rows, manifestRow{line: line, cells: cells})
	}
}

// maxManifestLine bounds one JSONL line (16 MiB).
const maxManifestLine = 16 << 20

func (m *Manifest) parseJSONL(b []byte, onRowErr func(error) error) error {
	br := bufio.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))))
	line := 0
	for {
		raw, err := br.ReadBytes('\n')
		if len(raw) == 0 && err == io.EOF {
			return nil
		}
		line++
		if len(bytes.TrimSpace(raw)) == 0 {
			if err == io.EOF {
				return nil
			}
			continue
		}
		m.summary.Rows++
		cells, perr := m.parseJSONObject(raw)
		if perr == nil && len(raw) > maxManifestLine {
			perr = fmt.Errorf("line longer than %d bytes", maxManifestLine)
		}
		if perr != nil {
			if e := onRowErr(m.rowErr(line, "", perr)); e != nil {
				return e
			}
		} else {
			m.rows = append(m.rows, manifestRow{line: line, cells: cells})
		}
		if err == io.EOF {
			return nil
		}
	}
}

func (m *Manifest) parseJSONObject(raw []byte) ([]cell, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	if obj == nil {
		return nil, errors.New("line is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("malformed JSON: text after the object")
	}
	// New keys extend the header in sorted order, so column order is stable.
	for _, k := range sortedKeys(obj) {
		if _, ok := m.col[k]; !ok {
			m.addColumn(k)
		}
	}
	cells := make([]cell, len(m.header))
	for k, v := range obj {
		c, err := jsonCell(v)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		cells[m.col[k]] = c
	}
	return cells, nil
}

func jsonCell(v json.RawMessage) (cell, error) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 {
		return cell{}, errors.New("empty value")
	}
	switch t[0] {
	case 'n':
		return cell{kind: cellNull}, nil
	case '"':
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return cell{}, err
		}
		return cell{kind: cellString, s: s}, nil
	case '[':
		var nums []float64
		if err := json.Unmarshal(t, &nums); err != nil {
			return cell{kind: cellOther, s: string(t)}, nil // reported if a column uses it
		}
		return cell{kind: cellArray, nums: nums, s: string(t)}, nil
	case '{', 't', 'f':
		return cell{kind: cellOther, s: string(t)}, nil
	default:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return cell{}, fmt.Errorf("bad number %s", t)
		}
		return cell{kind: cellNumber, s: string(t), nums: []float64{f}}, nil
	}
}

func (m *Manifest) cell(r manifestRow, name string) cell {
	i, ok := m.col[name]
	if !ok || i >= len(r.cells) {
		return cell{kind: cellNull}
	}
	return r.cells[i]
}

// checkRow does the checks that need no file access.
func (m *Manifest) checkRow(r manifestRow) error {
	for _, name := range sortedKeys(m.cfg.Columns) {
		spec := m.cfg.Columns[name]
		c := m.cell(r, name)
		if c.empty() {
			if !spec.Optional {
				return m.rowErr(r.line, name, errors.New("empty value (mark the column optional to allow a missing modality)"))
			}
			continue
		}
		if c.kind != cellString {
			return m.rowErr(r.line, name, fmt.Errorf("want a string (a path or a text), got %s", c.s))
		}
	}
	if m.cfg.LabelColumn == "" {
		return nil
	}
	c := m.cell(r, m.cfg.LabelColumn)
	if c.empty() {
		return m.rowErr(r.line, m.cfg.LabelColumn, errors.New("empty label"))
	}
	switch m.cfg.labelKind() {
	case LabelCategory:
		l, err := categoryString(c)
		if err != nil {
			return m.rowErr(r.line, m.cfg.LabelColumn, err)
		}
		if len(m.cfg.LabelClasses) > 0 && !contains(m.cfg.LabelClasses, l) {
			return m.rowErr(r.line, m.cfg.LabelColumn, fmt.Errorf("unknown label %q (label_classes: %v)", l, m.cfg.LabelClasses))
		}
	case LabelNumber, LabelVector:
		v, err := parseVector(c)
		if err != nil {
			return m.rowErr(r.line, m.cfg.LabelColumn, err)
		}
		if m.cfg.labelKind() == LabelNumber && len(v) != 1 {
			return m.rowErr(r.line, m.cfg.LabelColumn, fmt.Errorf("want one number, got %d", len(v)))
		}
		if m.vecLen < 0 {
			m.vecLen = len(v)
		} else if len(v) != m.vecLen {
			return m.rowErr(r.line, m.cfg.LabelColumn, fmt.Errorf("vector of length %d, earlier rows have %d", len(v), m.vecLen))
		}
	case LabelTokens:
		if c.kind != cellString {
			return m.rowErr(r.line, m.cfg.LabelColumn, fmt.Errorf("want a text, got %s", c.s))
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func categoryString(c cell) (string, error) {
	switch c.kind {
	case cellString:
		return strings.TrimSpace(c.s), nil
	case cellNumber:
		return c.s, nil
	}
	return "", fmt.Errorf("category label must be a string or number, got %s", c.s)
}

// parseVector reads a number or vector cell; every value must be finite.
func parseVector(c cell) ([]float64, error) {
	var v []float64
	switch c.kind {
	case cellNumber, cellArray:
		v = c.nums
	case cellString:
		s := strings.TrimSpace(c.s)
		s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' }) {
			x, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not a number", f)
			}
			v = append(v, x)
		}
	default:
		return nil, fmt.Errorf("want numbers, got %s", c.s)
	}
	if len(v) == 0 {
		return nil, errors.New("no numbers")
	}
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > math.MaxFloat32 {
			return nil, fmt.Errorf("value %v is not a finite float32", x)
		}
	}
	return v, nil
}

// initTokenizers builds the GPT-2 tokenizer once if any column needs it.
func (m *Manifest) initTokenizers() error {
	need := m.cfg.LabelColumn != "" && m.cfg.labelKind() == LabelTokens && !m.cfg.LabelText.NeedsVocab()
	for _, s := range m.cfg.Columns {
		need = need || (s.Kind == KindText && !s.Text.NeedsVocab())
	}
	if !need {
		return nil
	}
	t, err := NewGPT2Tokenizer()
	m.gpt2 = t
	return err
}

// Len is the number of (kept) rows.
func (m *Manifest) Len() int { return len(m.rows) }

// Line returns the 1-based manifest line of row i.
func (m *Manifest) Line(i int) int { return m.rows[i].line }

// Summary reports rows read, kept and skipped.
func (m *Manifest) Summary() Summary { return m.summary }

// Config returns the configuration the manifest was opened with.
func (m *Manifest) Config() ManifestConfig { return m.cfg }

// Column returns the raw string value of column name in every kept row
// (JSON numbers as written, arrays as JSON, null as ""), e.g. a "split"
// column for SplitByName or labels for a stratified split.
func (m *Manifest) Column(name string) ([]string, error) {
	if _, ok := m.col[name]; !ok {
		return nil, fmt.Errorf("manifest %s has no column %q (columns: %v)", m.cfg.Path, name, m.header)
	}
	out := make([]string, len(m.rows))
	for i, r := range m.rows {
		out[i] = m.cell(r, name).s
	}
	return out, nil
}

// resolve makes a cell's path absolute against the manifest folder.
func (m *Manifest) resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(m.dir, filepath.FromSlash(p))
}

func (m *Manifest) workers() int {
	if m.cfg.Workers > 0 {
		return m.cfg.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// decodeCheck decodes every row once (no statistics) and returns each row's
// error (nil when fine).
func (m *Manifest) decodeCheck() ([]error, error) {
	cols, err := m.columns(nil, true)
	if err != nil {
		return nil, err
	}
	bad := make([]error, len(m.rows))
	err = forEachRow(context.Background(), len(m.rows), m.workers(), func(i int) error {
		r := m.rows[i]
		for _, c := range cols {
			if _, _, _, err := c.decode(m, r, nil); err != nil {
				bad[i] = err
				return nil
			}
		}
		return nil
	})
	return bad, err
}

// FitStats computes the statistics of the training rows (indices into this
// manifest, e.g. Split.Train): the category list, number/vector label
// moments (NormalizeLabel), word/char vocabularies of text columns and of
// token labels, and per-channel moments of image/sensor/video columns with
// Normalize "dataset". Files are decoded in parallel; the result does not
// depend on Workers.
func (m *Manifest) FitStats(train []int) (*Stats, error) {
	for _, i := range train {
		if i < 0 || i >= len(m.rows) {
			return nil, fmt.Errorf("fit stats: training row %d out of range [0,%d)", i, len(m.rows))
		}
	}
	if len(train) == 0 {
		return nil, errors.New("fit stats: empty training split")
	}
	s := &Stats{Version: StatsVersion, TrainRows: len(train), Columns: map[string]ColumnStats{}}
	if m.cfg.LabelColumn != "" {
		if err := m.fitLabel(s, train); err != nil {
			return nil, err
		}
	}
	cols, err := m.columns(nil, true)
	if err != nil {
		return nil, err
	}
	for _, c := range cols {
		cs, err := m.fitColumn(c, train)
		if err != nil {
			return nil, err
		}
		if cs.Moments != nil || cs.Vocab != nil {
			s.Columns[c.name] = cs
		}
	}
	s.index()
	return s, nil
}

func (m *Manifest) fitLabel(s *Stats, train []int) error {
	name := m.cfg.LabelColumn
	switch m.cfg.labelKind() {
	case LabelCategory:
		if len(m.cfg.LabelClasses) > 0 {
			s.Categories = append([]string(nil), m.cfg.LabelClasses...)
			return nil
		}
		seen := map[string]bool{}
		var cats []string
		for _, i := range train {
			l, _ := categoryString(m.cell(m.rows[i], name))
			if !seen[l] {
				seen[l] = true
				cats = append(cats, l)
			}
		}
		s.Categories = SortCategories(cats)
	case LabelNumber, LabelVector:
		if !m.cfg.NormalizeLabel {
			return nil
		}
		acc := NewMomentsAccumulator(m.vecLen)
		buf := make([]float32, m.vecLen)
		for _, i := range train {
			v, _ := parseVector(m.cell(m.rows[i], name))
			for k, x := range v {
				buf[k] = float32(x)
			}
			if err := acc.AddInterleaved(buf); err != nil {
				return err
			}
		}
		s.Label = acc.Moments()
	case LabelTokens:
		if !m.cfg.LabelText.NeedsVocab() {
			return nil
		}
		v, err := m.buildVocab(name, false, m.cfg.LabelText, train)
		if err != nil {
			return err
		}
		s.Columns[name] = ColumnStats{Vocab: v}
	}
	return nil
}

func (m *Manifest) buildVocab(name string, fromFile bool, cfg TextConfig, train []int) (*Vocab, error) {
	vb, err := NewVocabBuilder(cfg.tokenizer(), cfg.Vocab)
	if err != nil {
		return nil, err
	}
	for _, i := range train {
		r := m.rows[i]
		c := m.cell(r, name)
		if c.empty() {
			continue
		}
		text, err := m.readText(c.s, fromFile)
		if err == nil {
			err = vb.Add(text)
		}
		if err != nil {
			return nil, m.rowErr(r.line, name, err)
		}
	}
	return vb.Build(), nil
}

// fitColumn computes one input column's statistics, if it needs any.
func (m *Manifest) fitColumn(c *column, train []int) (ColumnStats, error) {
	spec := c.spec
	switch {
	case spec.Kind == KindText && spec.Text.NeedsVocab():
		v, err := m.buildVocab(c.name, spec.FromFile, spec.Text, train)
		return ColumnStats{Vocab: v}, err
	case spec.Kind == KindImage && spec.Image.Normalize == "dataset",
		spec.Kind == KindSensor && spec.Sensor.Normalize == "dataset",
		spec.Kind == KindVideo && spec.Video.Normalize == "dataset":
	default:
		return ColumnStats{}, nil
	}
	parts := make([]*MomentsAccumulator, len(train))
	err := forEachRow(context.Background(), len(train), m.workers(), func(k int) error {
		r := m.rows[train[k]]
		if m.cell(r, c.name).empty() {
			return nil
		}
		t, err := c.decodeRaw(m, m.cell(r, c.name).s)
		if err != nil {
			return m.rowErr(r.line, c.name, err)
		}
		switch spec.Kind {
		case KindImage:
			parts[k] = NewMomentsAccumulator(t.Shape[0])
			err = parts[k].AddPlanar(t.Data)
		case KindSensor:
			parts[k] = NewMomentsAccumulator(t.Shape[1])
			err = parts[k].AddInterleaved(t.Data)
		case KindVideo:
			parts[k] = NewMomentsAccumulator(t.Shape[1])
			err = parts[k].AddVideo(t)
		}
		if err != nil {
			return m.rowErr(r.line, c.name, err)
		}
		return nil
	})
	if err != nil {
		return ColumnStats{}, err
	}
	var acc *MomentsAccumulator
	for k, p := range parts { // merge in row order: deterministic
		if p == nil {
			continue
		}
		if acc == nil {
			acc = NewMomentsAccumulator(p.Channels())
		}
		if err := acc.Merge(p); err != nil {
			return ColumnStats{}, m.rowErr(m.rows[train[k]].line, c.name, fmt.Errorf("channel count differs from earlier rows: %w", err))
		}
	}
	if acc == nil {
		return ColumnStats{}, fmt.Errorf("column %q: no training values to compute statistics from", c.name)
	}
	return ColumnStats{Moments: acc.Moments()}, nil
}

func (m *Manifest) readText(cellText string, fromFile bool) (string, error) {
	if !fromFile {
		return cellText, nil
	}
	p := m.resolve(cellText)
	st, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if st.Size() > maxTextBytes {
		return "", &InputError{File: p, Err: fmt.Errorf("text file of %d bytes exceeds %d", st.Size(), maxTextBytes)}
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	if err := validateText(string(b)); err != nil {
		return "", &InputError{File: p, Err: err}
	}
	return string(b), nil
}

// column is a configured input column resolved against statistics.
type column struct {
	name, modality string
	spec           ColumnSpec
	seed           uint64 // per-column augmentation stream
	image          ImageConfig
	audio          *AudioDecoder
	text           TextConfig
	tok            Tokenizer // nil when only validating (vocab not built yet)
	sensor         SensorConfig
	video          VideoConfig
}

// columns resolves every input column. With raw set (checking, fitting)
// no statistics are applied and vocabularies are not required.
func (m *Manifest) columns(stats *Stats, raw bool) ([]*column, error) {
	var out []*column
	for _, name := range sortedKeys(m.cfg.Columns) {
		spec := m.cfg.Columns[name]
		h := fnv.New64a()
		h.Write([]byte(name))
		c := &column{name: name, modality: spec.modality(name), spec: spec, seed: h.Sum64(),
			image: spec.Image, text: spec.Text, sensor: spec.Sensor, video: spec.Video}
		var cs ColumnStats
		if stats != nil {
			cs = stats.Columns[name]
		}
		need := func(what string) error {
			return fmt.Errorf("column %q needs %s from the training split: fit statistics (FitStats) first or load the run's stats", name, what)
		}
		switch spec.Kind {
		case KindImage:
			if spec.Image.Normalize == "dataset" && !raw {
				if cs.Moments == nil {
					return nil, need("per-channel moments")
				}
				if len(cs.Moments.Mean) != spec.Image.channels() {
					return nil, fmt.Errorf("column %q: statistics have %d channels, config %d", name, len(cs.Moments.Mean), spec.Image.channels())
				}
				c.image.Mean, c.image.Std = cs.Moments.Float32()
				c.image.Normalize = "" // resolved into Mean/Std
			}
		case KindAudio:
			d, err := NewAudioDecoder(spec.Audio)
			if err != nil {
				return nil, err
			}
			c.audio = d
		case KindText:
			switch {
			case !spec.Text.NeedsVocab():
				c.tok = m.gpt2
			case raw:
			case cs.Vocab == nil:
				return nil, need("a vocabulary")
			default:
				c.tok = cs.Vocab
			}
		case KindSensor:
			if raw {
				c.sensor.Length = 0
			}
			if spec.Sensor.Normalize == "dataset" && !raw {
				if cs.Moments == nil {
					return nil, need("per-channel moments")
				}
				if len(spec.Sensor.Channels) > 0 && len(cs.Moments.Mean) != len(spec.Sensor.Channels) {
					return nil, fmt.Errorf("column %q: statistics have %d channels, config %d", name, len(cs.Moments.Mean), len(spec.Sensor.Channels))
				}
				c.sensor.Mean, c.sensor.Std = cs.Moments.Float32()
				c.sensor.Normalize = ""
			}
		case KindVideo:
			if spec.Video.Normalize == "dataset" && !raw {
				if cs.Moments == nil {
					return nil, need("per-channel moments")
				}
				if len(cs.Moments.Mean) != spec.Video.image().channels() {
					return nil, fmt.Errorf("column %q: statistics have %d channels, config %d", name, len(cs.Moments.Mean), spec.Video.image().channels())
				}
				c.video.Mean, c.video.Std = cs.Moments.Float32()
				c.video.Normalize = ""
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// decodeRaw decodes a cell without normalisation, augmentation or padding
// (for statistics).
func (c *column) decodeRaw(m *Manifest, v string) (Tensor, error) {
	p := m.resolve(v)
	switch c.spec.Kind {
	case KindImage:
		cfg := c.spec.Image
		cfg.Mean, cfg.Std, cfg.Augment = nil, nil, ImageAugment{}
		return LoadImage(p, cfg)
	case KindSensor:
		cfg := c.spec.Sensor
		cfg.Mean, cfg.Std, cfg.Length = nil, nil, 0
		return LoadSensorCSV(p, cfg)
	case KindVideo:
		cfg := c.spec.Video
		cfg.Mean, cfg.Std = nil, nil
		return LoadVideo(p, cfg)
	}
	return Tensor{}, fmt.Errorf("column %q: no raw decoding for kind %s", c.name, c.spec.Kind)
}

// decode produces the column's input for row r: a tensor or token ids, and
// whether the modality is present. rng is nil for evaluation (no
// augmentation). Errors are *InputError naming the manifest row and column.
func (c *column) decode(m *Manifest, r manifestRow, rng *rand.Rand) (Tensor, []int, bool, error) {
	v := m.cell(r, c.name)
	if v.empty() {
		if !c.spec.Optional {
			return Tensor{}, nil, false, m.rowErr(r.line, c.name, errors.New("empty value"))
		}
		t, ids := c.missing()
		return t, ids, false, nil
	}
	t, ids, err := c.decodeValue(m, v.s, rng)
	if err != nil {
		return Tensor{}, nil, false, m.rowErr(r.line, c.name, err)
	}
	return t, ids, true, nil
}

// missing returns the placeholder of an absent optional modality.
func (c *column) missing() (Tensor, []int) {
	if c.spec.Kind == KindText {
		ids := make([]int, c.text.Length)
		if c.tok != nil {
			for i := range ids {
				ids[i] = c.tok.Specials().Pad
			}
		}
		return Tensor{}, ids
	}
	var shape []int
	switch c.spec.Kind {
	case KindImage:
		shape = c.image.OutputShape()
	case KindAudio:
		shape = c.spec.Audio.OutputShape()
	case KindSensor:
		shape = c.spec.Sensor.SampleShape()
	case KindVideo:
		shape = c.video.OutputShape()
	}
	t, _ := NewTensor(shape...)
	return t, nil
}

func (c *column) decodeValue(m *Manifest, v string, rng *rand.Rand) (Tensor, []int, error) {
	switch c.spec.Kind {
	case KindImage:
		cfg := c.image
		cfg.Mean, cfg.Std = nil, nil
		cfg.Augment = ImageAugment{}
		t, err := LoadImage(m.resolve(v), cfg)
		if err != nil {
			return Tensor{}, nil, err
		}
		a := c.image.Augment
		if rng != nil && (a.CropHeight > 0 || a.FlipHorizontal || a.FlipVertical) {
			t, err = CropFlip(t, a, rng)
		} else if a.CropHeight > 0 {
			t, err = CropFlip(t, a, nil)
		}
		if err == nil && len(c.image.Mean) > 0 {
			err = NormalizeChannels(t, c.image.Mean, c.image.Std)
		}
		return t, nil, err
	case KindAudio:
		t, err := c.audio.Load(m.resolve(v))
		if err == nil && rng != nil && c.spec.Audio.AddNoise {
			AddNoise(t.Data, c.spec.Audio.NoiseSNR, rng)
		}
		return t, nil, err
	case KindText:
		text, err := m.readText(v, c.spec.FromFile)
		if err != nil {
			return Tensor{}, nil, err
		}
		if c.tok == nil { // validating before the vocabulary exists
			if err := validateText(text); err != nil {
				return Tensor{}, nil, err
			}
			if !c.text.AllowEmpty && strings.TrimSpace(text) == "" {
				return Tensor{}, nil, errors.New("empty text")
			}
			return Tensor{}, nil, nil
		}
		ids, _, err := EncodeText(c.tok, text, c.text)
		return Tensor{}, ids, err
	case KindSensor:
		t, err := LoadSensorCSV(m.resolve(v), c.sensor)
		return t, nil, err
	case KindVideo:
		t, err := LoadVideo(m.resolve(v), c.video)
		return t, nil, err
	}
	return Tensor{}, nil, fmt.Errorf("unknown column kind %q", c.spec.Kind)
}

// DatasetOptions configure a ManifestDataset.
type DatasetOptions struct {
	// Augment enables the seeded training augmentations (image crop/flip,
	// audio noise) in GetEpoch. Leave it off for validation and test data.
	Augment bool
	// Seed of the augmentation streams; sample i of epoch e always gets the
	// same augmentation (see AugmentSeed).
	Seed uint64
}

// ManifestDataset is a Dataset over a manifest's rows, decoding files on
// demand with the statistics of the training split applied. It is safe for
// concurrent use, and implements GetEpoch for seeded augmentation.
type ManifestDataset struct {
	m          *Manifest
	stats      *Stats
	opts       DatasetOptions
	cols       []*column
	labelTok   Tokenizer
	classIndex map[string]int
	labelMean  []float32
	labelStd   []float32
}

// Dataset builds the dataset. stats may be nil only when no column or label
// needs training statistics.
func (m *Manifest) Dataset(stats *Stats, opts DatasetOptions) (*ManifestDataset, error) {
	cols, err := m.columns(stats, false)
	if err != nil {
		return nil, err
	}
	d := &ManifestDataset{m: m, stats: stats, opts: opts, cols: cols}
	if m.cfg.LabelColumn == "" {
		return d, nil
	}
	switch m.cfg.labelKind() {
	case LabelCategory:
		if stats == nil || len(stats.Categories) == 0 {
			if len(m.cfg.LabelClasses) == 0 {
				return nil, errors.New("category labels need the training split's categories: fit statistics (FitStats) first or load the run's stats")
			}
			d.classIndex = indexStrings(m.cfg.LabelClasses)
		} else {
			d.classIndex = indexStrings(stats.Categories)
		}
	case LabelNumber, LabelVector:
		if m.cfg.NormalizeLabel {
			if stats == nil || stats.Label == nil {
				return nil, errors.New("normalize_label needs the training split's label moments: fit statistics first")
			}
			if len(stats.Label.Mean) != m.vecLen {
				return nil, fmt.Errorf("label statistics have %d components, the manifest's labels %d", len(stats.Label.Mean), m.vecLen)
			}
			d.labelMean, d.labelStd = stats.Label.Float32()
		}
	case LabelTokens:
		if m.cfg.LabelText.NeedsVocab() {
			if stats == nil || stats.Columns[m.cfg.LabelColumn].Vocab == nil {
				return nil, errors.New("token labels need the training split's vocabulary: fit statistics first")
			}
			d.labelTok = stats.Columns[m.cfg.LabelColumn].Vocab
		} else {
			d.labelTok = m.gpt2
		}
	}
	return d, nil
}

func indexStrings(xs []string) map[string]int {
	out := make(map[string]int, len(xs))
	for i, x := range xs {
		out[x] = i
	}
	return out
}

// Len implements Dataset.
func (d *ManifestDataset) Len() int { return len(d.m.rows) }

// Manifest returns the manifest the dataset reads.
func (d *ManifestDataset) Manifest() *Manifest { return d.m }

// NumClasses is the number of categories (0 for other label kinds).
func (d *ManifestDataset) NumClasses() int { return len(d.classIndex) }

// Get implements Dataset: sample i without augmentation.
func (d *ManifestDataset) Get(i int) (Sample, error) { return d.get(i, nil) }

// VariesWithEpoch reports whether GetEpoch differs between epochs (only
// with augmentation); the Loader may cache the dataset when it does not.
func (d *ManifestDataset) VariesWithEpoch() bool { return d.opts.Augment }

// GetEpoch returns sample i as seen in epoch (augmented when
// DatasetOptions.Augment is set; identical to Get otherwise).
func (d *ManifestDataset) GetEpoch(i, epoch int) (Sample, error) {
	if !d.opts.Augment {
		return d.get(i, nil)
	}
	seed := AugmentSeed(d.opts.Seed, epoch, i)
	return d.get(i, &seed)
}

func (d *ManifestDataset) get(i int, seed *uint64) (Sample, error) {
	if i < 0 || i >= len(d.m.rows) {
		return Sample{}, fmt.Errorf("manifest %s: sample %d out of range [0,%d)", d.m.cfg.Path, i, len(d.m.rows))
	}
	r := d.m.rows[i]
	s := Sample{Index: i, Inputs: map[string]Tensor{}, Tokens: map[string][]int{}, Present: map[string]bool{}, Label: Label{Class: NoClass}}
	for _, c := range d.cols {
		var rng *rand.Rand
		if seed != nil {
			rng = NewAugmentRand(*seed ^ c.seed)
		}
		t, ids, present, err := c.decode(d.m, r, rng)
		if err != nil {
			return Sample{}, err
		}
		switch {
		case c.spec.Kind == KindText:
			s.Tokens[c.modality] = ids
		case c.spec.Kind == KindSensor && present:
			// Samples hold sensor series channels first, [C, T], as the
			// sensor preprocessor takes them; files are time-major.
			if s.Inputs[c.modality], err = ChannelsFirst(t); err != nil {
				return Sample{}, &InputError{File: d.m.cfg.Path, Row: r.line, Column: c.name, Err: err}
			}
		default:
			s.Inputs[c.modality] = t
		}
		s.Present[c.modality] = present
	}
	if err := d.label(r, &s.Label); err != nil {
		return Sample{}, err
	}
	return s, nil
}

func (d *ManifestDataset) label(r manifestRow, l *Label) error {
	name := d.m.cfg.LabelColumn
	if name == "" {
		return nil
	}
	c := d.m.cell(r, name)
	switch d.m.cfg.labelKind() {
	case LabelCategory:
		s, err := categoryString(c)
		if err != nil {
			return d.m.rowErr(r.line, name, err)
		}
		id, ok := d.classIndex[s]
		if !ok {
			return d.m.rowErr(r.line, name, fmt.Errorf("unknown label %q: not among the %d training categories", s, len(d.classIndex)))
		}
		l.Class = id
	case LabelNumber, LabelVector:
		v, err := parseVector(c)
		if err != nil {
			return d.m.rowErr(r.line, name, err)
		}
		l.Vector = make([]float32, len(v))
		for k, x := range v {
			l.Vector[k] = float32(x)
			if d.labelMean != nil {
				l.Vector[k] = (l.Vector[k] - d.labelMean[k]) / d.labelStd[k]
			}
		}
	case LabelTokens:
		ids, _, err := EncodeText(d.labelTok, c.s, d.m.cfg.LabelText)
		if err != nil {
			return d.m.rowErr(r.line, name, err)
		}
		l.Tokens = ids
	}
	return nil
}
