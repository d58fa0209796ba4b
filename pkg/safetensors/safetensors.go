// Package safetensors reads and writes the safetensors format
// (huggingface/safetensors): an 8-byte little-endian header length, a JSON
// header mapping tensor names to dtype, shape and byte offsets (plus an
// optional "__metadata__" map of strings), then the raw little-endian
// tensor bytes. lsfuse uses it for checkpoints (weights, optimiser state,
// resolved config in the metadata) and for `lsfuse export --format
// safetensors`. Files are written atomically: temporary file, fsync,
// rename, fsync of the directory.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// Tensor is one named array. Exactly one of F32, F64, I64 is set.
type Tensor struct {
	Shape []int
	F32   []float32
	F64   []float64
	I64   []int64
}

func (t Tensor) dtype() (string, int, error) {
	n := 0
	switch {
	case t.F32 != nil:
		n = len(t.F32)
	case t.F64 != nil:
		n = len(t.F64)
	case t.I64 != nil:
		n = len(t.I64)
	default:
		if numel(t.Shape) != 0 {
			return "", 0, fmt.Errorf("no data")
		}
		return "F32", 0, nil
	}
	if n != numel(t.Shape) {
		return "", 0, fmt.Errorf("%d values for shape %v", n, t.Shape)
	}
	switch {
	case t.F32 != nil:
		return "F32", 4 * n, nil
	case t.F64 != nil:
		return "F64", 8 * n, nil
	}
	return "I64", 8 * n, nil
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

type entry struct {
	Dtype   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets [2]int `json:"data_offsets"`
}

// Encode writes tensors (in name order) and metadata to w.
func Encode(w io.Writer, tensors map[string]Tensor, meta map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		if n == "__metadata__" {
			return fmt.Errorf("safetensors: tensor name %q is reserved", n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	off := 0
	for _, n := range names {
		dt, size, err := tensors[n].dtype()
		if err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", n, err)
		}
		shape := tensors[n].Shape
		if shape == nil {
			shape = []int{}
		}
		header[n] = entry{Dtype: dt, Shape: shape, Offsets: [2]int{off, off + size}}
		off += size
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return err
	}
	// Pad the header with spaces to a multiple of 8 bytes (alignment).
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	var lenb [8]byte
	binary.LittleEndian.PutUint64(lenb[:], uint64(len(hb)))
	if _, err := w.Write(lenb[:]); err != nil {
		return err
	}
	if _, err := w.Write(hb); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for _, n := range names {
		t := tensors[n]
		buf = buf[:0]
		for _, v := range t.F32 {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
		for _, v := range t.F64 {
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
		}
		for _, v := range t.I64 {
			buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// Decode reads a whole safetensors stream. F16/BF16 and other dtypes are
// rejected with an error naming the tensor.
func Decode(data []byte) (map[string]Tensor, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("safetensors: file too short (%d bytes)", len(data))
	}
	hl := binary.LittleEndian.Uint64(data[:8])
	if hl > uint64(len(data)-8) || hl > 100<<20 {
		return nil, nil, fmt.Errorf("safetensors: header length %d exceeds file size %d", hl, len(data))
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data[8 : 8+hl]))
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, fmt.Errorf("safetensors: bad header: %w", err)
	}
	body := data[8+hl:]
	var meta map[string]string
	out := map[string]Tensor{}
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("safetensors: bad metadata: %w", err)
			}
			continue
		}
		var e entry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: bad entry: %w", name, err)
		}
		a, b := e.Offsets[0], e.Offsets[1]
		if a < 0 || b < a || b > len(body) {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: offsets [%d,%d) outside data of %d bytes", name, a, b, len(body))
		}
		for _, d := range e.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("safetensors: tensor %q: negative dimension in %v", name, e.Shape)
			}
		}
		bs := body[a:b]
		n := 1
		for _, d := range e.Shape {
			if d != 0 && n > len(bs)/d {
				return nil, nil, fmt.Errorf("safetensors: tensor %q: shape %v larger than its %d bytes", name, e.Shape, len(bs))
			}
			n *= d
		}
		t := Tensor{Shape: e.Shape}
		width := map[string]int{"F32": 4, "F64": 8, "I64": 8}[e.Dtype]
		if width == 0 {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: unsupported dtype %s (lsfuse reads F32, F64, I64)", name, e.Dtype)
		}
		if len(bs) != n*width {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %d bytes for shape %v of %s", name, len(bs), e.Shape, e.Dtype)
		}
		switch e.Dtype {
		case "F32":
			t.F32 = make([]float32, n)
			for i := range t.F32 {
				t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(bs[4*i:]))
			}
		case "F64":
			t.F64 = make([]float64, n)
			for i := range t.F64 {
				t.F64[i] = math.Float64frombits(binary.LittleEndian.Uint64(bs[8*i:]))
			}
		case "I64":
			t.I64 = make([]int64, n)
			for i := range t.I64 {
				t.I64[i] = int64(binary.LittleEndian.Uint64(bs[8*i:]))
			}
		}
		out[name] = t
	}
	return out, meta, nil
}

// WriteFile writes tensors and metadata to path atomically: a crash leaves
// either the old file or the new one, never a torn file.
func WriteFile(path string, tensors map[string]Tensor, meta map[string]string) error {
	var buf bytes.Buffer
	if err := Encode(&buf, tensors, meta); err != nil {
		return err
	}
	return WriteAtomic(path, buf.Bytes())
}

// ReadFile reads a safetensors file; errors name the path.
func ReadFile(path string) (map[string]Tensor, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	t, m, err := Decode(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, m, nil
}

// WriteAtomic writes data to path through a temporary file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory.
func WriteAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
