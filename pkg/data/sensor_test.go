package data

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadSensorCSVMacro(t *testing.T) {
	// Real quarterly US macro data (statsmodels' macrodata), 16 quarters.
	x, err := LoadSensorCSV(fixture("sensor", "macro_00.csv"), SensorConfig{TimeColumn: "t"})
	if err != nil {
		t.Fatal(err)
	}
	shapeIs(t, "macro", x.Shape, 16, 5)
	sliceNear(t, "first row", x.Data[:5], []float32{2710.349, 1707.4, 286.898, 5.8, 0}, 0)
	sliceNear(t, "last row", x.Data[75:], []float32{3100.563, 1945.1, 325.650, 5.5, 0.79}, 0)

	// Channel selection and order, normalisation, then padding to 20 rows.
	y, err := LoadSensorCSV(fixture("sensor", "macro_00.csv"), SensorConfig{
		Channels: []string{"infl", "unemp"}, Mean: []float32{1, 5}, Std: []float32{2, 0.5}, Length: 20})
	if err != nil {
		t.Fatal(err)
	}
	shapeIs(t, "selected", y.Shape, 20, 2)
	sliceNear(t, "selected row 0", y.Data[:2], []float32{(0 - 1) / 2.0, (5.8 - 5) / 0.5}, 1e-6)
	sliceNear(t, "padding", y.Data[32:], make([]float32, 8), 0)

	// Centre trim to 8 rows keeps rows 4..11.
	z, _ := LoadSensorCSV(fixture("sensor", "macro_00.csv"), SensorConfig{TimeColumn: "t", Length: 8, Align: "center"})
	sliceNear(t, "centre trim", z.Data, x.Data[4*5:12*5], 0)
}

func TestReadSensorCSVErrors(t *testing.T) {
	cases := []struct {
		name, file string
		cfg        SensorConfig
		row        int
		column     string
		want       string
	}{
		{"nan", "bad_nan.csv", SensorConfig{TimeColumn: "t"}, 6, "realinv", `value "NaN" is not finite`},
		{"ragged", "bad_ragged.csv", SensorConfig{TimeColumn: "t"}, 8, "", "5 fields, header has 6"},
		{"no channel", "macro_00.csv", SensorConfig{Channels: []string{"gdp"}}, 1, "", `channel "gdp" not in header`},
		{"no time column", "macro_00.csv", SensorConfig{TimeColumn: "time"}, 1, "", `time column "time"`},
	}
	for _, tc := range cases {
		_, err := LoadSensorCSV(fixture("sensor", tc.file), tc.cfg)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: %v is not an *InputError", tc.name, err)
			continue
		}
		if !strings.HasSuffix(ie.File, tc.file) || ie.Row != tc.row || ie.Column != tc.column || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got file %q row %d column %q: %v; want row %d column %q and %q", tc.name, ie.File, ie.Row, ie.Column, err, tc.row, tc.column, tc.want)
		}
	}
	inline := []struct{ csv, want string }{
		{"a,b\n1,\n", "empty value"},
		{"a,b\n1,x\n", `"x" is not a number`},
		{"a,b\n1,1e99\n", "out of float32 range"},
		{"a,b\n1,Inf\n", "not finite"},
		{"a,b\n", "no data rows"},
		{"", "no data rows"},
		{"a,a\n1,2\n", "duplicate column"},
		{"a,b\n1,\"2\n", "extraneous or missing"},
	}
	for _, tc := range inline {
		_, err := ReadSensorCSV(strings.NewReader(tc.csv), "x.csv", SensorConfig{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "x.csv") {
			t.Errorf("%q: %v, want %q", tc.csv, err, tc.want)
		}
	}
	if x, err := ReadSensorCSV(strings.NewReader("1,2\n3,4\n"), "n.csv", SensorConfig{NoHeader: true}); err != nil || !sameShape(x.Shape, []int{2, 2}) {
		t.Errorf("no header: %v %v", x.Shape, err)
	}
}
