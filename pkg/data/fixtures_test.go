package data

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// fixture is the path of a committed test fixture under testdata/data
// (made by testdata/data/make_fixtures.sh).
func fixture(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "testdata", "data"}, parts...)...)
}

func readFixture(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// near fails when |got-want| > tol.
func near(t testing.TB, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.6g, want %.6g ± %.2g", what, got, want, tol)
	}
}

// sliceNear compares float32 slices elementwise.
func sliceNear(t testing.TB, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > tol {
			if bad < 5 {
				t.Errorf("%s[%d] = %v, want %v ± %g", what, i, got[i], want[i], tol)
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d values off in all", what, bad)
	}
}

func shapeIs(t testing.TB, what string, got []int, want ...int) {
	t.Helper()
	if !sameShape(got, want) {
		t.Fatalf("%s shape %v, want %v", what, got, want)
	}
}
