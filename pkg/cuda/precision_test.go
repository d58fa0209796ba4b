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

// TestRoundFP16 checks RoundFP16 (the fp16 value of a packed input) against
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

// TestFP16Bits checks FP16Bits (lsf_pack_f16's transcription) against
// hand-worked binary16 encodings, and FP16Value of each against
// RoundFP16.
func TestFP16Bits(t *testing.T) {
	p := func(e int) float32 { return float32(math.Ldexp(1, e)) }
	nan := float32(math.NaN())
	cases := []struct {
		x float32
		h uint16
	}{
		{1, 0x3c00},
		{-2, 0xc000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1 + p(-11), 0x3c00},          // tie: 1 is even
		{1 + 3*p(-11), 0x3c02},        // tie between 0x3c01 and 0x3c02: even
		{1 + p(-11) + p(-20), 0x3c01}, // above the tie
		{0.1, 0x2e66},
		{3.14159265, 0x4248},
		{65504, 0x7bff},                            // the largest finite value
		{65519, 0x7bff},                            // below the midpoint to 2^16
		{65520, 0x7c00},                            // the midpoint: the even code 0x7c00 is Inf
		{-65520, 0xfc00},                           // with the sign
		{65536, 0x7c00},                            // 2^16
		{math.MaxFloat32, 0x7c00},                  // far out of range
		{p(-14), 0x0400},                           // the smallest normal
		{p(-14) - p(-24), 0x03ff},                  // the largest subnormal
		{p(-14) - p(-26), 0x0400},                  // rounds up out of the subnormals
		{p(-24), 0x0001},                           // the smallest subnormal
		{p(-25), 0x0000},                           // half of it: tie to 0
		{-p(-25), 0x8000},                          // with the sign
		{1.5 * p(-25), 0x0001},                     // above the tie
		{3 * p(-25), 0x0002},                       // tie between 1 and 2 quanta: 2
		{1e-40, 0x0000},                            // a float32 subnormal
		{float32(math.Inf(1)), 0x7c00},             // Inf
		{float32(math.Inf(-1)), 0xfc00},            //
		{nan, 0x7e00},                              // NaN: the quiet NaN
		{-nan, 0xfe00},                             // with its sign
		{math.Float32frombits(0x7f800001), 0x7e00}, // a signalling NaN whose payload would be dropped
	}
	for _, c := range cases {
		if got := FP16Bits(c.x); got != c.h {
			t.Errorf("FP16Bits(%g [%#08x]) = %#04x, want %#04x", c.x, math.Float32bits(c.x), got, c.h)
		}
		got, want := FP16Value(c.h), RoundFP16(c.x)
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Errorf("FP16Value(%#04x) = %g, RoundFP16(%g) = %g", c.h, got, c.x, want)
		}
	}
	for h, want := range map[uint16]float32{0x3c00: 1, 0x0001: p(-24), 0x03ff: p(-14) - p(-24), 0x0400: p(-14),
		0x7bff: 65504, 0xc000: -2, 0x7c00: float32(math.Inf(1)), 0xfc00: float32(math.Inf(-1))} {
		if got := FP16Value(h); got != want {
			t.Errorf("FP16Value(%#04x) = %g, want %g", h, got, want)
		}
	}
	if v := FP16Value(0x8000); v != 0 || !math.Signbit(float64(v)) {
		t.Errorf("FP16Value(0x8000) = %g, want -0", v)
	}
}

// TestBF16Bits checks BF16Bits (lsf_pack_bf16's transcription) against
// hand-worked bfloat16 encodings; NaN never becomes Inf.
func TestBF16Bits(t *testing.T) {
	p := func(e int) float32 { return float32(math.Ldexp(1, e)) }
	cases := []struct {
		x float32
		h uint16
	}{
		{1, 0x3f80},
		{-2, 0xc000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1 + p(-8), 0x3f80},          // tie: 1 is even
		{1 + 3*p(-8), 0x3f82},        // tie between 0x3f81 and 0x3f82: even
		{1 + p(-8) + p(-20), 0x3f81}, // above the tie
		{0.1, 0x3dcd},
		{3.14159265, 0x4049},
		{math.MaxFloat32, 0x7f80},                  // rounds past the largest bfloat16, 0x7f7f
		{-math.MaxFloat32, 0xff80},                 //
		{p(-130) + p(-140), 0x0008},                // float32 subnormals keep the format's step
		{float32(math.Inf(1)), 0x7f80},             //
		{float32(math.NaN()), 0x7fc0},              // the quiet NaN stays itself
		{math.Float32frombits(0x7f800001), 0x7fc0}, // payload only in the dropped bits: a NaN, not Inf
		{math.Float32frombits(0xff80ffff), 0xffc0}, // nor does rounding carry it into the exponent
		{math.Float32frombits(0x7fffffff), 0x7fff}, // nor wrap it to a zero
	}
	for _, c := range cases {
		if got := BF16Bits(c.x); got != c.h {
			t.Errorf("BF16Bits(%g [%#08x]) = %#04x, want %#04x", c.x, math.Float32bits(c.x), got, c.h)
		}
	}
	if v := BF16Value(0x3f80); v != 1 {
		t.Errorf("BF16Value(0x3f80) = %g", v)
	}
}

// TestBitsRoundTrip decodes every one of the 65,536 encodings of both
// formats and encodes the value again: the same bits, except NaNs, which
// stay NaNs of the same sign. FP16Value also agrees with decodeFP16, an
// independent decoder.
func TestBitsRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name   string
		bits   func(float32) uint16
		value  func(uint16) float32
		expMax uint16 // the exponent field of Inf and NaN
		nans   int    // how many encodings are NaNs
	}{{"fp16", FP16Bits, FP16Value, 0x7c00, 2 * 1023}, {"bf16", BF16Bits, BF16Value, 0x7f80, 2 * 127}} {
		isNaN := func(h uint16) bool { return h&c.expMax == c.expMax && h&^(c.expMax|0x8000) != 0 }
		bad, nans := 0, 0
		for i := range 1 << 16 {
			h := uint16(i)
			v := c.value(h)
			got := c.bits(v)
			ok := got == h
			if isNaN(h) {
				nans++
				ok = v != v && isNaN(got) && got&0x8000 == h&0x8000
			}
			if c.name == "fp16" && !isNaN(h) && math.Float32bits(v) != math.Float32bits(decodeFP16(h)) {
				ok = false
			}
			if !ok && bad < 10 {
				bad++
				t.Errorf("%s: %#04x decodes to %g, which encodes to %#04x", c.name, h, v, got)
			}
		}
		if nans != c.nans {
			t.Errorf("%s: %d NaN encodings, want %d", c.name, nans, c.nans)
		}
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

// TestRoundEveryValue checks both conversions, RoundFP16 / RoundBF16 and
// the packed path value(bits(x)), over every finite value of their
// format and the midpoints between them (formatCases), then the two
// against each other on random float32 bit patterns (every exponent,
// subnormals, Inf, NaN), bit for bit.
func TestRoundEveryValue(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	same := func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b }
	for _, c := range []struct {
		name   string
		round  func(float32) float32
		bits   func(float32) uint16
		value  func(uint16) float32
		decode func(uint16) float32
		last   uint16
	}{{"fp16", RoundFP16, FP16Bits, FP16Value, decodeFP16, 0x7bff}, {"bf16", RoundBF16, BF16Bits, BF16Value, decodeBF16, 0x7f7f}} {
		xs, wants := formatCases(c.decode, c.last)
		bad := 0
		for i, x := range xs {
			if got := c.round(x); got != wants[i] && bad < 10 {
				bad++
				t.Errorf("%s: round(%g) = %g, want %g", c.name, x, got, wants[i])
			}
			if got := c.value(c.bits(x)); !same(got, wants[i]) && bad < 10 {
				bad++
				t.Errorf("%s: value(bits(%g)) = %g, want %g", c.name, x, got, wants[i])
			}
		}
		for range 1 << 20 {
			x := math.Float32frombits(r.Uint32())
			if got, want := c.value(c.bits(x)), c.round(x); !same(got, want) && bad < 10 {
				bad++
				t.Errorf("%s: value(bits(%g [%#08x])) = %g, round %g", c.name, x, math.Float32bits(x), got, want)
			}
		}
	}
}

// packCases are inputs for the pack kernels: formatCases of p's format
// (every value and every midpoint between neighbours, with one float32
// step either side), n random float32 bit patterns, and special values
// (overflow, Inf, float32 subnormals, NaNs with payloads).
func packCases(p Precision, n int) []float32 {
	var xs []float32
	if p == PrecisionFP16 {
		xs, _ = formatCases(decodeFP16, 0x7bff)
	} else {
		xs, _ = formatCases(decodeBF16, 0x7f7f)
	}
	r := rand.New(rand.NewSource(5))
	for range n {
		xs = append(xs, math.Float32frombits(r.Uint32()))
	}
	for _, b := range []uint32{0x477fefff, 0x477ff000, 0x47800000, 0x7f7fffff, 0x7f800000, 0xff800000, 0x00000001,
		0x007fffff, 0x7f800001, 0xff800001, 0x7fc00000, 0xffffffff, 0x7f80ffff} {
		xs = append(xs, math.Float32frombits(b))
	}
	return xs
}

// checkPackKernels launches p's pack kernel on d over packCases (n random
// patterns) and checks every 16-bit result against FP16Bits or BF16Bits,
// bit for bit. The kernels write into a view starting one value (2
// bytes) into its buffer, as a batched GEMM's packed matrices may.
func checkPackKernels(t *testing.T, d device, p Precision, n int) {
	t.Helper()
	bits := FP16Bits
	if p == PrecisionBF16 {
		bits = BF16Bits
	}
	xs := packCases(p, n)
	in, err := d.Alloc(len(xs))
	if err != nil {
		t.Fatal(err)
	}
	words := (len(xs) + 2) / 2
	out, err := d.Alloc(words)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(in)
	defer d.Free(out)
	if err := d.upload(in, xs); err != nil {
		t.Fatal(err)
	}
	if err := launch1D(d, p.packKernel(), len(xs), in, out.at16(1, len(xs)), len(xs)); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, words)
	if err := download(d, got, out); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i, x := range xs {
		w := math.Float32bits(got[(i+1)/2]) // value i+1 of the buffer: little-endian halves
		h := uint16(w >> (16 * ((i + 1) % 2)))
		if want := bits(x); h != want && bad < 10 {
			bad++
			t.Errorf("%s(%g [%#08x]) on the device = %#04x, Go %#04x", p.packKernel(), x, math.Float32bits(x), h, want)
		}
	}
}

// checkGemmEx packs random operands on d (the pack kernels) and
// multiplies them with GemmEx and GemmBatchedEx in p's format, A
// transposed, B not, every matrix starting at an odd 16-bit offset and
// with padded rows, and C = alpha·op(A)·op(B) + beta·C: against a float64
// GEMM of the rounded inputs within float32 accumulation's error, and
// away from the GEMM of the unrounded inputs (the inputs were read as
// 16-bit values).
func checkGemmEx(t *testing.T, d device, p Precision) {
	t.Helper()
	const M, N, K, lda, ldb, ldc, count = 5, 7, 33, 8, 9, 8, 2
	const alpha, beta = 1.5, 0.5
	round := RoundFP16
	if p == PrecisionBF16 {
		round = RoundBF16
	}
	r := rand.New(rand.NewSource(9))
	randoms := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.Float64()*4 - 2)
		}
		return v
	}
	sizeA := K * lda // one A matrix (stored K×M, transposed by the GEMM)
	hostA, hostB, hostC := randoms(count*sizeA), randoms(K*ldb), randoms(count*M*ldc)
	var owned []Buffer
	defer func() {
		for _, b := range owned {
			_ = d.Free(b)
		}
	}()
	alloc := func(n int) Buffer {
		b, err := d.Alloc(n)
		if err != nil {
			t.Fatal(err)
		}
		owned = append(owned, b)
		return b
	}
	upload := func(v []float32) Buffer {
		b := alloc(len(v))
		if err := d.upload(b, v); err != nil {
			t.Fatal(err)
		}
		return b
	}
	pack := func(v []float32) Buffer { // the values at 16-bit offset 1 of a fresh buffer
		s := alloc((len(v)+2)/2).at16(1, len(v))
		if err := launch1D(d, p.packKernel(), len(v), upload(v), s, len(v)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	pointers := func(addrs ...uintptr) Buffer {
		b, err := d.Pointers(addrs)
		if err != nil {
			t.Fatal(err)
		}
		owned = append(owned, b)
		return b
	}
	pa, pb := pack(hostA), pack(hostB)
	c1, cs := upload(hostC[:M*ldc]), upload(hostC)
	if err := d.GemmEx(p, true, false, M, N, K, alpha, pa, lda, pb, ldb, beta, c1, ldc); err != nil {
		t.Fatal(err)
	}
	if err := d.GemmBatchedEx(p, true, false, M, N, K, alpha,
		pointers(pa.Ptr, pa.at16(sizeA, 0).Ptr), lda, pointers(pb.Ptr, pb.Ptr), ldb, beta,
		pointers(cs.Ptr, cs.at(M*ldc, 0).Ptr), ldc, count); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, M*ldc)
	if err := download(d, got, c1); err != nil {
		t.Fatal(err)
	}
	batched := make([]float32, count*M*ldc)
	if err := download(d, batched, cs); err != nil {
		t.Fatal(err)
	}
	// Float32 accumulation over K terms (and beta·C) is off by at most
	// about K ulps of Σ|terms|; allow 2 ulps per term, for accumulators
	// (tensor cores) that do not round to nearest.
	tolRel := float64(K+2) * 0x1p-22
	var maxErr, maxUnrounded float64
	for _, res := range []struct {
		name  string
		c     []float32
		count int
	}{{"GemmEx", got, 1}, {"GemmBatchedEx", batched, count}} {
		for b := range res.count {
			for i := range M {
				for j := range N {
					c0 := beta * float64(hostC[b*M*ldc+i*ldc+j])
					ref, raw, mag := c0, c0, math.Abs(c0)
					for q := range K {
						x, y := hostA[b*sizeA+q*lda+i], hostB[q*ldb+j]
						ref += alpha * float64(round(x)) * float64(round(y))
						raw += alpha * float64(x) * float64(y)
						mag += math.Abs(alpha * float64(round(x)) * float64(round(y)))
					}
					c := float64(res.c[b*M*ldc+i*ldc+j])
					e := math.Abs(c - ref)
					if !(e <= tolRel*mag) {
						t.Errorf("%s %s: C%d[%d,%d] = %.9g, the rounded inputs' GEMM %.9g (error %.3g > %.3g)", res.name, p, b, i, j, c, ref, e, tolRel*mag)
					}
					maxErr = math.Max(maxErr, e/mag)
					maxUnrounded = math.Max(maxUnrounded, math.Abs(c-raw)/mag)
				}
			}
		}
	}
	if !(maxUnrounded > 4*tolRel) {
		t.Errorf("%s: off the unrounded inputs' GEMM by %.3g (relative), within the tolerance %.3g: were the inputs rounded?", p, maxUnrounded, tolRel)
	}
	t.Logf("%s: GemmEx and GemmBatchedEx within %.3g of the rounded inputs' GEMM (relative to Σ|a·b|), %.3g of the unrounded ones'", p, maxErr, maxUnrounded)
}

// TestGemmExOnFake runs checkPackKernels and checkGemmEx on the fake
// device (the GPU runs them in TestGPUPackKernels and TestGPUGemmEx): the
// 16-bit views, offsets and pointer arrays the executor relies on.
func TestGemmExOnFake(t *testing.T) {
	for _, p := range []Precision{PrecisionFP16, PrecisionBF16} {
		d := newFakeDevice()
		d.inputFormat = p
		checkPackKernels(t, d, p, 1<<12)
		checkGemmEx(t, d, p)
		if err := d.Gemm(false, false, 1, 1, 1, 1, Buffer{}, 1, Buffer{}, 1, 0, Buffer{}, 1); err == nil {
			t.Errorf("%s: the fake device ran a float32 GEMM while mixed precision is on", p)
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
// two inputs packed into 16-bit buffers (two pack launches per call) and
// is an Ex GEMM declaring that format: the fake device fails a float32
// GEMM or another format (fakeDevice.inputFormat), and decodes the
// operands as 16-bit values, so an operand that skipped its packing
// fails the test.
func TestMixedPrecisionBenchSmall(t *testing.T) {
	want := vmStep(t, 4, 4)
	dev32 := newFakeDevice()
	f32 := machineStep(t, newSession(dev32, nil), PrecisionOff, 4, 4)
	if dev32.launches["lsf_pack_f16"]+dev32.launches["lsf_pack_bf16"] != 0 {
		t.Fatalf("float32 run launched conversions: %v", dev32.launches)
	}
	for _, p := range []Precision{PrecisionFP16, PrecisionBF16} {
		dev := newFakeDevice()
		dev.inputFormat = p
		got := machineStep(t, newSession(dev, nil), p, 4, 4)
		if n := dev.launches[p.packKernel()]; n != 2*dev.blasCalls || n == 0 {
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
	dev.inputFormat = PrecisionFP16
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
