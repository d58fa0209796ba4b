package data

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// InputError reports bad input data: a file that cannot be read or decoded,
// a malformed manifest row, a bad value in a cell. File is the file at fault
// (as the user named it: a manifest path, or a data path relative to its
// manifest); Row is the 1-based line number within File (0 when the error is
// not tied to a line); Column names the manifest column or CSV channel
// ("" when not applicable). Err is the underlying cause and may itself be an
// *InputError for a file referenced from a manifest row, so messages read
// "manifest.csv:5: column "image": img/3.png: png: invalid format".
type InputError struct {
	File   string
	Row    int
	Column string
	Err    error
}

// Error formats the location then the cause.
func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Row > 0 {
		fmt.Fprintf(&b, ":%d", e.Row)
	}
	if e.Column != "" {
		fmt.Fprintf(&b, ": column %q", e.Column)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *InputError) Unwrap() error { return e.Err }

// Sentinel causes, testable with errors.Is through any InputError chain.
var (
	// ErrUnsupported marks a well-formed input in a format or encoding that
	// lsfuse does not read (e.g. a compressed WAV, a 12-bit IDX type).
	ErrUnsupported = errors.New("unsupported format")
	// ErrTruncated marks a file that ends before its header says it should.
	ErrTruncated = errors.New("truncated file")
	// ErrFFmpegMissing is returned when a video needs ffmpeg and no ffmpeg
	// executable is on PATH.
	ErrFFmpegMissing = errors.New("ffmpeg not found on PATH: install ffmpeg (Debian: apt-get install ffmpeg) to read this video format, or convert it to a frame folder or animated GIF")
)

// inputErr wraps err with a file location. A nil err stays nil. When err is
// already an *InputError for the same file, its more specific location is
// kept and only missing fields are filled in.
func inputErr(file string, row int, column string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == file {
		err = fmt.Errorf("%s: %w", pe.Op, pe.Err) // the path is already in File
	}
	var ie *InputError
	if errors.As(err, &ie) && ie.File == file {
		out := *ie
		if out.Row == 0 {
			out.Row = row
		}
		if out.Column == "" {
			out.Column = column
		}
		return &out
	}
	return &InputError{File: file, Row: row, Column: column, Err: err}
}
