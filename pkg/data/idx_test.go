package data

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestReadIDXFashionMNIST(t *testing.T) {
	// The first 8 Fashion-MNIST training items; labels and pixel sums as read
	// by Python's gzip+struct when the fixture was made.
	for _, suffix := range []string{".idx", ".idx.gz"} {
		lab, err := OpenIDX(fixture("idx", "train8-labels"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		labels, err := lab.Labels()
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{9, 0, 0, 3, 0, 2, 7, 2}; !equalInts(labels, want) {
			t.Errorf("%s labels %v, want %v", suffix, labels, want)
		}
		img, err := OpenIDX(fixture("idx", "train8-images"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if img.Type != IDXUint8 || !sameShape(img.Dims, []int{8, 28, 28}) || img.Len() != 8 {
			t.Fatalf("%s: type %#x dims %v", suffix, img.Type, img.Dims)
		}
		for k, want := range []struct{ sum, centre int }{{76247, 217}, {84598, 204}, {28662, 85}} {
			it, err := img.Item(k, 1)
			if err != nil {
				t.Fatal(err)
			}
			shapeIs(t, "item", it.Shape, 28, 28)
			var sum float64
			for _, v := range it.Data {
				sum += float64(v)
			}
			near(t, "pixel sum", sum, float64(want.sum), 0)
			near(t, "centre pixel", float64(it.Data[14*28+14]), float64(want.centre), 0)
		}
		scaledItem, _ := img.Item(0, 1.0/255)
		near(t, "scaled centre", float64(scaledItem.Data[14*28+14]), 217.0/255, 1e-7)
		if _, err := img.Item(8, 1); err == nil {
			t.Error("item 8 of 8: no error")
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadIDXTypes(t *testing.T) {
	// int16 [2,2] big-endian: 1, -2, 300, -32768; float64 [1]: 0.5
	i16 := []byte{0, 0, IDXInt16, 2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 1, 0xff, 0xfe, 0x01, 0x2c, 0x80, 0x00}
	x, err := ReadIDX(bytes.NewReader(i16))
	if err != nil {
		t.Fatal(err)
	}
	it, _ := x.Item(1, 1)
	sliceNear(t, "int16 row 1", it.Data, []float32{300, -32768}, 0)
	if x.At(1) != -2 {
		t.Errorf("At(1) = %v", x.At(1))
	}
	f64 := []byte{0, 0, IDXFloat64, 1, 0, 0, 0, 1, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0}
	if x, err := ReadIDX(bytes.NewReader(f64)); err != nil || x.At(0) != 0.5 {
		t.Errorf("float64: %v %v", x, err)
	}
	if _, err := x.Labels(); err == nil {
		t.Error("2-D labels: no error")
	}
}

func TestReadIDXErrors(t *testing.T) {
	good := readFixture(t, "idx", "train8-labels.idx")
	cases := []struct {
		name string
		b    []byte
		want string
		is   error
	}{
		{"empty", nil, "magic", ErrTruncated},
		{"bad magic", []byte{1, 2, 8, 1, 0, 0, 0, 1, 0}, "not an IDX", nil},
		{"type", []byte{0, 0, 0x07, 1, 0, 0, 0, 1, 0}, "0x07", ErrUnsupported},
		{"truncated", good[:len(good)-2], "needs 8 payload bytes, file has 6", ErrTruncated},
		{"trailing", append(append([]byte(nil), good...), 1), "has more", nil},
		{"huge", []byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "exceed", nil},
		{"no dims", []byte{0, 0, 8, 0}, "0 dimensions", nil},
		{"bad gzip", []byte{0x1f, 0x8b, 1, 2, 3}, "gzip", nil},
	}
	for _, tc := range cases {
		_, err := ReadIDX(bytes.NewReader(tc.b))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v is not %v", tc.name, err, tc.is)
		}
	}
}
