//go:build cudagpu && linux && (amd64 || arm64)

// GPU tests: run with `go test -tags cudagpu ./pkg/cuda/` on a machine
// with an NVIDIA GPU (scripts/gpu-check.sh builds them here with
// CGO_ENABLED=0 and runs the binary there), or with LSFUSE_FAKE_GPU=1 on
// the fake driver (CI). Each kernel is compared with a plain Go reference
// on the same random inputs.

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lsfuse/lsfuse/internal/fakecuda"
)

var gpuDev *Device

// envFakeGPU, when set, runs the GPU tests on internal/fakecuda's
// stand-ins for the driver and cuBLAS (the kernel sources on the C++
// emulator, GEMMs as loops, the real NVRTC) instead of a GPU: the tests
// themselves and the backend's whole host path run without one.
const envFakeGPU = "LSFUSE_FAKE_GPU"

var fakeGPUOnce sync.Once

// useFakeGPU builds the fake libraries once and puts their folder first in
// LSFUSE_CUDA_LIBS, before anything loads the CUDA stack.
func useFakeGPU(t *testing.T) {
	if os.Getenv(envFakeGPU) == "" {
		return
	}
	fakeGPUOnce.Do(func() {
		src, err := Source()
		if err != nil {
			t.Fatal(err)
		}
		dir, err := fakecuda.Build(filepath.Join(os.TempDir(), fmt.Sprintf("lsfuse-fakecuda-%d", os.Getpid())), src, KernelParams)
		if err != nil {
			t.Fatal(err)
		}
		os.Setenv(EnvLibs, dir+string(filepath.ListSeparator)+os.Getenv(EnvLibs))
	})
}

// gpu opens device 0 once for the package's tests.
func gpu(t *testing.T) *Device {
	t.Helper()
	if gpuDev != nil {
		return gpuDev
	}
	useFakeGPU(t)
	p, err := Probe()
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	t.Logf("driver %d, libraries %v, devices %v", p.DriverVersion, p.Paths, p.Devices)
	rt, _ := Load()
	d, err := rt.Open(0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if os.Getenv(EnvCache) == "" {
		t.Setenv(EnvCache, t.TempDir())
	}
	gpuDev = d
	return d
}

func randF(seed uint64, n int, lo, hi float32) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float32, n)
	for i := range out {
		out[i] = lo + (hi-lo)*r.Float32()
	}
	return out
}

func up(t *testing.T, d *Device, v []float32) Buffer {
	t.Helper()
	b, err := d.Alloc(len(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := Upload(d, b, v); err != nil {
		t.Fatal(err)
	}
	return b
}

func upI(t *testing.T, d *Device, v []int32) Buffer {
	t.Helper()
	b, err := d.Alloc(len(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := Upload(d, b, v); err != nil {
		t.Fatal(err)
	}
	return b
}

func zeros(t *testing.T, d *Device, n int) Buffer { t.Helper(); return up(t, d, make([]float32, n)) }

func down(t *testing.T, d *Device, b Buffer, n int) []float32 {
	t.Helper()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, n)
	if err := Download(d, out, b); err != nil {
		t.Fatal(err)
	}
	return out
}

// near checks got against want elementwise within atol + rtol·|want|.
func near(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*(1+math.Abs(float64(want[i]))) || math.IsNaN(float64(got[i])) {
			t.Errorf("%s[%d] = %g, want %g (tol %g)", name, i, got[i], want[i], tol)
			return
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mapF(x []float32, f func(float64) float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(f(float64(v)))
	}
	return out
}

func zipF(a, b []float32, f func(x, y float64) float64) []float32 {
	out := make([]float32, len(a))
	for i := range a {
		out[i] = float32(f(float64(a[i]), float64(b[i])))
	}
	return out
}

func sig(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func TestGPUElementwise(t *testing.T) {
	d := gpu(t)
	const n = 1000
	a, b := randF(1, n, -3, 3), randF(2, n, 0.5, 2)
	g := randF(3, n, -1, 1)
	ba, bb, bg, y := up(t, d, a), up(t, d, b), up(t, d, g), zeros(t, d, n)
	binary := []struct {
		k string
		f func(x, y float64) float64
	}{
		{"lsf_add", func(x, y float64) float64 { return x + y }},
		{"lsf_sub", func(x, y float64) float64 { return x - y }},
		{"lsf_mul", func(x, y float64) float64 { return x * y }},
		{"lsf_div", func(x, y float64) float64 { return x / y }},
	}
	for _, c := range binary {
		must(t, d.Launch1D(c.k, n, ba, bb, y, n))
		near(t, c.k, down(t, d, y, n), zipF(a, b, c.f), 1e-6)
	}
	unary := []struct {
		k string
		x []float32
		f func(float64) float64
	}{
		{"lsf_neg", a, func(x float64) float64 { return -x }},
		{"lsf_square", a, func(x float64) float64 { return x * x }},
		{"lsf_log", b, math.Log},
		{"lsf_exp", a, math.Exp},
		{"lsf_relu", a, func(x float64) float64 { return math.Max(x, 0) }},
		{"lsf_tanh", a, math.Tanh},
		{"lsf_sigmoid", a, sig},
		{"lsf_silu", a, func(x float64) float64 { return x * sig(x) }},
		{"lsf_lecun_tanh", a, func(x float64) float64 { return 1.7159 * math.Tanh(0.666*x) }},
		{"lsf_gelu", a, func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }},
		{"lsf_heaviside", a, func(x float64) float64 {
			if x > 0 {
				return 1
			}
			return 0
		}},
	}
	for _, c := range unary {
		must(t, d.Launch1D(c.k, n, up(t, d, c.x), y, n))
		near(t, c.k, down(t, d, y, n), mapF(c.x, c.f), 1e-5)
	}
	grads := []struct {
		k string
		f func(x, g float64) float64
		y bool // the kernel takes the forward output
	}{
		{"lsf_relu_grad", func(x, g float64) float64 {
			if x > 0 {
				return g
			}
			return 0
		}, false},
		{"lsf_tanh_grad", func(x, g float64) float64 { t := math.Tanh(x); return g * (1 - t*t) }, true},
		{"lsf_sigmoid_grad", func(x, g float64) float64 { s := sig(x); return g * s * (1 - s) }, true},
		{"lsf_silu_grad", func(x, g float64) float64 { s := sig(x); return g * s * (1 + x*(1-s)) }, false},
		{"lsf_lecun_tanh_grad", func(x, g float64) float64 { t := math.Tanh(0.666 * x); return g * 1.7159 * 0.666 * (1 - t*t) }, false},
		{"lsf_gelu_grad", func(x, g float64) float64 {
			return g * (0.5*(1+math.Erf(x/math.Sqrt2)) + x*math.Exp(-x*x/2)/math.Sqrt(2*math.Pi))
		}, false},
	}
	for _, c := range grads {
		in := ba
		if c.y {
			fwd := map[string]func(float64) float64{"lsf_tanh_grad": math.Tanh, "lsf_sigmoid_grad": sig}[c.k]
			in = up(t, d, mapF(a, fwd))
		}
		must(t, d.Launch1D(c.k, n, in, bg, y, n))
		near(t, c.k, down(t, d, y, n), zipF(a, g, c.f), 1e-5)
	}
	// Surrogates (DESIGN.md §1): fast_sigmoid k=25, atan α=2, sigmoid k=5; scale m.
	surr := []struct {
		kind int
		k, m float64
		f    func(x float64) float64
	}{
		{0, 25, 1, func(x float64) float64 { q := 1 + 25*math.Abs(x); return 1 / (q * q) }},
		{1, 2, 1, func(x float64) float64 { q := math.Pi / 2 * 2 * x; return 1 / (1 + q*q) }},
		{2, 5, 0.5, func(x float64) float64 { s := sig(5 * x); return 0.5 * 5 * s * (1 - s) }},
		{3, 1, 1, func(x float64) float64 { return math.Max(0, 1-math.Abs(x)) }},
		{4, 0, 2, func(float64) float64 { return 2 }},
	}
	for _, c := range surr {
		must(t, d.Launch1D("lsf_spike_grad", n, ba, bg, y, n, c.kind, c.k, c.m))
		near(t, "lsf_spike_grad", down(t, d, y, n), zipF(a, g, func(x, g float64) float64 { return g * c.f(x) }), 1e-5)
	}
	const m = 10
	must(t, d.Launch1D("lsf_add_row", n, ba, bb, y, n, m))
	near(t, "lsf_add_row", down(t, d, y, n), func() []float32 {
		o := make([]float32, n)
		for i := range o {
			o[i] = a[i] + b[i%m]
		}
		return o
	}(), 1e-6)
	must(t, d.Launch1D("lsf_scale", n, ba, float32(-0.5), y, n))
	near(t, "lsf_scale", down(t, d, y, n), mapF(a, func(x float64) float64 { return -0.5 * x }), 1e-6)
	must(t, d.Launch1D("lsf_accum", n, ba, y, n)) // y = −0.5a + a
	near(t, "lsf_accum", down(t, d, y, n), mapF(a, func(x float64) float64 { return 0.5 * x }), 1e-6)
}

// TestGPULIF runs the fused LIF forward and backward for every reset mode
// and both current layouts against a float64 reference of the same
// recurrence (model.LIFSeq's semantics).
func TestGPULIF(t *testing.T) {
	d := gpu(t)
	const n, steps = 300, 8
	beta, theta := 0.9, 1.0
	k, m := 25.0, 1.0
	for _, perStep := range []int{0, 1} {
		for reset := 0; reset < 3; reset++ {
			cl := n
			if perStep == 1 {
				cl = n * steps
			}
			cur, g := randF(uint64(40+reset), cl, -0.5, 1.5), randF(uint64(50+reset), n*steps, -1, 1)
			spk, mem, dcur := zeros(t, d, n*steps), zeros(t, d, n*steps), zeros(t, d, cl)
			must(t, d.Launch1D("lsf_lif_seq_forward", n, up(t, d, cur), Buffer{}, Buffer{}, Buffer{}, spk, mem, n, n, steps, perStep, reset, 0, beta, theta))
			must(t, d.Launch1D("lsf_lif_seq_backward", n, mem, up(t, d, g), Buffer{}, Buffer{}, Buffer{}, dcur, Buffer{}, n, n, steps, perStep, reset, 0, beta, theta, 0, k, m))
			wantS, wantD := make([]float32, n*steps), make([]float32, cl)
			for i := 0; i < n; i++ {
				u := make([]float64, steps+1)
				for s := 0; s < steps; s++ {
					x := float64(cur[i])
					if perStep == 1 {
						x = float64(cur[s*n+i])
					}
					p := u[s]
					fired := p-theta > 0
					switch {
					case reset == 0 && fired:
						u[s+1] = beta*p + x - theta
					case reset == 1 && fired:
						u[s+1] = x
					default:
						u[s+1] = beta*p + x
					}
					if u[s+1]-theta > 0 {
						wantS[s*n+i] = 1
					}
				}
				var carry, sum float64
				for s := steps - 1; s >= 0; s-- {
					q := 1 + k*math.Abs(u[s+1]-theta)
					delta := float64(g[s*n+i])*m/(q*q) + carry
					if perStep == 1 {
						wantD[s*n+i] = float32(delta)
					} else {
						sum += delta
					}
					keep := 1.0
					if reset == 1 && u[s]-theta > 0 {
						keep = 0
					}
					carry = delta * beta * keep
				}
				if perStep == 0 {
					wantD[i] = float32(sum)
				}
			}
			near(t, "lif spikes", down(t, d, spk, n*steps), wantS, 0)
			near(t, "lif dcur", down(t, d, dcur, cl), wantD, 1e-4)
		}
	}
}

func TestGPUReductions(t *testing.T) {
	d := gpu(t)
	const outer, length, inner = 3, 5, 7
	n := outer * length * inner
	x := randF(5, n, -1, 1)
	bx := up(t, d, x)
	want := make([]float32, outer*inner)
	for o := 0; o < outer; o++ {
		for j := 0; j < length; j++ {
			for k := 0; k < inner; k++ {
				want[o*inner+k] += 0.5 * x[(o*length+j)*inner+k]
			}
		}
	}
	y := zeros(t, d, outer*inner)
	must(t, d.Launch1D("lsf_sum_mid", outer*inner, bx, y, outer, length, inner, float32(0.5)))
	near(t, "lsf_sum_mid", down(t, d, y, outer*inner), want, 1e-5)
	bw := zeros(t, d, n)
	must(t, d.Launch1D("lsf_broadcast_mid", n, y, bw, outer, length, inner, float32(2)))
	got := down(t, d, bw, n)
	for i := range got {
		o, k := i/(length*inner), i%inner
		if math.Abs(float64(got[i]-2*want[o*inner+k])) > 1e-5 {
			t.Fatalf("lsf_broadcast_mid[%d] = %g", i, got[i])
		}
	}
	rows, cols := outer*length, inner
	sr := make([]float32, cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			sr[c] += x[r*cols+c]
		}
	}
	must(t, launchSumRows(d, bx, y, rows, cols))
	near(t, "lsf_sum_rows", down(t, d, y, cols), sr, 1e-5)
	big := randF(6, 5000, -1, 1)
	var s float64
	for _, v := range big {
		s += float64(v)
	}
	one := zeros(t, d, 1)
	must(t, d.LaunchRows("lsf_sum_all", 1, up(t, d, big), one, len(big)))
	near(t, "lsf_sum_all", down(t, d, one, 1), []float32{float32(s)}, 1e-4)
	// [B=outer, C=length, S=inner]: channel sums, stats, affine, bias.
	cs, mean, vr := make([]float32, length), make([]float32, length), make([]float32, length)
	for c := 0; c < length; c++ {
		var s, q float64
		for b := 0; b < outer; b++ {
			for k := 0; k < inner; k++ {
				s += float64(x[(b*length+c)*inner+k])
			}
		}
		mu := s / float64(outer*inner)
		for b := 0; b < outer; b++ {
			for k := 0; k < inner; k++ {
				v := float64(x[(b*length+c)*inner+k]) - mu
				q += v * v
			}
		}
		cs[c], mean[c], vr[c] = float32(s), float32(mu), float32(q/float64(outer*inner))
	}
	yc := zeros(t, d, length)
	must(t, d.LaunchRows("lsf_channel_sum", length, bx, yc, outer, length, inner))
	near(t, "lsf_channel_sum", down(t, d, yc, length), cs, 1e-5)
	bm, bv := zeros(t, d, length), zeros(t, d, length)
	must(t, d.LaunchRows("lsf_channel_stats", length, bx, bm, bv, outer, length, inner))
	near(t, "lsf_channel_stats mean", down(t, d, bm, length), mean, 1e-5)
	near(t, "lsf_channel_stats var", down(t, d, bv, length), vr, 1e-5)
	w, bias := randF(7, length, 0.5, 1.5), randF(8, length, -1, 1)
	wantA := make([]float32, n)
	for i := range wantA {
		c := (i / inner) % length
		wantA[i] = (x[i]-mean[c])/float32(math.Sqrt(float64(vr[c])+1e-5))*w[c] + bias[c]
	}
	ya := zeros(t, d, n)
	must(t, d.Launch1D("lsf_channel_affine", n, bx, bm, bv, up(t, d, w), up(t, d, bias), ya, outer, length, inner, float32(1e-5)))
	near(t, "lsf_channel_affine", down(t, d, ya, n), wantA, 1e-4)
	// Batch-norm backward (training) against the closed form.
	gg, gamma := randF(33, n, -1, 1), randF(34, length, 0.5, 1.5)
	bgg := up(t, d, gg)
	sg, sgx, bdx := zeros(t, d, length), zeros(t, d, length), zeros(t, d, n)
	must(t, d.LaunchRows("lsf_bn_grad_sums", length, bx, bgg, bm, bv, sg, sgx, outer, length, inner, float32(1e-5)))
	must(t, d.Launch1D("lsf_bn_grad_x", n, bx, bgg, up(t, d, gamma), bm, bv, sg, sgx, bdx, outer, length, inner, float32(1e-5), 1))
	wsg, wsgx, wbdx := make([]float32, length), make([]float32, length), make([]float32, n)
	xhat := func(i int) float64 {
		c := (i / inner) % length
		return float64(x[i]-mean[c]) / math.Sqrt(float64(vr[c])+1e-5)
	}
	for i := range gg {
		c := (i / inner) % length
		wsg[c] += gg[i]
		wsgx[c] += float32(float64(gg[i]) * xhat(i))
	}
	for i := range gg {
		c := (i / inner) % length
		nn := float64(outer * inner)
		wbdx[i] = float32(float64(gamma[c]) / math.Sqrt(float64(vr[c])+1e-5) * (float64(gg[i]) - float64(wsg[c])/nn - xhat(i)*float64(wsgx[c])/nn))
	}
	near(t, "lsf_bn_grad_sums sg", down(t, d, sg, length), wsg, 1e-4)
	near(t, "lsf_bn_grad_sums sgx", down(t, d, sgx, length), wsgx, 1e-4)
	near(t, "lsf_bn_grad_x", down(t, d, bdx, n), wbdx, 1e-4)
	must(t, d.Launch1D("lsf_add_channel", n, bx, up(t, d, bias), outer, length, inner)) // in place on x
	got = down(t, d, bx, n)
	for i := range got {
		if math.Abs(float64(got[i]-x[i]-bias[(i/inner)%length])) > 1e-6 {
			t.Fatalf("lsf_add_channel[%d] = %g", i, got[i])
		}
	}
}

func TestGPULayout(t *testing.T) {
	d := gpu(t)
	const outer, length, inner, start, count = 2, 6, 3, 1, 4
	x := randF(9, outer*length*inner, -1, 1)
	bx := up(t, d, x)
	m := outer * count * inner
	y := zeros(t, d, m)
	must(t, d.Launch1D("lsf_slice_get", m, bx, y, outer, length, inner, start, count))
	want := make([]float32, 0, m)
	for o := 0; o < outer; o++ {
		want = append(want, x[(o*length+start)*inner:(o*length+start+count)*inner]...)
	}
	near(t, "lsf_slice_get", down(t, d, y, m), want, 0)
	back := zeros(t, d, outer*length*inner)
	must(t, d.Launch1D("lsf_slice_put", m, y, back, outer, length, inner, start, count))
	gotBack := down(t, d, back, outer*length*inner)
	for i, v := range gotBack {
		j := (i / inner) % length
		w := float32(0)
		if j >= start && j < start+count {
			w = x[i]
		}
		if v != w {
			t.Fatalf("lsf_slice_put[%d] = %g, want %g", i, v, w)
		}
	}
	// swap12 of [2,3,4,5] → [2,4,3,5].
	d0, d1, d2, in := 2, 3, 4, 5
	s := randF(10, d0*d1*d2*in, -1, 1)
	ys := zeros(t, d, len(s))
	must(t, d.Launch1D("lsf_swap12", len(s), up(t, d, s), ys, d0, d1, d2, in))
	ws := make([]float32, len(s))
	for o := 0; o < d0; o++ {
		for a := 0; a < d1; a++ {
			for b := 0; b < d2; b++ {
				for k := 0; k < in; k++ {
					ws[((o*d2+b)*d1+a)*in+k] = s[((o*d1+a)*d2+b)*in+k]
				}
			}
		}
	}
	near(t, "lsf_swap12", down(t, d, ys, len(s)), ws, 0)
	// Row and column gathers and their scatters (index −1: padding).
	table := randF(11, 10*4, -1, 1)
	idx := []int32{3, -1, 9, 3, 0}
	gy := zeros(t, d, 5*4)
	bidx := upI(t, d, idx)
	must(t, d.Launch1D("lsf_gather_rows", 20, up(t, d, table), bidx, gy, 5, 4))
	wg := make([]float32, 20)
	for r, j := range idx {
		if j >= 0 {
			copy(wg[r*4:], table[int(j)*4:int(j)*4+4])
		}
	}
	near(t, "lsf_gather_rows", down(t, d, gy, 20), wg, 0)
	dt := zeros(t, d, 40)
	must(t, d.Launch1D("lsf_scatter_add_rows", 20, gy, bidx, dt, 5, 4))
	wd := make([]float32, 40)
	for r, j := range idx {
		for k := 0; k < 4 && j >= 0; k++ {
			wd[int(j)*4+k] += wg[r*4+k]
		}
	}
	near(t, "lsf_scatter_add_rows", down(t, d, dt, 40), wd, 1e-6)
	// Columns: x [4, 10], idx over columns.
	gc := zeros(t, d, 4*5)
	must(t, d.Launch1D("lsf_gather_cols", 20, up(t, d, table), bidx, gc, 4, 10, 5))
	wc := make([]float32, 20)
	for r := 0; r < 4; r++ {
		for j, c := range idx {
			if c >= 0 {
				wc[r*5+j] = table[r*10+int(c)]
			}
		}
	}
	near(t, "lsf_gather_cols", down(t, d, gc, 20), wc, 0)
}

func TestGPURowKernels(t *testing.T) {
	d := gpu(t)
	const rows, cols = 6, 37
	x, w, bias, g := randF(12, rows*cols, -2, 2), randF(13, cols, 0.5, 1.5), randF(14, cols, -1, 1), randF(15, rows*cols, -1, 1)
	bx, bw, bb, bg := up(t, d, x), up(t, d, w), up(t, d, bias), up(t, d, g)
	y, mean, rstd := zeros(t, d, rows*cols), zeros(t, d, rows), zeros(t, d, rows)
	must(t, d.LaunchRows("lsf_layernorm", rows, bx, bw, bb, y, mean, rstd, rows, cols, float32(1e-5)))
	// Reference in float64: forward, dx, dw, db.
	wy, wdx, wdw, wdb := make([]float32, rows*cols), make([]float32, rows*cols), make([]float32, cols), make([]float32, cols)
	for r := 0; r < rows; r++ {
		var mu, v float64
		for c := 0; c < cols; c++ {
			mu += float64(x[r*cols+c])
		}
		mu /= cols
		for c := 0; c < cols; c++ {
			q := float64(x[r*cols+c]) - mu
			v += q * q
		}
		rs := 1 / math.Sqrt(v/cols+1e-5)
		var s1, s2 float64
		for c := 0; c < cols; c++ {
			xh := (float64(x[r*cols+c]) - mu) * rs
			wy[r*cols+c] = float32(xh*float64(w[c]) + float64(bias[c]))
			gh := float64(g[r*cols+c] * w[c])
			s1 += gh
			s2 += gh * xh
			wdw[c] += float32(float64(g[r*cols+c]) * xh)
			wdb[c] += g[r*cols+c]
		}
		for c := 0; c < cols; c++ {
			xh := (float64(x[r*cols+c]) - mu) * rs
			wdx[r*cols+c] = float32(rs * (float64(g[r*cols+c]*w[c]) - s1/cols - xh*s2/cols))
		}
	}
	near(t, "lsf_layernorm", down(t, d, y, rows*cols), wy, 1e-4)
	dx := zeros(t, d, rows*cols)
	must(t, d.LaunchRows("lsf_layernorm_grad_x", rows, bx, bw, bg, mean, rstd, dx, rows, cols))
	near(t, "lsf_layernorm_grad_x", down(t, d, dx, rows*cols), wdx, 1e-4)
	dw, db := zeros(t, d, cols), zeros(t, d, cols)
	must(t, d.Launch1D("lsf_layernorm_grad_wb", cols, bx, bg, mean, rstd, dw, db, rows, cols))
	near(t, "lsf_layernorm_grad_wb dw", down(t, d, dw, cols), wdw, 1e-4)
	near(t, "lsf_layernorm_grad_wb db", down(t, d, db, cols), wdb, 1e-4)

	// Softmax with a key mask shared by 2 consecutive rows (heads).
	mask := make([]float32, rows/2*cols)
	for i := range mask {
		if i%5 != 2 {
			mask[i] = 1
		}
	}
	sm := zeros(t, d, rows*cols)
	must(t, d.LaunchRows("lsf_softmax", rows, bx, up(t, d, mask), sm, rows, cols, 2))
	wsm := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		var mx, s float64 = -1e30, 0
		for c := 0; c < cols; c++ {
			if mask[(r/2)*cols+c] > 0 {
				mx = math.Max(mx, float64(x[r*cols+c]))
			}
		}
		for c := 0; c < cols; c++ {
			if mask[(r/2)*cols+c] > 0 {
				s += math.Exp(float64(x[r*cols+c]) - mx)
			}
		}
		for c := 0; c < cols; c++ {
			if mask[(r/2)*cols+c] > 0 {
				wsm[r*cols+c] = float32(math.Exp(float64(x[r*cols+c])-mx) / s)
			}
		}
	}
	gotSM := down(t, d, sm, rows*cols)
	near(t, "lsf_softmax", gotSM, wsm, 1e-5)
	sg := zeros(t, d, rows*cols)
	must(t, d.LaunchRows("lsf_softmax_grad", rows, sm, bg, sg, rows, cols))
	wsg := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		var s float64
		for c := 0; c < cols; c++ {
			s += float64(g[r*cols+c] * wsm[r*cols+c])
		}
		for c := 0; c < cols; c++ {
			wsg[r*cols+c] = float32(float64(wsm[r*cols+c]) * (float64(g[r*cols+c]) - s))
		}
	}
	near(t, "lsf_softmax_grad", down(t, d, sg, rows*cols), wsg, 1e-5)

	// Cross-entropy with one ignored row.
	labels := []int32{0, 5, -100, 36, 7, 1}
	bl := upI(t, d, labels)
	loss, cnt := zeros(t, d, rows), zeros(t, d, rows)
	must(t, d.LaunchRows("lsf_xent", rows, bx, bl, loss, cnt, rows, cols, -100))
	wl, wc := make([]float32, rows), make([]float32, rows)
	wgx := make([]float32, rows*cols)
	for r, l := range labels {
		if l < 0 {
			continue
		}
		var mx, s float64 = -1e30, 0
		for c := 0; c < cols; c++ {
			mx = math.Max(mx, float64(x[r*cols+c]))
		}
		for c := 0; c < cols; c++ {
			s += math.Exp(float64(x[r*cols+c]) - mx)
		}
		wl[r], wc[r] = float32(math.Log(s)+mx-float64(x[r*cols+int(l)])), 1
		for c := 0; c < cols; c++ {
			p := math.Exp(float64(x[r*cols+c])-mx) / s
			if c == int(l) {
				p--
			}
			wgx[r*cols+c] = float32(0.2 * p)
		}
	}
	near(t, "lsf_xent loss", down(t, d, loss, rows), wl, 1e-5)
	near(t, "lsf_xent count", down(t, d, cnt, rows), wc, 0)
	gx := zeros(t, d, rows*cols)
	must(t, d.LaunchRows("lsf_xent_grad", rows, bx, bl, gx, rows, cols, -100, float32(0.2)))
	near(t, "lsf_xent_grad", down(t, d, gx, rows*cols), wgx, 1e-5)
}

func TestGPUPoolConv(t *testing.T) {
	d := gpu(t)
	const rows, length, k, stride, pad = 4, 11, 3, 2, 1
	outLen := (length+2*pad-k)/stride + 1
	x := randF(16, rows*length, -1, 1)
	bx := up(t, d, x)
	y, arg := zeros(t, d, rows*outLen), zeros(t, d, rows*outLen)
	must(t, d.Launch1D("lsf_maxpool1d", rows*outLen, bx, y, arg, rows, length, outLen, k, stride, pad))
	wy := make([]float32, rows*outLen)
	wdx := make([]float32, rows*length)
	for r := 0; r < rows; r++ {
		for o := 0; o < outLen; o++ {
			best, bi := float32(-3e38), -1
			for j := 0; j < k; j++ {
				p := o*stride - pad + j
				if p >= 0 && p < length && x[r*length+p] > best {
					best, bi = x[r*length+p], p
				}
			}
			wy[r*outLen+o] = best
			wdx[r*length+bi] += 1
		}
	}
	near(t, "lsf_maxpool1d", down(t, d, y, rows*outLen), wy, 0)
	ones := up(t, d, mapF(make([]float32, rows*outLen), func(float64) float64 { return 1 }))
	dx := zeros(t, d, rows*length)
	must(t, d.Launch1D("lsf_maxpool1d_grad", rows*outLen, ones, arg, dx, rows, length, outLen))
	near(t, "lsf_maxpool1d_grad", down(t, d, dx, rows*length), wdx, 0)

	const ch, outC = 3, 5
	// 2-D convolution columns: the adjoint identity and a direct convolution.
	const h, w, kh, kw = 5, 6, 3, 3
	oh, ow := h, w // stride 1, padding 1
	x2 := randF(20, ch*h*w, -1, 1)
	c2 := zeros(t, d, ch*kh*kw*oh*ow)
	must(t, d.Launch1D("lsf_im2col2d", ch*kh*kw*oh*ow, up(t, d, x2), c2, ch, h, w, kh, kw, 1, 1, 1, 1, oh, ow))
	w2 := randF(21, outC*ch*kh*kw, -1, 1)
	o2 := zeros(t, d, outC*oh*ow)
	must(t, d.Gemm(false, false, outC, oh*ow, ch*kh*kw, 1, up(t, d, w2), ch*kh*kw, c2, oh*ow, 0, o2, oh*ow))
	want2 := make([]float32, outC*oh*ow)
	for o := 0; o < outC; o++ {
		for yy := 0; yy < oh; yy++ {
			for xx := 0; xx < ow; xx++ {
				var s float32
				for c := 0; c < ch; c++ {
					for ky := 0; ky < kh; ky++ {
						for kx := 0; kx < kw; kx++ {
							iy, ix := yy-1+ky, xx-1+kx
							if iy >= 0 && iy < h && ix >= 0 && ix < w {
								s += w2[((o*ch+c)*kh+ky)*kw+kx] * x2[(c*h+iy)*w+ix]
							}
						}
					}
				}
				want2[(o*oh+yy)*ow+xx] = s
			}
		}
	}
	near(t, "conv2d (im2col+sgemm)", down(t, d, o2, outC*oh*ow), want2, 1e-5)
	cv2 := randF(22, ch*kh*kw*oh*ow, -1, 1)
	dx2 := zeros(t, d, ch*h*w)
	must(t, d.Launch1D("lsf_col2im2d", len(cv2), up(t, d, cv2), dx2, ch, h, w, kh, kw, 1, 1, 1, 1, oh, ow))
	c2H := down(t, d, c2, len(cv2))
	var lhs, rhs float64
	for i := range cv2 {
		lhs += float64(c2H[i] * cv2[i])
	}
	for i, v := range down(t, d, dx2, ch*h*w) {
		rhs += float64(v * x2[i])
	}
	if math.Abs(lhs-rhs) > 1e-4 {
		t.Errorf("col2im2d is not the adjoint of im2col2d: %g vs %g", lhs, rhs)
	}
}

func TestGPUGemm(t *testing.T) {
	d := gpu(t)
	const m, n, k = 33, 17, 29
	a, b := randF(23, m*k, -1, 1), randF(24, k*n, -1, 1)
	ref := func(ta, tb bool) []float32 {
		out := make([]float32, m*n)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var s float32
				for p := 0; p < k; p++ {
					av, bv := a[i*k+p], b[p*n+j]
					if ta {
						av = a[p*m+i]
					}
					if tb {
						bv = b[j*k+p]
					}
					s += av * bv
				}
				out[i*n+j] = s
			}
		}
		return out
	}
	ba, bb := up(t, d, a), up(t, d, b)
	for _, c := range []struct{ ta, tb bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		lda, ldb := k, n
		if c.ta {
			lda = m
		}
		if c.tb {
			ldb = k
		}
		y := zeros(t, d, m*n)
		must(t, d.Gemm(c.ta, c.tb, m, n, k, 1, ba, lda, bb, ldb, 0, y, n))
		near(t, "sgemm", down(t, d, y, m*n), ref(c.ta, c.tb), 1e-4)
	}
	// Batched: 3 copies of the same product via pointer arrays.
	const count = 3
	a3 := append(append(append([]float32{}, a...), a...), a...)
	b3 := append(append(append([]float32{}, b...), b...), b...)
	ba3, bb3, c3 := up(t, d, a3), up(t, d, b3), zeros(t, d, count*m*n)
	pa, err := d.PointerArray(ba3, m*k, count)
	must(t, err)
	pb, err := d.PointerArray(bb3, k*n, count)
	must(t, err)
	pc, err := d.PointerArray(c3, m*n, count)
	must(t, err)
	must(t, d.GemmBatched(false, false, m, n, k, 1, pa, k, pb, n, 0, pc, n, count))
	want := ref(false, false)
	near(t, "sgemm batched", down(t, d, c3, count*m*n), append(append(append([]float32{}, want...), want...), want...), 1e-4)
}

func TestGPUFusionKernels(t *testing.T) {
	d := gpu(t)
	const b, dim, m, col = 4, 6, 3, 1
	f, e, g := randF(25, b*dim, -1, 1), randF(26, dim, -1, 1), randF(27, b*dim, -1, 1)
	mask := []float32{1, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0}
	bf, be, bg, bm := up(t, d, f), up(t, d, e), up(t, d, g), up(t, d, mask)
	y := zeros(t, d, b*dim)
	must(t, d.Launch1D("lsf_substitute", b*dim, bf, be, bm, y, b, dim, m, col))
	ws, wr := make([]float32, b*dim), make([]float32, b*dim)
	wm := make([]float32, dim)
	for i := range ws {
		kk := mask[(i/dim)*m+col]
		ws[i] = kk*f[i] + (1-kk)*e[i%dim]
		wr[i] = g[i] * kk
		wm[i%dim] += (1 - kk) * g[i]
	}
	near(t, "lsf_substitute", down(t, d, y, b*dim), ws, 1e-6)
	must(t, d.Launch1D("lsf_mask_rows", b*dim, bg, bm, y, b, dim, m, col))
	near(t, "lsf_mask_rows", down(t, d, y, b*dim), wr, 1e-6)
	de := zeros(t, d, dim)
	must(t, d.Launch1D("lsf_missing_grad", dim, bg, bm, de, b, dim, m, col))
	near(t, "lsf_missing_grad", down(t, d, de, dim), wm, 1e-6)
	logits := []float32{0.2, -0.5, 1.0}
	var z float64
	for _, l := range logits {
		z += math.Exp(float64(l))
	}
	wt := func(j int) float64 { return math.Exp(float64(logits[j])) / z }
	bl := up(t, d, logits)
	must(t, d.Launch1D("lsf_weighted", b*dim, bf, bl, y, b*dim, m, col, float32(m)))
	near(t, "lsf_weighted", down(t, d, y, b*dim), mapF(f, func(x float64) float64 { return 3 * wt(col) * x }), 1e-5)
	dl := zeros(t, d, m)
	must(t, d.LaunchRows("lsf_weighted_logit_grad", 1, bg, bf, bl, dl, b*dim, m, col, float32(m)))
	var s float64
	for i := range g {
		s += float64(g[i] * f[i])
	}
	wdl := make([]float32, m)
	for j := range wdl {
		delta := 0.0
		if j == col {
			delta = 1
		}
		wdl[j] = float32(3 * s * wt(col) * (delta - wt(j)))
	}
	near(t, "lsf_weighted_logit_grad", down(t, d, dl, m), wdl, 1e-5)
	// Token pooling [B=4, L=3, D=6/…]: reuse f as x [4,3,2] with weights [4,3].
	const L, D = 3, 2
	pw := randF(28, b*L, 0, 1)
	ps := zeros(t, d, b*D)
	must(t, d.Launch1D("lsf_weighted_sum_l", b*D, bf, up(t, d, pw), ps, b, L, D))
	wps := make([]float32, b*D)
	for r := 0; r < b; r++ {
		for j := 0; j < L; j++ {
			for k := 0; k < D; k++ {
				wps[r*D+k] += pw[r*L+j] * f[(r*L+j)*D+k]
			}
		}
	}
	near(t, "lsf_weighted_sum_l", down(t, d, ps, b*D), wps, 1e-5)
	sp := zeros(t, d, b*L*D)
	must(t, d.Launch1D("lsf_spread_l", b*L*D, ps, up(t, d, pw), sp, b, L, D))
	wsp := make([]float32, b*L*D)
	for i := range wsp {
		wsp[i] = pw[i/D] * wps[(i/(L*D))*D+i%D]
	}
	near(t, "lsf_spread_l", down(t, d, sp, b*L*D), wsp, 1e-5)
}

func TestGPUAdam(t *testing.T) {
	d := gpu(t)
	const n = 100
	p, g := randF(29, n, -1, 1), randF(30, n, -1, 1)
	m, v := randF(31, n, -0.1, 0.1), randF(32, n, 0, 0.01)
	bp, bg, bm, bv := up(t, d, p), up(t, d, g), up(t, d, m), up(t, d, v)
	lr, b1, b2, eps, wd := 1e-2, 0.9, 0.999, 1e-8, 0.01
	must(t, d.Launch1D("lsf_adam", n, bp, bg, bm, bv, n, lr, b1, b2, eps, wd, 1.0))
	wp := make([]float32, n)
	for i := range wp {
		gi := float64(g[i]) + wd*float64(p[i])
		mi := b1*float64(m[i]) + (1-b1)*gi
		vi := b2*float64(v[i]) + (1-b2)*gi*gi
		wp[i] = float32(float64(p[i]) - lr*mi/(math.Sqrt(vi)+eps))
	}
	near(t, "lsf_adam", down(t, d, bp, n), wp, 1e-5)
	near(t, "lsf_adam zeroes the gradient", down(t, d, bg, n), make([]float32, n), 0)
}

// TestGPUErrors checks launch argument errors reach the caller before the
// driver sees them.
func TestGPUErrors(t *testing.T) {
	d := gpu(t)
	if err := d.Launch1D("lsf_add", 4, Buffer{}, 4); err == nil {
		t.Error("a wrong argument count launched")
	}
	if err := d.Launch1D("lsf_missing_kernel", 4); err == nil {
		t.Error("an unknown kernel launched")
	}
}
