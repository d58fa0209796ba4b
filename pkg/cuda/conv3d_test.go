package cuda

import (
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/vm"
)

// convCase is one convolution layer applied to an input of shape, with
// the column kernels its lowering must launch (want) and must not (not).
type convCase struct {
	what      string
	shape     tensor.Shape
	layer     func(c *nn.Ctx, x *G.Node) (*G.Node, error)
	want, not []string
}

// conv3dKernels and conv2dKernels are the column kernels of the 3-D and
// of the planar path.
var (
	conv3dKernels = []string{"lsf_im2col3d", "lsf_col2im3d"}
	conv2dKernels = []string{"lsf_im2col2d", "lsf_col2im2d"}
)

// convCases are Conv3d layers over strides 1 and 2, padding, dilation,
// groups (two, depthwise), a pointwise kernel, odd sizes, batches of one
// to three, with and without bias; a dilated grouped Conv1d (the 3-D
// kernels with a different setting per axis: kernel, stride, padding and
// dilation 1 on the added axes) and an undilated Conv2d (still the 2-D
// kernels).
func convCases() []convCase {
	c3 := func(what string, shape tensor.Shape, l nn.Conv3d) convCase {
		return convCase{"conv3d " + what, shape,
			func(c *nn.Ctx, x *G.Node) (*G.Node, error) { return l.Forward(c.Sub("conv"), x) }, conv3dKernels, conv2dKernels}
	}
	return []convCase{
		c3("stride1 pad1", tensor.Shape{2, 3, 4, 5, 6}, nn.Conv3d{InC: 3, OutC: 4, Kernel: 3, Padding: 1}),
		c3("stride2 pad1 no bias (the video preprocessor's)", tensor.Shape{2, 3, 5, 7, 6}, nn.Conv3d{InC: 3, OutC: 5, Kernel: 3, Stride: 2, Padding: 1, NoBias: true}),
		c3("stride2 dilation2", tensor.Shape{1, 2, 6, 5, 7}, nn.Conv3d{InC: 2, OutC: 3, Kernel: 2, Stride: 2, Dilation: 2}),
		c3("groups2 pad1", tensor.Shape{3, 4, 5, 4, 5}, nn.Conv3d{InC: 4, OutC: 6, Kernel: 3, Padding: 1, Groups: 2}),
		c3("depthwise stride2 pad2 dilation2", tensor.Shape{2, 4, 7, 6, 5}, nn.Conv3d{InC: 4, OutC: 8, Kernel: 3, Stride: 2, Padding: 2, Dilation: 2, Groups: 4}),
		c3("stride3 pad2 kernel larger than the stride", tensor.Shape{2, 2, 5, 7, 9}, nn.Conv3d{InC: 2, OutC: 3, Kernel: 4, Stride: 3, Padding: 2}),
		c3("pointwise", tensor.Shape{2, 3, 3, 4, 5}, nn.Conv3d{InC: 3, OutC: 5, Kernel: 1}),
		{"conv1d stride2 pad2 dilation2 groups2", tensor.Shape{2, 4, 9}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv1d{InC: 4, OutC: 6, Kernel: 3, Stride: 2, Padding: 2, Dilation: 2, Groups: 2}.Forward(c.Sub("conv"), x)
		}, conv3dKernels, conv2dKernels},
		{"conv2d stride2 pad1 groups2", tensor.Shape{2, 4, 7, 6}, func(c *nn.Ctx, x *G.Node) (*G.Node, error) {
			return nn.Conv2d{InC: 4, OutC: 6, Kernel: 3, Stride: 2, Padding: 1, Groups: 2}.Forward(c.Sub("conv"), x)
		}, conv2dKernels, conv3dKernels},
	}
}

// convGraph builds cc's layer on an input x (normal values) and the loss
// Σ y·w for a fixed random w, with the backward of x and of the layer's
// parameters; it returns the graph, its learnables (x first) and y.
func convGraph(t *testing.T, cc convCase) (*G.ExprGraph, G.Nodes, *G.Node) {
	t.Helper()
	g := G.NewGraph()
	store, err := nn.NewStore(tensor.Float32, 3)
	if err != nil {
		t.Fatal(err)
	}
	c := nn.NewCtx(g, store, nn.CtxOptions{Train: true, NoiseSeed: 7})
	rng := rand.New(rand.NewSource(int64(cc.shape.TotalSize())))
	x := G.NewTensor(g, tensor.Float32, cc.shape.Dims(), G.WithShape(cc.shape...), G.WithName("x"), G.WithValue(randDense(rng, cc.shape)))
	y, err := cc.layer(c, x)
	if err != nil {
		t.Fatal(err)
	}
	w := G.NewTensor(g, tensor.Float32, y.Shape().Dims(), G.WithShape(y.Shape()...), G.WithName("w"), G.WithValue(randDense(rng, y.Shape())))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(y, w))))
	learn := append(G.Nodes{x}, c.Learnables()...)
	if _, err := G.Grad(loss, learn...); err != nil {
		t.Fatal(err)
	}
	return g, learn, y
}

// maxRelErr is the largest |got − want| over the largest |want| of each
// pair of tensors (the measure closeTo's tolerance applies to).
func maxRelErr(got, want [][]float32) float64 {
	worst := 0.0
	for i := range want {
		scale, d := 0.0, 0.0
		for j, v := range want[i] {
			scale = math.Max(scale, math.Abs(float64(v)))
			d = math.Max(d, math.Abs(float64(got[i][j])-float64(v)))
		}
		worst = math.Max(worst, d/scale)
	}
	return worst
}

// convMatchesVM runs cc on vm.Machine and on a Machine over dev (with
// opts) for two runs, gradients accumulating, and checks the output after
// each run and the gradients of x, the weight and the bias (the forward,
// both gradient ops and ChannelSum) to tol of each tensor's largest entry,
// and that every step ran on the device. It returns the largest error
// relative to its tensor's largest entry.
func convMatchesVM(t *testing.T, cc convCase, dev *fakeDevice, tol float64, opts ...Option) float64 {
	t.Helper()
	gr, lr, yr := convGraph(t, cc)
	gg, lg, yg := convGraph(t, cc)
	cpu, err := vm.New(gr, lr)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	m, err := NewMachine(gg, lg, append([]Option{WithSession(newSession(dev, nil)), Fetch(yg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	worst := 0.0
	for run := 0; run < 2; run++ {
		runBoth(t, cpu, m)
		got, want := valuesOf(G.Nodes{yg}), valuesOf(G.Nodes{yr})
		closeTo(t, fmt.Sprintf("run %d output", run), G.Nodes{yr}, got, want, tol)
		worst = math.Max(worst, maxRelErr(got, want))
	}
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	got, want := gradsOf(t, lg), gradsOf(t, lr)
	closeTo(t, "gradient", lr, got, want, tol)
	worst = math.Max(worst, maxRelErr(got, want))
	if host := m.HostSteps(); len(host) != 0 {
		t.Errorf("host steps %v, want none", host)
	}
	return worst
}

// TestConvLoweredMatchesVM runs every convCase through convMatchesVM on
// the fake device (Go transcriptions of the kernels) to 1e-5, and checks
// that the case's column kernels (and not the other path's) were
// launched.
func TestConvLoweredMatchesVM(t *testing.T) {
	for _, cc := range convCases() {
		t.Run(cc.what, func(t *testing.T) {
			dev := newFakeDevice()
			worst := convMatchesVM(t, cc, dev, 1e-5)
			t.Logf("max relative error %.3g over y, dx, dW, db", worst)
			for _, k := range cc.want {
				if dev.launches[k] == 0 {
					t.Errorf("kernel %s never launched (launches %v)", k, dev.launches)
				}
			}
			for _, k := range cc.not {
				if dev.launches[k] != 0 {
					t.Errorf("kernel %s launched (launches %v)", k, dev.launches)
				}
			}
		})
	}
}

// TestConv3dMixedPrecision runs the Conv3d cases with fp16 GEMM inputs:
// the fake device rejects any GEMM whose inputs are not packed binary16,
// every cuBLAS call gets its two inputs packed, and the results stay
// within 4e-3 (8 units of fp16 rounding, 2⁻¹¹) of vm.Machine's float32
// ones, relative to each tensor's largest entry.
func TestConv3dMixedPrecision(t *testing.T) {
	for _, cc := range convCases() {
		if !strings.HasPrefix(cc.what, "conv3d") {
			continue
		}
		t.Run(cc.what, func(t *testing.T) {
			dev := newFakeDevice()
			dev.inputFormat = PrecisionFP16
			worst := convMatchesVM(t, cc, dev, 4e-3, MixedPrecision(PrecisionFP16))
			if n := dev.launches[PrecisionFP16.packKernel()]; n != 2*dev.blasCalls || n == 0 {
				t.Errorf("%d packs for %d cuBLAS calls, want two per call", n, dev.blasCalls)
			}
			t.Logf("max relative error %.3g (fp16 GEMM inputs)", worst)
		})
	}
}

// TestAudioVideoConv3dOnDevice checks that the shipped audio_video
// configuration (the conv3d video preprocessor) plans its Conv3d ops and
// their gradients on the device: none among the plan's host families nor
// among the built Machine's host steps, and its training step launches
// the 3-D column kernels. (TestMachineLoweredMatchesVMOnConfigs compares
// its step with vm.Machine.)
func TestAudioVideoConv3dOnDevice(t *testing.T) {
	tg := trainingGraph(t, filepath.Join("..", "..", "configs", "audio_video.yaml"))
	plan, err := Lower(tg.g)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, st := range plan.Steps {
		if strings.HasPrefix(st.Family, "Conv3d") {
			n++
		}
	}
	if n < 3 {
		t.Fatalf("%d Conv3d steps in the plan, want the forward and both gradients", n)
	}
	host := plan.HostFamilies()
	m, dev := fakeMachine(t, tg.g, tg.learn, Fetch(tg.mg.Loss))
	defer m.Close()
	host = append(host, m.HostSteps()...)
	if slices.ContainsFunc(host, func(f string) bool { return strings.HasPrefix(f, "Conv") }) {
		t.Errorf("host families %v: a convolution runs on the host", host)
	}
	tg.bindRandom(t, rand.New(rand.NewSource(5)), 1)
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	for _, k := range conv3dKernels {
		if dev.launches[k] == 0 {
			t.Errorf("kernel %s never launched", k)
		}
	}
	t.Logf("%d Conv3d steps; host families %v", n, host)
}

// colGeoms are 3-D column-kernel geometries with a different kernel,
// stride, padding and dilation on every axis (the layers above have cubic
// kernels), the last with strides past the kernel span (inputs no column
// reads).
var colGeoms = []vol3{
	{ch: 2, in: [3]int{5, 6, 7}, k: [3]int{2, 3, 1}, s: [3]int{1, 2, 3}, p: [3]int{1, 0, 2}, t: [3]int{2, 1, 3}},
	{ch: 3, in: [3]int{4, 3, 8}, k: [3]int{3, 1, 2}, s: [3]int{2, 1, 1}, p: [3]int{2, 0, 1}, t: [3]int{1, 1, 2}},
	{ch: 2, in: [3]int{6, 5, 5}, k: [3]int{1, 2, 2}, s: [3]int{3, 3, 2}, p: [3]int{0, 1, 0}, t: [3]int{1, 1, 1}},
}

// withOut returns v with its output sizes (as pkg/nn computes them).
func (v vol3) withOut() vol3 {
	for i := range 3 {
		v.out[i] = (v.in[i]+2*v.p[i]-v.t[i]*(v.k[i]-1)-1)/v.s[i] + 1
	}
	return v
}

// args are the kernels' arguments after (source, destination).
func (v vol3) args() []any {
	out := []any{v.ch}
	for _, t := range [][3]int{v.in, v.k, v.s, v.p, v.t, v.out} {
		out = append(out, t[0], t[1], t[2])
	}
	return out
}

// checkConv3dColumns runs lsf_im2col3d and lsf_col2im3d on d for every
// colGeoms entry: W·im2col(x) (on the host, float64) is the direct
// convolution of x by W (one output channel per weight row), and
// col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>. The
// device is the fake one here and the GPU in gpu_conv3d_test.go.
func checkConv3dColumns(t *testing.T, d device) {
	t.Helper()
	for gi, v := range colGeoms {
		v = v.withOut()
		kk, pos := v.k[0]*v.k[1]*v.k[2], v.out[0]*v.out[1]*v.out[2]
		nx, nc := v.ch*v.in[0]*v.in[1]*v.in[2], v.ch*kk*pos
		rng := rand.New(rand.NewSource(int64(40 + gi)))
		rnd := func(n int) []float32 {
			out := make([]float32, n)
			for i := range out {
				out[i] = float32(rng.NormFloat64())
			}
			return out
		}
		x, c := rnd(nx), rnd(nc)
		buf := func(v []float32) Buffer {
			b, err := d.Alloc(len(v))
			if err == nil {
				err = d.upload(b, v)
			}
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		bx, bc, cols, dx := buf(x), buf(c), buf(make([]float32, nc)), buf(make([]float32, nx))
		if err := launch1D(d, "lsf_im2col3d", nc, append([]any{bx, cols}, v.args()...)...); err != nil {
			t.Fatal(err)
		}
		if err := launch1D(d, "lsf_col2im3d", nx, append([]any{bc, dx}, v.args()...)...); err != nil {
			t.Fatal(err)
		}
		got, gotDX := make([]float32, nc), make([]float32, nx)
		if err := d.downloadAsync(got, cols); err != nil {
			t.Fatal(err)
		}
		if err := download(d, gotDX, dx); err != nil {
			t.Fatal(err)
		}
		// The direct convolution: output channel o of weight row w_o over
		// all ch·kk taps.
		const outC = 2
		w := rnd(outC * v.ch * kk)
		worst := 0.0
		for o := 0; o < outC; o++ {
			for p := 0; p < pos; p++ {
				oz, oy, ox := p/(v.out[1]*v.out[2]), (p/v.out[2])%v.out[1], p%v.out[2]
				var direct, viaCols float64
				for ch := 0; ch < v.ch; ch++ {
					for a := 0; a < v.k[0]; a++ {
						for b := 0; b < v.k[1]; b++ {
							for e := 0; e < v.k[2]; e++ {
								r := ((ch*v.k[0]+a)*v.k[1]+b)*v.k[2] + e
								wr := float64(w[o*v.ch*kk+r])
								viaCols += wr * float64(got[r*pos+p])
								z, y, xx := oz*v.s[0]-v.p[0]+a*v.t[0], oy*v.s[1]-v.p[1]+b*v.t[1], ox*v.s[2]-v.p[2]+e*v.t[2]
								if z >= 0 && z < v.in[0] && y >= 0 && y < v.in[1] && xx >= 0 && xx < v.in[2] {
									direct += wr * float64(x[((ch*v.in[0]+z)*v.in[1]+y)*v.in[2]+xx])
								}
							}
						}
					}
				}
				worst = math.Max(worst, math.Abs(viaCols-direct))
			}
		}
		var lhs, rhs float64
		for i := range c {
			lhs += float64(got[i]) * float64(c[i])
		}
		for i := range x {
			rhs += float64(x[i]) * float64(gotDX[i])
		}
		if worst > 1e-5 || math.Abs(lhs-rhs) > 1e-4*(1+math.Abs(lhs)) {
			t.Errorf("geometry %+v: W·im2col off the direct convolution by %.3g; <im2col(x), c> = %.7g, <x, col2im(c)> = %.7g", v, worst, lhs, rhs)
		}
		t.Logf("geometry %d: max |W·im2col − direct| %.3g, adjoint gap %.3g", gi, worst, math.Abs(lhs-rhs))
	}
}

// TestConv3dColumnKernels runs checkConv3dColumns on the fake device.
func TestConv3dColumnKernels(t *testing.T) { checkConv3dColumns(t, newFakeDevice()) }

// TestParseConvPerAxis checks that a convolution's per-axis settings
// (from the op name, pkg/nn's format) reach the 3-D kernels' arguments in
// the order lsf_im2col3d takes them, and that 1-D and 2-D names become
// 3-D geometries with trivial leading axes.
func TestParseConvPerAxis(t *testing.T) {
	cases := []struct {
		name   string
		x, y   tensor.Shape
		kernel string
		args   []any
	}{
		{"Conv3d{in=4x[5 6 7],out=6,k=[2 3 1],s=[1 2 3],p=[1 0 2],d=[2 1 3],g=2,bias=true}", tensor.Shape{2, 4, 5, 6, 7}, tensor.Shape{2, 6, 5, 2, 4},
			"lsf_im2col3d", []any{8, 5, 6, 7, 2, 3, 1, 1, 2, 3, 1, 0, 2, 2, 1, 3, 5, 2, 4}},
		{"Conv1d{in=4x[9],out=6,k=[3],s=[2],p=[2],d=[2],g=2,bias=true}", tensor.Shape{2, 4, 9}, tensor.Shape{2, 6, 5},
			"lsf_im2col3d", []any{8, 1, 1, 9, 1, 1, 3, 1, 1, 2, 0, 0, 2, 1, 1, 2, 1, 1, 5}},
		{"Conv2d{in=3x[7 6],out=4,k=[3 3],s=[2 2],p=[1 1],d=[1 1],g=1,bias=true}", tensor.Shape{2, 3, 7, 6}, tensor.Shape{2, 4, 4, 3},
			"lsf_im2col2d", []any{6, 7, 6, 3, 3, 2, 2, 1, 1, 4, 3}},
	}
	for _, c := range cases {
		g, ok := parseConv(c.name, c.x, c.y)
		if !ok {
			t.Fatalf("%s: not parsed", c.name)
		}
		name, _, args := g.colKernels()
		if name != c.kernel || !slices.Equal(args, c.args) {
			t.Errorf("%s: %s %v, want %s %v", c.name, name, args, c.kernel, c.args)
		}
	}
	if _, ok := parseConv("Conv3d{in=4x[5 6 7],out=6,k=[2 3],s=[1 2 3],p=[1 0 2],d=[2 1 3],g=2,bias=true}", tensor.Shape{2, 4, 5, 6, 7}, tensor.Shape{2, 6, 5, 2, 4}); ok {
		t.Error("a name with two kernel sizes for three axes parsed")
	}
}
