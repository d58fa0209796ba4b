package data

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// committedRobot is the subset under testdata/ (mk/apps.mk).
const committedRobot = "../../testdata/robot"

func TestRobotExpertAction(t *testing.T) {
	const tol = 1e-12
	near := func(what string, got, want []float64) {
		t.Helper()
		for i := range want {
			if math.Abs(got[i]-want[i]) > tol {
				t.Errorf("%s: %v, want %v", what, got, want)
				return
			}
		}
	}
	// At the grasp point, level and aligned: no motion, nearly closed.
	a := RobotExpertAction(RobotState{X: 0.1, Y: -0.2, Z: RobotGraspHeight, Yaw: 0.3}, RobotTarget{X: 0.1, Y: -0.2, Yaw: 0.3})
	near("at the grasp point", a[:], []float64{0, 0, 0, 0, 0, 0, 1 / (1 + math.Exp(-4))})
	// The block is the same after a half turn: yaw π away needs no turn.
	a = RobotExpertAction(RobotState{Z: RobotGraspHeight, Yaw: 0.3 + math.Pi}, RobotTarget{Yaw: 0.3})
	near("half turn", a[5:6], []float64{0})
	// Proportional inside the limits, clamped outside; grip open far away.
	a = RobotExpertAction(RobotState{X: 0, Y: 0, Z: 0.25, Roll: 0.1, Pitch: -0.2, Yaw: 0}, RobotTarget{X: 0.1, Y: -0.9, Yaw: 0.4})
	near("proportional", a[:], []float64{0.15, -0.6, -0.3, -0.2, 0.4, 0.6, 1 / (1 + math.Exp((math.Sqrt(0.01+0.81+0.04)-0.08)/0.02))})
	a = RobotExpertAction(RobotState{Roll: 1.5, Yaw: -1.5}, RobotTarget{Yaw: 0})
	if a[3] != -RobotMaxAngular || a[5] != RobotMaxAngular {
		t.Errorf("angular rates %v not clamped to ±%v", a[3:6], RobotMaxAngular)
	}
	for _, c := range []struct{ in, want float64 }{{0, 0}, {math.Pi, 0}, {1.6, 1.6 - math.Pi}, {-1.6, math.Pi - 1.6}, {-math.Pi / 2, -math.Pi / 2}, {math.Pi / 2, -math.Pi / 2}} {
		if got := wrapHalfTurn(c.in); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("wrapHalfTurn(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestRobotCamera(t *testing.T) {
	cam := robotCamera{size: 64}
	// The table square fills the image at table height; the centre is the
	// middle; y points up in the image.
	for _, c := range []struct{ x, y, u, v float64 }{{0, 0, 32, 32}, {-0.5, 0.5, 0, 0}, {0.5, -0.5, 64, 64}} {
		u, v := cam.project(c.x, c.y, 0)
		if math.Abs(u-c.u) > 1e-9 || math.Abs(v-c.v) > 1e-9 {
			t.Errorf("project(%v, %v, 0) = (%v, %v), want (%v, %v)", c.x, c.y, u, v, c.u, c.v)
		}
	}
	u, v := cam.project(0.2, -0.1, 0.3)
	if x, y := cam.unproject(u, v, 0.3); math.Abs(x-0.2) > 1e-12 || math.Abs(y+0.1) > 1e-12 {
		t.Errorf("unproject(project) = (%v, %v)", x, y)
	}
	// Higher things look larger: 0.1 m spans more pixels at z = 0.4.
	u0, _ := cam.project(0.1, 0, 0)
	u1, _ := cam.project(0.1, 0, 0.4)
	if !(u1-32 > u0-32) {
		t.Errorf("no perspective: %v, %v", u0, u1)
	}
	// Rotating a state into the gripper frame and back: gravity in a level
	// gripper points up; rolled by 90° it points along y.
	if g := robotToBody(RobotState{}, [3]float64{0, 0, 9.81}); g != [3]float64{0, 0, 9.81} {
		t.Errorf("level: %v", g)
	}
	if g := robotToBody(RobotState{Roll: math.Pi / 2}, [3]float64{0, 0, 1}); math.Abs(g[1]-1) > 1e-12 || math.Abs(g[2]) > 1e-12 {
		t.Errorf("rolled: %v", g)
	}
}

// colourCentroid is the mean pixel position (u, v), at pixel centres, of
// the pixels of img [3,S,S] within 0.1 of colour c (after brightness).
func colourCentroid(img Tensor, c [3]float64, bright float64) (u, v float64, n int) {
	s := img.Shape[1]
	for y := range s {
		for x := range s {
			ok := true
			for k := range 3 {
				ok = ok && math.Abs(float64(img.Data[k*s*s+y*s+x])-c[k]*bright) < 0.1
			}
			if ok {
				u, v, n = u+float64(x)+0.5, v+float64(y)+0.5, n+1
			}
		}
	}
	return u / float64(n), v / float64(n), n
}

// TestGenerateRobot generates noise-free rows and checks that each action
// is the expert's function of the recorded state and block, that the
// sensors end at the recorded state, and that the camera shows the block
// and the gripper where the camera model puts them.
func TestGenerateRobot(t *testing.T) {
	cfg := DefaultRobotConfig()
	cfg.Train, cfg.Test, cfg.ImageSize, cfg.Steps = 12, 4, 48, 20
	cfg.Noise = RobotNoise{}
	dir := filepath.Join(t.TempDir(), "robot")
	res, err := GenerateRobot(context.Background(), dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Splits["train"], []int{12}) || !slices.Equal(res.Splits["test"], []int{4}) || res.Classes != nil {
		t.Fatalf("summary %+v", res)
	}
	rows := readManifestCSV(t, res.Manifest)
	num := func(row map[string]string, k string) float64 {
		v, err := strconv.ParseFloat(row[k], 64)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return v
	}
	gripCounts := [2]int{}
	for i, row := range rows {
		s := RobotState{X: num(row, "ee_x"), Y: num(row, "ee_y"), Z: num(row, "ee_z"), Roll: num(row, "roll"), Pitch: num(row, "pitch"), Yaw: num(row, "yaw")}
		tg := RobotTarget{X: num(row, "target_x"), Y: num(row, "target_y"), Yaw: num(row, "target_yaw")}
		want := RobotExpertAction(s, tg)
		fields := strings.Fields(row["action"])
		if len(fields) != 7 {
			t.Fatalf("row %d: action %q", i, row["action"])
		}
		for k, f := range fields {
			if v, _ := strconv.ParseFloat(f, 64); v != want[k] {
				t.Fatalf("row %d: action %v, the expert gives %v", i, fields, want)
			}
		}
		gripCounts[int(math.Round(want[6]))]++
		if s.Z < robotZMin || s.Z > robotZMax || math.Abs(s.X) > robotReach || math.Abs(s.Roll) > robotTiltMax {
			t.Fatalf("row %d: state %+v outside the limits", i, s)
		}

		series, err := LoadSensorCSV(filepath.Join(dir, row["sensors"]), SensorConfig{TimeColumn: "t", Channels: RobotSensorChannels})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(series.Shape, []int{20, 10}) {
			t.Fatalf("row %d: sensors %v", i, series.Shape)
		}
		last := series.Data[19*10:]
		for k, v := range []float64{s.X, s.Y, s.Z, s.Yaw} {
			if math.Abs(float64(last[6+k])-v) > 1e-4*max(1, math.Abs(v)) {
				t.Fatalf("row %d: last joint readings %v, state %+v", i, last[6:], s)
			}
		}
		// The accelerometer feels gravity (plus small accelerations and the
		// bias) along the gripper's tilted z axis.
		var mean [3]float64
		for step := range 20 {
			for k := range 3 {
				mean[k] += float64(series.Data[step*10+k]) / 20
			}
		}
		if g := math.Sqrt(mean[0]*mean[0] + mean[1]*mean[1] + mean[2]*mean[2]); math.Abs(g-robotGravity) > 0.5 {
			t.Fatalf("row %d: mean specific force %v (|·| %.2f), want about g", i, mean, g)
		}
		up := robotToBody(s, [3]float64{0, 0, 1})
		if f := float64(last[0])*up[0] + float64(last[1])*up[1] + float64(last[2])*up[2]; f < 7 {
			t.Fatalf("row %d: last specific force %v has %.2f along the gripper's up axis %v", i, last[:3], f, up)
		}

		img, err := LoadImage(filepath.Join(dir, row["camera"]), ImageConfig{Channels: 3})
		if err != nil {
			t.Fatal(err)
		}
		// The table's colour gives the frame's brightness.
		bright := float64(img.Data[0]) / robotTableRGB[0]
		cam := robotCamera{size: 48}
		gu, gv := cam.project(s.X, s.Y, s.Z)
		bu, bv := cam.project(tg.X, tg.Y, robotBlockHeight)
		if u, v, n := colourCentroid(img, robotGripperRGB, bright); n < 5 || math.Hypot(u-gu, v-gv) > 1 {
			t.Fatalf("row %d: gripper pixels (%d) centred at (%.1f, %.1f), the camera puts it at (%.1f, %.1f)", i, n, u, v, gu, gv)
		}
		if math.Hypot(bu-gu, bv-gv) > 8 { // block not hidden under the gripper
			if u, v, n := colourCentroid(img, robotBlockRGB, bright); n < 5 || math.Hypot(u-bu, v-bv) > 1 {
				t.Fatalf("row %d: block pixels (%d) centred at (%.1f, %.1f), the camera puts it at (%.1f, %.1f)", i, n, u, v, bu, bv)
			}
		}
	}
	if gripCounts[0] == 0 || gripCounts[1] == 0 {
		t.Errorf("grip commands open/closed %v: want both among 16 rows", gripCounts)
	}

	cfg.Workers = 1
	dir1 := filepath.Join(t.TempDir(), "robot1")
	if _, err := GenerateRobot(context.Background(), dir1, cfg); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"manifest.csv", rows[3]["camera"], rows[5]["sensors"]} {
		if a, b := mustRead(t, filepath.Join(dir, f)), mustRead(t, filepath.Join(dir1, f)); !bytes.Equal(a, b) {
			t.Fatalf("%s differs between 2 workers and 1", f)
		}
	}
}

func TestRobotConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		edit func(*RobotConfig)
		want string
	}{
		{func(c *RobotConfig) { c.Train, c.Test = 0, 0 }, "not both 0"},
		{func(c *RobotConfig) { c.ImageSize = 8 }, "image_size 8"},
		{func(c *RobotConfig) { c.Steps = 1 }, "steps 1"},
		{func(c *RobotConfig) { c.DT = 0 }, "dt 0"},
		{func(c *RobotConfig) { c.Noise.Gyro = math.NaN() }, "noise"},
		{func(c *RobotConfig) { c.Noise.Pixel = 2 }, "pixel ≤ 1"},
	} {
		cfg := DefaultRobotConfig()
		tc.edit(&cfg)
		if _, err := GenerateRobot(context.Background(), t.TempDir(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

// TestCommittedRobot decodes the committed subset as configs/robot.yaml
// reads it: channels-first sensor series and 7-vector labels.
func TestCommittedRobot(t *testing.T) {
	c := generatedConfig[RobotConfig](t, committedRobot)
	ds, rows := openCommitted(t, committedRobot, ManifestConfig{
		Columns: map[string]ColumnSpec{
			"camera":  {Kind: KindImage, Image: ImageConfig{Channels: 3, Height: c.ImageSize, Width: c.ImageSize}},
			"sensors": {Kind: KindSensor, Sensor: SensorConfig{TimeColumn: "t", Channels: RobotSensorChannels, Length: c.Steps, Normalize: "dataset"}},
		},
		LabelColumn: "action", LabelKind: LabelVector, NormalizeLabel: true,
	}, c.Train+c.Test)
	for i, row := range rows {
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Inputs["sensors"].Shape, []int{10, c.Steps}) || !slices.Equal(s.Inputs["camera"].Shape, []int{3, c.ImageSize, c.ImageSize}) || len(s.Label.Vector) != 7 {
			t.Fatalf("row %d: sensors %v camera %v label %v", i, s.Inputs["sensors"].Shape, s.Inputs["camera"].Shape, s.Label.Vector)
		}
		// The label is the standardised action.
		grip, _ := strconv.ParseFloat(strings.Fields(row["action"])[6], 64)
		if want := (grip - ds.stats.Label.Mean[6]) / ds.stats.Label.Std[6]; math.Abs(float64(s.Label.Vector[6])-want) > 1e-4 {
			t.Fatalf("row %d: label grip %v, want %v", i, s.Label.Vector[6], want)
		}
	}
}
