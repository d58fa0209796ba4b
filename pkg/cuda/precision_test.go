package cuda

import (
	"math"
	"math/rand"
	"testing"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/train"
	"github.com/lsfuse/lsfuse/pkg/vm"
)

// TestRoundFP16 checks RoundFP16 (lsf_round_f16's transcription) against
// hand-worked binary16 values: ties to even, overflow, subnormals.
func TestRoundFP16(t *testing.T) {
	p := func(e int) float32 { return float32(math.Ldexp(1, e)) }
	inf := float32(math.Inf(1))
	cases := []struct{ x, want float32 }{
		{1, 1},
		{1 + p(-11), 1},                   // half an ulp above 1: tie, 1 is even
		{1 + 3*p(-11), 1 + p(-9)},         // tie between 1+2^-10 (odd) and 1+2^-9 (even)
		{1 + p(-11) + p(-20), 1 + p(-10)}, // just above the tie
		{0.1, 0.0999755859375},            // 0x2E66
		{3.14159265, 3.140625},            // 0x4248
		{65504, 65504},                    // the largest finite value
		{65519, 65504},                    // below the midpoint to 65536
		{65520, inf},                      // the midpoint: ties to the even 2^16, which overflows
		{-65520, -inf},                    // with the sign
		{1e6, inf},                        // far out of range
		{p(-14), p(-14)},                  // the smallest normal
		{p(-14) + p(-25), p(-14)},         // tie in the first binade: to even
		{p(-20) + p(-30), p(-20)},         // a subnormal: quantum 2^-24
		{p(-24), p(-24)},                  // the smallest subnormal
		{p(-25), 0},                       // half of it: tie to 0
		{1.5 * p(-25), p(-24)},            // above the tie
		{3 * p(-25), p(-23)},              // tie between 1 and 2 quanta: 2
		{-p(-26), float32(math.Copysign(0, -1))},
		{1e-40, 0}, // a float32 subnormal
		{inf, inf},
	}
	for _, c := range cases {
		if got := RoundFP16(c.x); got != c.want || math.Signbit(float64(got)) != math.Signbit(float64(c.want)) {
			t.Errorf("RoundFP16(%g) = %g, want %g", c.x, got, c.want)
		}
	}
	if v := RoundFP16(float32(math.NaN())); v == v {
		t.Errorf("RoundFP16(NaN) = %g", v)
	}
}

// TestRoundBF16 checks RoundBF16 against hand-worked bfloat16 values.
func TestRoundBF16(t *testing.T) {
	p := func(e int) float32 { return float32(math.Ldexp(1, e)) }
	inf := float32(math.Inf(1))
	cases := []struct{ x, want float32 }{
		{1, 1},
		{1 + p(-8), 1},                  // tie, 1 is even
		{1 + 3*p(-8), 1 + p(-6)},        // tie between 1+2^-7 (odd) and 1+2^-6 (even)
		{1 + p(-8) + p(-20), 1 + p(-7)}, // just above the tie
		{0.1, 0.10009765625},            // 0x3DCD
		{3.14159265, 3.140625},          // 0x4049
		{math.MaxFloat32, inf},          // rounds past the largest bfloat16
		{-math.MaxFloat32, -inf},
		{p(-130) + p(-140), p(-130)}, // float32 subnormals keep the format's step
		{inf, inf},
	}
	for _, c := range cases {
		if got := RoundBF16(c.x); got != c.want {
			t.Errorf("RoundBF16(%g) = %g, want %g", c.x, got, c.want)
		}
	}
	if v := RoundBF16(float32(math.NaN())); v == v {
		t.Errorf("RoundBF16(NaN) = %g", v)
	}
}

// decodeFP16 is the value of binary16 bits h (an independent decoder for
// the exhaustive test).
func decodeFP16(h uint16) float32 {
	e, f := int(h>>10&0x1f), float64(h&0x3ff)
	var v float64
	switch e {
	case 0:
		v = math.Ldexp(f, -24)
	case 31:
		v = math.Inf(1)
	default:
		v = math.Ldexp(1024+f, e-25)
	}
	if h&0x8000 != 0 {
		v = -v
	}
	return float32(v)
}

// formatCases lists, for a 16-bit format whose positive finite values are
// decode(0) < ... < decode(last), every value and its negation (kept
// as is), every midpoint between neighbours (to the neighbour with the
// even code) and one float32 step either side of it (to the nearer
// neighbour): the inputs and the values rounding must give.
func formatCases(decode func(uint16) float32, last uint16) (xs, wants []float32) {
	add := func(x, want float32) { xs, wants = append(xs, x), append(wants, want) }
	for h := uint16(0); h <= last; h++ {
		lo := decode(h)
		add(lo, lo)
		add(-lo, -lo)
		if h == last {
			break
		}
		hi := decode(h + 1)
		mid := float32((float64(lo) + float64(hi)) / 2) // exact: one bit more than the format
		even := lo
		if h&1 == 1 {
			even = hi
		}
		add(mid, even)
		add(math.Nextafter32(mid, 0), lo)
		add(math.Nextafter32(mid, hi+1), hi)
	}
	return xs, wants
}

// decodeBF16 is the value of bfloat16 bits h.
func decodeBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// TestRoundEveryValue checks both conversions over every finite value of
// their format and the midpoints between them (formatCases).
func TestRoundEveryValue(t *testing.T) {
	for _, c := range []struct {
		name   string
		round  func(float32) float32
		decode func(uint16) float32
		last   uint16
	}{{"RoundFP16", RoundFP16, decodeFP16, 0x7bff}, {"RoundBF16", RoundBF16, decodeBF16, 0x7f7f}} {
		xs, wants := formatCases(c.decode, c.last)
		bad := 0
		for i, x := range xs {
			if got := c.round(x); got != wants[i] && bad < 10 {
				bad++
				t.Errorf("%s(%g) = %g, want %g", c.name, x, got, wants[i])
			}
		}
	}
}

// stepResult is one training step's loss, logits and gradients.
type stepResult struct {
	loss  float64
	out   []float32
	grads [][]float32
}

// resultOf reads b's bound loss, output and gradients.
func resultOf(t *testing.T, b *trainGraph) stepResult {
	t.Helper()
	out := append([]float32(nil), nn.Slice[float32](b.mg.Output.Value().(*tensor.Dense))...)
	return stepResult{b.loss(t), out, gradsOf(t, b.learn)}
}

// vmStep runs one training step of bench-small (batch, T steps; the batch
// of seed 11) on vm.Machine.
func vmStep(t *testing.T, batch, steps int) stepResult {
	t.Helper()
	b := newBenchSmall(t, batch, steps)
	cpu, err := vm.New(b.g, b.learn)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	b.bindBenchSmall(t, rand.New(rand.NewSource(11)), 2)
	if err := cpu.RunAll(); err != nil {
		t.Fatal(err)
	}
	return resultOf(t, b)
}

// machineStep is vmStep on a Machine on sess with precision p.
func machineStep(t *testing.T, sess *Session, p Precision, batch, steps int) stepResult {
	t.Helper()
	b := newBenchSmall(t, batch, steps)
	m, err := NewMachine(b.g, b.learn, WithSession(sess), Fetch(b.mg.Loss, b.mg.Output), MixedPrecision(p))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b.bindBenchSmall(t, rand.New(rand.NewSource(11)), 2)
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	return resultOf(t, b)
}

// relErr is max|got-want| over max|want|, and the relative L2 distance
// of all tensors taken together.
func relErr(got, want [][]float32) (maxRel, l2Rel float64) {
	var dMax, wMax, d2, w2 float64
	for i := range want {
		for j, w := range want[i] {
			d := math.Abs(float64(got[i][j]) - float64(w))
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			dMax, wMax = math.Max(dMax, d), math.Max(wMax, math.Abs(float64(w)))
			d2 += d * d
			w2 += float64(w) * float64(w)
		}
	}
	return dMax / wMax, math.Sqrt(d2 / w2)
}

// unitRoundoff is half an ulp of 1 in p's format, relative: 2^-11 for
// fp16 (11 significant bits), 2^-8 for bf16 (8).
func unitRoundoff(p Precision) float64 {
	if p == PrecisionBF16 {
		return math.Ldexp(1, -8)
	}
	return math.Ldexp(1, -11)
}

// checkMixed compares a mixed-precision step with vm.Machine's float32
// step (want); f32 is the same executor's float32 step.
//
// Tolerances: rounding an input costs at most half an ulp, u (see
// unitRoundoff), so a product is off by at most 2u and a dot product by
// at most 2u of the sum of its terms' magnitudes. The logits pass through
// a few GEMM layers (conv, linear, attention, CfC over T steps, fusion,
// head), each adding a few u: they are allowed 16u of their largest
// magnitude, the loss 16u relative. Gradients also go through the
// spikes' and ReLUs' thresholds, where a pre-activation moved by the
// rounding can switch a unit on or off: a single entry may change
// completely, so they are compared as one vector, within 32u relative L2
// (measured on the fake device: about 1u with fp16; about 21u with bf16,
// whose larger steps switch more units).
//
// The float32 executor's logits are within float32 noise of vm.Machine's:
// a mixed run whose conversions were skipped would be too, so its logits
// must be at least ten times further off than that, and by more than
// u/100.
func checkMixed(t *testing.T, p Precision, got, f32, want stepResult) {
	t.Helper()
	u := unitRoundoff(p)
	lossRel := math.Abs(got.loss-want.loss) / math.Abs(want.loss)
	if !(lossRel <= 16*u) {
		t.Errorf("%s: loss %.9g, vm.Machine %.9g: relative error %.3g > 16u", p, got.loss, want.loss, lossRel)
	}
	outRel, _ := relErr([][]float32{got.out}, [][]float32{want.out})
	noise, _ := relErr([][]float32{f32.out}, [][]float32{want.out})
	if !(outRel <= 16*u) {
		t.Errorf("%s: logits off by %.3g of their largest magnitude > 16u = %.3g", p, outRel, 16*u)
	}
	if outRel <= 10*noise || outRel <= u/100 {
		t.Errorf("%s: logits off by %.3g, the float32 executor's by %.3g: the inputs were not rounded", p, outRel, noise)
	}
	_, gradL2 := relErr(got.grads, want.grads)
	if !(gradL2 <= 32*u) {
		t.Errorf("%s: gradients off by %.3g relative L2 > 32u = %.3g", p, gradL2, 32*u)
	}
	t.Logf("%s: loss relative error %.3g (%.2g u), logits %.3g (%.2g u; float32 executor %.3g), gradients L2 %.3g (%.2g u)",
		p, lossRel, lossRel/u, outRel, outRel/u, noise, gradL2, gradL2/u)
}

// TestMixedPrecisionBenchSmall runs a bench-small training step (B=4,
// T=4) with fp16 and bf16 GEMM inputs on the fake device and compares it
// with vm.Machine's float32 step (checkMixed). Every cuBLAS call gets its
// two inputs rounded (two conversion launches per call), and the fake
// device fails any GEMM with an input outside the format
// (fakeDevice.inputFormat), so one operand that skipped its conversion
// fails the test.
func TestMixedPrecisionBenchSmall(t *testing.T) {
	want := vmStep(t, 4, 4)
	dev32 := newFakeDevice()
	f32 := machineStep(t, newSession(dev32, nil), PrecisionOff, 4, 4)
	if dev32.launches["lsf_round_f16"]+dev32.launches["lsf_round_bf16"] != 0 {
		t.Fatalf("float32 run launched conversions: %v", dev32.launches)
	}
	for p, round := range map[Precision]func(float32) float32{PrecisionFP16: RoundFP16, PrecisionBF16: RoundBF16} {
		dev := newFakeDevice()
		dev.inputFormat = round
		got := machineStep(t, newSession(dev, nil), p, 4, 4)
		if n := dev.launches[p.roundKernel()]; n != 2*dev.blasCalls || n == 0 {
			t.Errorf("%s: %d conversions for %d cuBLAS calls, want two per call", p, n, dev.blasCalls)
		}
		checkMixed(t, p, got, f32, want)
	}
}

// TestTrainerOnDeviceFP16 trains bench-small with the trainer on the fake
// device with fp16 GEMM inputs and dynamic loss scaling: the steps are
// taken, every GEMM input (evaluation's too) is a binary16 value, and
// the training loss falls.
func TestTrainerOnDeviceFP16(t *testing.T) {
	cfg := smallTrainConfig()
	cfg.Epochs, cfg.LR = 6, 3e-3
	cfg.LossScale = train.LossScaleConfig{Enabled: true, Init: 65536, GrowthInterval: 2000}
	c := trainCase{cfg: cfg, tr: newDigits(8, 1), val: newDigits(4, 2)}
	dev := newFakeDevice()
	dev.inputFormat = RoundFP16
	run := c.fitOn(t, TrainDevice(newSession(dev, nil), MixedPrecision(PrecisionFP16)))
	n := len(run.losses)
	if n < 8 {
		t.Fatalf("%d micro-batches", n)
	}
	first := (run.losses[0] + run.losses[1]) / 2
	last := (run.losses[n-2] + run.losses[n-1]) / 2
	if !(last < first) || run.skipped == n {
		t.Errorf("fp16 training: loss %.4g over the first epoch, %.4g over the last (%d of %d steps skipped)", first, last, run.skipped, n)
	}
	t.Logf("fp16 training: loss %.4g → %.4g, %d of %d steps skipped", first, last, run.skipped, n)
}

// TestMixedPrecisionRejectsUnknown: a format NewMachine does not know is
// an error, not a silent float32 run.
func TestMixedPrecisionRejectsUnknown(t *testing.T) {
	b := newBenchSmall(t, 2, 2)
	if _, err := NewMachine(b.g, b.learn, WithSession(newSession(newFakeDevice(), nil)), MixedPrecision("fp8")); err == nil {
		t.Fatal("MixedPrecision(fp8) built a machine")
	}
}
