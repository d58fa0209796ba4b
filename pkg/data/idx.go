package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
)

// IDX element types (the third byte of the magic number).
const (
	IDXUint8   = 0x08
	IDXInt8    = 0x09
	IDXInt16   = 0x0B
	IDXInt32   = 0x0C
	IDXFloat32 = 0x0D
	IDXFloat64 = 0x0E
)

// IDX is an array read from an IDX file (the MNIST / Fashion-MNIST format):
// a big-endian header, then the elements in row-major order. Raw keeps the
// payload exactly as stored (big-endian); use At or Item to read values.
type IDX struct {
	Type byte  // one of IDXUint8 … IDXFloat64
	Dims []int // e.g. [60000 28 28] for MNIST training images
	Raw  []byte
}

func idxElemSize(t byte) (int, error) {
	switch t {
	case IDXUint8, IDXInt8:
		return 1, nil
	case IDXInt16:
		return 2, nil
	case IDXInt32, IDXFloat32:
		return 4, nil
	case IDXFloat64:
		return 8, nil
	}
	return 0, fmt.Errorf("IDX element type 0x%02x: %w", t, ErrUnsupported)
}

// maxIDXElements bounds the element count a header may declare (4 GiB of
// uint8), so that a corrupt header is rejected before anything is allocated.
const maxIDXElements = 1 << 32

// OpenIDX reads an IDX file, gzip-compressed or not (detected from the gzip
// magic bytes, not the file name). Errors are *InputError naming path.
func OpenIDX(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, inputErr(path, 0, "", err)
	}
	defer f.Close()
	x, err := ReadIDX(f)
	return x, inputErr(path, 0, "", err)
}

// ReadIDX reads an IDX array from r, transparently gunzipping a gzip stream.
// A header that promises more data than the stream holds is ErrTruncated;
// trailing bytes after the payload are an error too.
func ReadIDX(r io.Reader) (*IDX, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("IDX magic: %w", ErrTruncated)
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, fmt.Errorf("not an IDX file (magic %02x%02x%02x%02x)", hdr[0], hdr[1], hdr[2], hdr[3])
	}
	size, err := idxElemSize(hdr[2])
	if err != nil {
		return nil, err
	}
	nd := int(hdr[3])
	if nd == 0 {
		return nil, fmt.Errorf("IDX file has 0 dimensions")
	}
	dims := make([]int, nd)
	n := uint64(1)
	for i := range dims {
		var d [4]byte
		if _, err := io.ReadFull(br, d[:]); err != nil {
			return nil, fmt.Errorf("IDX dimension %d: %w", i, ErrTruncated)
		}
		v := binary.BigEndian.Uint32(d[:])
		dims[i] = int(v)
		n *= uint64(v)
		if n > maxIDXElements {
			return nil, fmt.Errorf("IDX dimensions %v exceed %d elements", dims[:i+1], uint64(maxIDXElements))
		}
	}
	want := int64(n) * int64(size)
	// Grow with the data actually present rather than trusting the header.
	var buf bytes.Buffer
	got, err := io.Copy(&buf, io.LimitReader(br, want+1))
	if err != nil {
		return nil, fmt.Errorf("IDX payload: %w", err)
	}
	if got < want {
		return nil, fmt.Errorf("IDX header %v needs %d payload bytes, file has %d: %w", dims, want, got, ErrTruncated)
	}
	if got > want {
		return nil, fmt.Errorf("IDX header %v needs %d payload bytes, file has more", dims, want)
	}
	return &IDX{Type: hdr[2], Dims: dims, Raw: buf.Bytes()}, nil
}

// Len is the size of the first dimension (the number of items).
func (x *IDX) Len() int { return x.Dims[0] }

// itemSize is the number of elements per item (product of Dims[1:]).
func (x *IDX) itemSize() int {
	n := 1
	for _, d := range x.Dims[1:] {
		n *= d
	}
	return n
}

// At returns element k of the flattened array as float64.
func (x *IDX) At(k int) float64 {
	switch x.Type {
	case IDXUint8:
		return float64(x.Raw[k])
	case IDXInt8:
		return float64(int8(x.Raw[k]))
	case IDXInt16:
		return float64(int16(binary.BigEndian.Uint16(x.Raw[2*k:])))
	case IDXInt32:
		return float64(int32(binary.BigEndian.Uint32(x.Raw[4*k:])))
	case IDXFloat32:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(x.Raw[4*k:])))
	default:
		return math.Float64frombits(binary.BigEndian.Uint64(x.Raw[8*k:]))
	}
}

// Item returns item i (a slice along the first axis) as a tensor of shape
// Dims[1:] multiplied by scale (use 1.0/255 for MNIST pixels in [0,1]).
func (x *IDX) Item(i int, scale float32) (Tensor, error) {
	if i < 0 || i >= x.Dims[0] {
		return Tensor{}, fmt.Errorf("IDX item %d out of range [0,%d)", i, x.Dims[0])
	}
	n := x.itemSize()
	t := Tensor{Shape: append([]int(nil), x.Dims[1:]...), Data: make([]float32, n)}
	if x.Type == IDXUint8 {
		for k, v := range x.Raw[i*n : (i+1)*n] {
			t.Data[k] = float32(v) * scale
		}
		return t, nil
	}
	for k := range t.Data {
		t.Data[k] = float32(x.At(i*n+k)) * scale
	}
	return t, nil
}

// Labels returns a 1-D integer IDX array (MNIST labels) as ints.
func (x *IDX) Labels() ([]int, error) {
	if len(x.Dims) != 1 || x.Type == IDXFloat32 || x.Type == IDXFloat64 {
		return nil, fmt.Errorf("IDX labels must be a 1-D integer array, got type 0x%02x dims %v", x.Type, x.Dims)
	}
	out := make([]int, x.Dims[0])
	for k := range out {
		out[k] = int(x.At(k))
	}
	return out, nil
}
