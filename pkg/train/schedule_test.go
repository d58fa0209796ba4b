package train

import (
	"math"
	"testing"
)

func TestSchedules(t *testing.T) {
	cases := []struct {
		name string
		cfg  ScheduleConfig
		at   map[int]float64
	}{
		{"constant", ScheduleConfig{Base: 0.1}, map[int]float64{0: 0.1, 1000: 0.1}},
		{"step", ScheduleConfig{Kind: "step", Base: 1, StepSize: 10, Gamma: 0.5}, map[int]float64{0: 1, 9: 1, 10: 0.5, 25: 0.25}},
		// cosine over 100 steps: half way is the midpoint of base and floor.
		{"cosine", ScheduleConfig{Kind: "cosine", Base: 1, MinLR: 0.1, Total: 100}, map[int]float64{0: 1, 50: 0.55, 100: 0.1, 200: 0.1}},
		{"warmup+cosine", ScheduleConfig{Kind: "cosine", Base: 1, Total: 110, Warmup: 10}, map[int]float64{0: 0.1, 4: 0.5, 9: 1, 10: 1, 60: 0.5}},
	}
	for _, tc := range cases {
		s, err := NewSchedule(tc.cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for step, want := range tc.at {
			if got := s(step); math.Abs(got-want) > 1e-12 {
				t.Errorf("%s: lr(%d) = %g, want %g", tc.name, step, got, want)
			}
		}
	}
	for _, bad := range []ScheduleConfig{{Base: 0}, {Kind: "cosine", Base: 1}, {Kind: "exp", Base: 1}, {Kind: "step", Base: 1}} {
		if _, err := NewSchedule(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
