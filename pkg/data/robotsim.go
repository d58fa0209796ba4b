package data

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RobotState is the gripper's pose (see GenerateRobot for the frames).
type RobotState struct {
	X, Y, Z          float64 // tool centre point, metres
	Roll, Pitch, Yaw float64 // Z-Y-X Euler angles, radians
}

// RobotTarget is the block: centre on the table and the angle of its long
// side (modulo π).
type RobotTarget struct {
	X, Y, Yaw float64
}

// Expert controller constants (RobotExpertAction).
const (
	RobotGraspHeight = 0.05 // m: the grasp point is this high above the block's centre on the table
	RobotGainLinear  = 1.5  // 1/s
	RobotMaxLinear   = 0.6  // m/s
	RobotGainLevel   = 2.0  // 1/s, roll and pitch levelling
	RobotGainYaw     = 1.5  // 1/s
	RobotMaxAngular  = 2.0  // rad/s
	RobotGripRadius  = 0.08 // m: the gripper closure is 1/2 at this distance to the grasp point
	RobotGripWidth   = 0.02 // m: the closure sigmoid's width
)

// RobotActionNames name the 7 components of the action vector.
var RobotActionNames = []string{"vx", "vy", "vz", "wx", "wy", "wz", "grip"}

// RobotSensorChannels name the sensor CSV's channels (after its time
// column "t").
var RobotSensorChannels = []string{"imu_ax", "imu_ay", "imu_az", "imu_gx", "imu_gy", "imu_gz", "joint_x", "joint_y", "joint_z", "joint_yaw"}

// RobotExpertAction is the expert's command for gripper state s and block
// t, with e = (t.X − s.X, t.Y − s.Y, RobotGraspHeight − s.Z) and d = |e|:
//
//	v    = clamp(RobotGainLinear·e, ±RobotMaxLinear)                  (vx, vy, vz; per component)
//	wx   = clamp(−RobotGainLevel·roll, ±RobotMaxAngular)
//	wy   = clamp(−RobotGainLevel·pitch, ±RobotMaxAngular)
//	wz   = clamp(RobotGainYaw·wrap(t.Yaw − yaw), ±RobotMaxAngular)   wrap to [−π/2, π/2): the block is symmetric under a half turn
//	grip = 1 / (1 + exp((d − RobotGripRadius) / RobotGripWidth))     0 open … 1 closed
func RobotExpertAction(s RobotState, t RobotTarget) [7]float64 {
	clamp := func(v, m float64) float64 { return min(max(v, -m), m) }
	e := [3]float64{t.X - s.X, t.Y - s.Y, RobotGraspHeight - s.Z}
	d := math.Sqrt(e[0]*e[0] + e[1]*e[1] + e[2]*e[2])
	return [7]float64{
		clamp(RobotGainLinear*e[0], RobotMaxLinear),
		clamp(RobotGainLinear*e[1], RobotMaxLinear),
		clamp(RobotGainLinear*e[2], RobotMaxLinear),
		clamp(-RobotGainLevel*s.Roll, RobotMaxAngular),
		clamp(-RobotGainLevel*s.Pitch, RobotMaxAngular),
		clamp(RobotGainYaw*wrapHalfTurn(t.Yaw-s.Yaw), RobotMaxAngular),
		1 / (1 + math.Exp((d-RobotGripRadius)/RobotGripWidth)),
	}
}

// wrapHalfTurn maps an angle to [−π/2, π/2) modulo π.
func wrapHalfTurn(a float64) float64 {
	a = math.Mod(a+math.Pi/2, math.Pi)
	if a < 0 {
		a += math.Pi
	}
	return a - math.Pi/2
}

// RobotNoise are the sensor and pixel noise levels (standard deviations).
type RobotNoise struct {
	Accel    float64 `json:"accel"`    // m/s²
	Gyro     float64 `json:"gyro"`     // rad/s
	Position float64 `json:"position"` // m, gantry joints
	Yaw      float64 `json:"yaw"`      // rad, wrist joint
	Pixel    float64 `json:"pixel"`    // camera, in units of the [0, 1] range
}

// RobotConfig configures GenerateRobot. Start from DefaultRobotConfig: here
// zero means zero, not "default".
type RobotConfig struct {
	// Train and Test are the rows per split (≥ 0, not both 0).
	Train int   `json:"train"`
	Test  int   `json:"test"`
	Seed  int64 `json:"seed"`
	// ImageSize is the camera frame's side in pixels, in [16, 256].
	ImageSize int `json:"image_size"`
	// Steps is the sensor window's length in time steps, in [2, 1000];
	// DT the step in seconds, in (0, 1].
	Steps int     `json:"steps"`
	DT    float64 `json:"dt"`
	// Noise are the sensor and pixel noise levels (each ≥ 0; bias terms
	// are added whatever the noise).
	Noise RobotNoise `json:"noise"`
	// Workers is the number of rows generated in parallel (0 means 2).
	Workers int `json:"-"`
}

// DefaultRobotConfig is a 5000 + 1000 row dataset of 64×64 frames and
// 32-step (1.6 s) sensor windows.
func DefaultRobotConfig() RobotConfig {
	return RobotConfig{
		Train: 5000, Test: 1000, Seed: 1,
		ImageSize: 64, Steps: 32, DT: 0.05,
		Noise:   RobotNoise{Accel: 0.05, Gyro: 0.01, Position: 0.002, Yaw: 0.005, Pixel: 0.02},
		Workers: 2,
	}
}

// Validate checks every field.
func (c RobotConfig) Validate() error {
	n := c.Noise
	if err := checkSizes("robot", c.Train, c.Test, c.Workers); err != nil {
		return err
	}
	switch {
	case c.ImageSize < 16 || c.ImageSize > 256:
		return fmt.Errorf("robot: image_size %d must be in [16, 256]", c.ImageSize)
	case c.Steps < 2 || c.Steps > 1000:
		return fmt.Errorf("robot: steps %d must be in [2, 1000]", c.Steps)
	case !(c.DT > 0 && c.DT <= 1):
		return fmt.Errorf("robot: dt %v must be in (0, 1] seconds", c.DT)
	case !(n.Accel >= 0 && n.Gyro >= 0 && n.Position >= 0 && n.Yaw >= 0 && n.Pixel >= 0 && n.Pixel <= 1) ||
		math.IsInf(n.Accel+n.Gyro+n.Position+n.Yaw, 0):
		return fmt.Errorf("robot: noise %+v: every level must be finite and ≥ 0 (pixel ≤ 1)", n)
	}
	return nil
}

// Simulation constants (see GenerateRobot).
const (
	robotCameraHeight = 1.2
	robotTableHalf    = 0.5
	robotReach        = 0.45
	robotZMin         = 0.045
	robotZMax         = 0.5
	robotTiltMax      = 0.5
	robotBlockHalfL   = 0.08
	robotBlockHalfW   = 0.04
	robotBlockHeight  = 0.04
	robotGripperR     = 0.045
	robotFingerOffset = 0.06
	robotFingerHalf   = 0.016
	robotGravity      = 9.81
	robotLag          = 0.1
	robotOUTheta      = 2.0
	robotOUSigmaV     = 0.1
	robotOUSigmaW     = 0.3
)

// robotEpisode is one simulated window: the sensor rows and the final state.
type robotEpisode struct {
	sensors [][]float64 // Steps × (1 + 10): t, then RobotSensorChannels
	state   RobotState
	target  RobotTarget
}

// simulateRobot runs one window (see GenerateRobot) with every random
// draw from r.
func simulateRobot(cfg RobotConfig, r *rng) robotEpisode {
	dt := cfg.DT
	s := RobotState{
		X: r.uniform(-0.4, 0.4), Y: r.uniform(-0.4, 0.4), Z: r.uniform(0.06, 0.45),
		Roll: r.uniform(-0.35, 0.35), Pitch: r.uniform(-0.35, 0.35), Yaw: r.uniform(-2.5, 2.5),
	}
	tg := RobotTarget{X: r.uniform(-0.35, 0.35), Y: r.uniform(-0.35, 0.35), Yaw: r.uniform(-math.Pi/2, math.Pi/2)}
	way := [3]float64{r.uniform(-0.4, 0.4), r.uniform(-0.4, 0.4), r.uniform(0.06, 0.45)}
	if r.bernoulli(0.5) {
		way = [3]float64{tg.X, tg.Y, RobotGraspHeight}
	}
	var biasA, biasG [3]float64
	for i := range 3 {
		biasA[i] = r.uniform(-0.05, 0.05)
		biasG[i] = r.uniform(-0.01, 0.01)
	}
	var vel, rate, ouV, ouW [3]float64 // linear velocity, Euler rates, OU noise
	ou := func(x *[3]float64, sigma float64) {
		k := sigma * math.Sqrt(2*robotOUTheta*dt)
		for i := range x {
			x[i] += -robotOUTheta*x[i]*dt + k*r.norm()
		}
	}
	lag := min(dt/robotLag, 1)
	ep := robotEpisode{target: tg}
	for step := range cfg.Steps {
		ou(&ouV, robotOUSigmaV)
		ou(&ouW, robotOUSigmaW)
		pos := [3]float64{s.X, s.Y, s.Z}
		prev := vel
		for i := range 3 {
			cmd := min(max(RobotGainLinear*(way[i]-pos[i]), -RobotMaxLinear), RobotMaxLinear) + ouV[i]
			vel[i] += (cmd - vel[i]) * lag
			rate[i] += (ouW[i] - rate[i]) * lag
		}
		s.X = min(max(s.X+vel[0]*dt, -robotReach), robotReach)
		s.Y = min(max(s.Y+vel[1]*dt, -robotReach), robotReach)
		s.Z = min(max(s.Z+vel[2]*dt, robotZMin), robotZMax)
		s.Roll = min(max(s.Roll+rate[0]*dt, -robotTiltMax), robotTiltMax)
		s.Pitch = min(max(s.Pitch+rate[1]*dt, -robotTiltMax), robotTiltMax)
		s.Yaw = min(max(s.Yaw+rate[2]*dt, -math.Pi), math.Pi)

		acc := [3]float64{(vel[0] - prev[0]) / dt, (vel[1] - prev[1]) / dt, (vel[2]-prev[2])/dt + robotGravity}
		f := robotToBody(s, acc)
		row := []float64{float64(step-cfg.Steps+1) * dt}
		for i := range 3 {
			row = append(row, f[i]+biasA[i]+cfg.Noise.Accel*r.norm())
		}
		for i := range 3 {
			row = append(row, rate[i]+biasG[i]+cfg.Noise.Gyro*r.norm())
		}
		row = append(row,
			s.X+cfg.Noise.Position*r.norm(), s.Y+cfg.Noise.Position*r.norm(), s.Z+cfg.Noise.Position*r.norm(),
			s.Yaw+cfg.Noise.Yaw*r.norm())
		ep.sensors = append(ep.sensors, row)
	}
	ep.state = s
	return ep
}

// robotToBody returns Rᵀ·v, v in the table frame expressed in the gripper
// frame, R = Rz(yaw)·Ry(pitch)·Rx(roll).
func robotToBody(s RobotState, v [3]float64) [3]float64 {
	cr, sr := math.Cos(s.Roll), math.Sin(s.Roll)
	cp, sp := math.Cos(s.Pitch), math.Sin(s.Pitch)
	cy, sy := math.Cos(s.Yaw), math.Sin(s.Yaw)
	R := [3][3]float64{
		{cy * cp, cy*sp*sr - sy*cr, cy*sp*cr + sy*sr},
		{sy * cp, sy*sp*sr + cy*cr, sy*sp*cr - cy*sr},
		{-sp, cp * sr, cp * cr},
	}
	var out [3]float64
	for i := range 3 {
		for j := range 3 {
			out[i] += R[j][i] * v[j]
		}
	}
	return out
}

// robotCamera is the pinhole camera of an S×S frame.
type robotCamera struct{ size int }

func (c robotCamera) focal() float64 {
	return float64(c.size) / 2 * robotCameraHeight / robotTableHalf
}

// project returns the (continuous) pixel coordinates of a table-frame point.
func (c robotCamera) project(x, y, z float64) (u, v float64) {
	k := c.focal() / (robotCameraHeight - z)
	return float64(c.size)/2 + k*x, float64(c.size)/2 - k*y
}

// unproject returns the point at height z seen at pixel (u, v).
func (c robotCamera) unproject(u, v, z float64) (x, y float64) {
	k := (robotCameraHeight - z) / c.focal()
	return (u - float64(c.size)/2) * k, -(v - float64(c.size)/2) * k
}

// Scene colours (linear RGB in [0, 1], before the frame's brightness).
var (
	robotTableRGB   = [3]float64{0.62, 0.52, 0.40}
	robotBlockRGB   = [3]float64{0.80, 0.15, 0.10}
	robotGripperRGB = [3]float64{0.15, 0.20, 0.60}
	robotFingerRGB  = [3]float64{0.90, 0.85, 0.20}
)

// inRotatedBox reports whether (x, y) is inside the box centred at (cx, cy)
// with half sizes hl (along angle a) and hw (across).
func inRotatedBox(x, y, cx, cy, a, hl, hw float64) bool {
	dx, dy := x-cx, y-cy
	ca, sa := math.Cos(a), math.Sin(a)
	return math.Abs(dx*ca+dy*sa) <= hl && math.Abs(-dx*sa+dy*ca) <= hw
}

// sceneColor is the colour seen at pixel position (u, v): the gripper
// (disc and fingers at its height) over the block's top face over the
// table.
func (c robotCamera) sceneColor(u, v float64, s RobotState, t RobotTarget) [3]float64 {
	x, y := c.unproject(u, v, s.Z)
	if (x-s.X)*(x-s.X)+(y-s.Y)*(y-s.Y) <= robotGripperR*robotGripperR {
		return robotGripperRGB
	}
	cy, sy := math.Cos(s.Yaw), math.Sin(s.Yaw)
	for _, side := range []float64{-1, 1} {
		fx, fy := s.X+side*robotFingerOffset*cy, s.Y+side*robotFingerOffset*sy
		if inRotatedBox(x, y, fx, fy, s.Yaw, robotFingerHalf, robotFingerHalf) {
			return robotFingerRGB
		}
	}
	x, y = c.unproject(u, v, robotBlockHeight)
	if inRotatedBox(x, y, t.X, t.Y, t.Yaw, robotBlockHalfL, robotBlockHalfW) {
		return robotBlockRGB
	}
	return robotTableRGB
}

// renderRobot draws the camera frame of state s and block t (2×2
// supersampling, brightness and pixel noise from r).
func renderRobot(size int, s RobotState, t RobotTarget, pixelNoise float64, r *rng) *image.RGBA {
	cam := robotCamera{size: size}
	bright := r.uniform(0.8, 1.2)
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for py := range size {
		for px := range size {
			var sum [3]float64
			for _, sub := range [][2]float64{{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}} {
				col := cam.sceneColor(float64(px)+sub[0], float64(py)+sub[1], s, t)
				for k := range sum {
					sum[k] += col[k] / 4
				}
			}
			var rgb [3]uint8
			for k := range rgb {
				v := sum[k]*bright + pixelNoise*r.norm()
				rgb[k] = uint8(math.Round(255 * min(max(v, 0), 1)))
			}
			img.SetRGBA(px, py, color.RGBA{R: rgb[0], G: rgb[1], B: rgb[2], A: 255})
		}
	}
	return img
}

// robotColumns are the manifest columns.
var robotColumns = []string{"split", "camera", "sensors", "action", "ee_x", "ee_y", "ee_z", "roll", "pitch", "yaw",
	"target_x", "target_y", "target_yaw", "distance"}

// GenerateRobot writes a simulated reach-to-grasp dataset to dir, which
// must not exist or be empty: a gripper hovering over a table must reach a
// block and align with it. Everything is in SI units in the table frame: x
// to the right, y away from the robot (up in the camera image), z up, the
// table surface at z = 0.
//
// Scene. The block is a 16 × 8 × 4 cm box lying on the table, centred at
// (target x, target y) with its long side at angle target yaw (a half turn
// gives the same block, so yaw is taken modulo π). The gripper's tool
// centre point is at (x, y, z) with orientation roll, pitch, yaw (Z-Y-X
// Euler angles, R = Rz(yaw)·Ry(pitch)·Rx(roll)); its position stays in the
// workspace x, y ∈ [−0.45, 0.45], z ∈ [0.045, 0.5] (above the block's top),
// roll and pitch in [−0.5, 0.5] and yaw in [−π, π] (joint limits).
//
// Camera. A pinhole camera 1.2 m above the table centre looks straight
// down; the table square [−0.5, 0.5]² fills the S×S image at table height.
// A point (x, y, z) is seen at pixel u = S/2 + f·x/(1.2 − z), v = S/2 −
// f·y/(1.2 − z), f = (S/2)·1.2/0.5 (so nearer things look larger and the
// gripper's height shows in its apparent size). The frame shows, with 2×2
// supersampling, the wooden table, the red block's top face, and above it
// the blue gripper (a disc of 4.5 cm radius) with two yellow 3.2 cm square
// fingers 6 cm from its centre along its yaw axis; every colour is scaled
// by one brightness drawn per frame in [0.8, 1.2], then pixel noise is
// added. Roll and pitch are not visible.
//
// Motion. Each row draws the gripper's start uniformly (x, y ∈ [−0.4, 0.4],
// z ∈ [0.06, 0.45], roll, pitch ∈ [−0.35, 0.35], yaw ∈ [−2.5, 2.5]), the
// block (x, y ∈ [−0.35, 0.35], yaw ∈ [−π/2, π/2)) and a waypoint: with
// probability 1/2 the grasp point (the operator was reaching for the block),
// else drawn like the start position. Before the frame, the gripper moves for Steps steps of DT
// seconds under an operator tracking the waypoint: commanded velocity
// clamp(1.5·(waypoint − p), ±0.6 m/s) plus Ornstein–Uhlenbeck noise (θ = 2/s,
// σ = 0.1 m/s), commanded angular rates pure OU noise (θ = 2/s,
// σ = 0.3 rad/s); actual velocities follow the commands through a first-order
// lag of τ = 0.1 s, then positions and angles integrate them (Euler steps)
// and are clamped to the limits above.
//
// Sensors, one row per step (the last row, t = 0, is the moment of the
// frame), 10 channels:
//
//	imu_ax, imu_ay, imu_az  accelerometer: the specific force in the gripper
//	                        frame, Rᵀ·(a + (0, 0, 9.81)) with a the finite-difference
//	                        acceleration, + a per-clip bias U(±0.05) + N(0, Noise.Accel) m/s²
//	imu_gx, imu_gy, imu_gz  gyroscope: the roll, pitch and yaw rates (Euler-angle rates
//	                        stand for body rates, a small-tilt simplification)
//	                        + a per-clip bias U(±0.01) + N(0, Noise.Gyro) rad/s
//	joint_x, joint_y, joint_z  the gantry joints: x, y, z + N(0, Noise.Position) m
//	joint_yaw               the wrist joint: yaw + N(0, Noise.Yaw) rad
//
// So the block is seen only by the camera, tilt is sensed only through
// gravity in the accelerometer, and position and yaw by both.
//
// Action. The label is what an expert controller commands at the frame
// (RobotExpertAction): a 7-vector of 6-DOF velocity and gripper closure.
//
// Layout: manifest.csv with columns split, camera (camera/<split>_<row>.png,
// ImageSize² RGB), sensors (sensors/<split>_<row>.csv: a time column t and
// RobotSensorChannels, Steps rows, time-major), action (the 7 numbers of
// RobotExpertAction separated by spaces: a vector label), the true final
// state ee_x, ee_y, ee_z, roll, pitch, yaw, the block target_x, target_y,
// target_yaw and the distance to the grasp point; metadata.json; README.md.
// It needs nothing outside Go; the result is a pure function of cfg.
func GenerateRobot(ctx context.Context, dir string, cfg RobotConfig) (*GeneratedDataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	out := &GeneratedDataset{Splits: map[string][]int{}}
	err := buildDatasetDir(dir, func(tmp string) error {
		for _, sub := range []string{"camera", "sensors"} {
			if err := os.Mkdir(filepath.Join(tmp, sub), 0o755); err != nil {
				return err
			}
		}
		table := &manifestTable{header: robotColumns}
		for _, split := range []struct {
			name string
			rows int
		}{{"train", cfg.Train}, {"test", cfg.Test}} {
			if split.rows == 0 {
				continue
			}
			rows := make([][]string, split.rows)
			err := forEachRow(ctx, split.rows, orDefault(cfg.Workers, 2), func(i int) error {
				row, err := robotRow(tmp, cfg, split.name, i, split.rows)
				if err != nil {
					return fmt.Errorf("robot %s row %d: %w", split.name, i, err)
				}
				rows[i] = row
				return nil
			})
			if err != nil {
				return err
			}
			table.rows = append(table.rows, rows...)
			out.Splits[split.name] = []int{split.rows}
		}
		if err := table.write(filepath.Join(tmp, "manifest.csv")); err != nil {
			return err
		}
		meta := datasetMetadata{
			Dataset: "robot", FormatVersion: 1, Config: cfg, Summary: out,
			Sources: map[string]string{"simulation": "lsfuse data.GenerateRobot (Go): pinhole camera over a table, gantry + wrist gripper, IMU and joint sensors; see its documentation"},
			Columns: map[string]string{
				"split":      "train or test",
				"camera":     fmt.Sprintf("%dx%d RGB PNG from a camera 1.2 m above the table looking down: red block, blue gripper with yellow fingers", cfg.ImageSize, cfg.ImageSize),
				"sensors":    fmt.Sprintf("CSV, %d rows (dt %v s, t = 0 at the frame) x columns t,%s", cfg.Steps, cfg.DT, strings.Join(RobotSensorChannels, ",")),
				"action":     "7 numbers vx vy vz (m/s) wx wy wz (rad/s) grip (0 open..1 closed): the expert's command at the frame",
				"ee_x":       "gripper x at the frame, m",
				"ee_y":       "gripper y at the frame, m",
				"ee_z":       "gripper height above the table at the frame, m",
				"roll":       "gripper roll at the frame, rad",
				"pitch":      "gripper pitch at the frame, rad",
				"yaw":        "gripper yaw at the frame, rad",
				"target_x":   "block centre x, m",
				"target_y":   "block centre y, m",
				"target_yaw": "angle of the block's long side, rad (modulo pi)",
				"distance":   "distance from the gripper to the grasp point, m",
			},
		}
		if err := writeJSON(filepath.Join(tmp, "metadata.json"), meta); err != nil {
			return err
		}
		readme := fmt.Sprintf("# robot: simulated reach-to-grasp\n\n"+
			"Generated by lsfuse (`data.GenerateRobot`, seed %d). Each row is a %dx%d top-down camera frame of a red block and a gripper, "+
			"%d steps (%v s each) of IMU and joint readings before it, and the expert's 7-dof action (6-DOF velocity + gripper closure): "+
			"move to %v m above the block, level the gripper, align its yaw with the block, close when near. "+
			"The block is seen only by the camera and tilt only by the accelerometer. metadata.json holds the config and columns; "+
			"the equations are in the documentation of data.GenerateRobot and data.RobotExpertAction.\n",
			cfg.Seed, cfg.ImageSize, cfg.ImageSize, cfg.Steps, cfg.DT, RobotGraspHeight)
		return os.WriteFile(filepath.Join(tmp, "README.md"), []byte(readme), 0o644)
	})
	if err != nil {
		return nil, err
	}
	out.Dir, out.Manifest = dir, filepath.Join(dir, "manifest.csv")
	return out, nil
}

// robotRow simulates row i of a split, writes its files and returns its
// manifest row.
func robotRow(dir string, cfg RobotConfig, split string, i, n int) ([]string, error) {
	r := rowRNG(cfg.Seed, split, i)
	ep := simulateRobot(cfg, r)
	img := renderRobot(cfg.ImageSize, ep.state, ep.target, cfg.Noise.Pixel, r)
	name := rowName(split, i, n)
	camPath := filepath.ToSlash(filepath.Join("camera", name+".png"))
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, camPath), buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	var series strings.Builder
	series.WriteString("t," + strings.Join(RobotSensorChannels, ",") + "\n")
	for _, row := range ep.sensors {
		for k, v := range row {
			if k > 0 {
				series.WriteByte(',')
			}
			series.WriteString(strconv.FormatFloat(v, 'g', 5, 64))
		}
		series.WriteByte('\n')
	}
	sensPath := filepath.ToSlash(filepath.Join("sensors", name+".csv"))
	if err := os.WriteFile(filepath.Join(dir, sensPath), []byte(series.String()), 0o644); err != nil {
		return nil, err
	}
	act := RobotExpertAction(ep.state, ep.target)
	parts := make([]string, len(act))
	for k, v := range act {
		parts[k] = formatFloat(v)
	}
	s, t := ep.state, ep.target
	e := [3]float64{t.X - s.X, t.Y - s.Y, RobotGraspHeight - s.Z}
	d := math.Sqrt(e[0]*e[0] + e[1]*e[1] + e[2]*e[2])
	return []string{split, camPath, sensPath, strings.Join(parts, " "),
		formatFloat(s.X), formatFloat(s.Y), formatFloat(s.Z), formatFloat(s.Roll), formatFloat(s.Pitch), formatFloat(s.Yaw),
		formatFloat(t.X), formatFloat(t.Y), formatFloat(t.Yaw), formatFloat(d)}, nil
}
