package modality_test

import (
	"reflect"
	"testing"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/modality"
)

// benchVision is bench-small's VisionStem (shared/bench/ref_torch.py):
// Conv(1,16,3,s2,p1)-ReLU-Conv(16,32,3,s2,p1)-ReLU-GAP-Linear(32,128).
func benchVision() modality.Config {
	return modality.Config{Kind: "vision", Architecture: "simple", OutputDim: 128,
		Vision: modality.VisionConfig{InChannels: 1, Height: 28, Width: 28, Channels: []int{16, 32}, Kernel: 3, Stride: 2}}
}

func TestVisionBenchStemMatchesPyTorchLayout(t *testing.T) {
	p := mustNew(t, benchVision())
	if got := p.InputShape(32); !reflect.DeepEqual(got, []int{32, 1, 28, 28}) {
		t.Errorf("InputShape = %v", got)
	}
	r := forward(t, p, tensor.Float32, false, []int{2, 1, 28, 28}, randVals(1, 1, 2*28*28), nil, nil)
	// PyTorch: conv1 16·1·9+16 = 160, conv2 32·16·9+32 = 4640,
	// fc 32·128+128 = 4224; total 9024 (bench-small's params by module:
	// vis=9024, and 315,210 over the whole model).
	if n := r.store.NumParams(); n != 9024 {
		t.Errorf("vision stem has %d parameters, want 9024", n)
	}
	want := map[string]string{
		"pre.conv1.weight": "[16 1 3 3]", "pre.conv1.bias": "[16]",
		"pre.conv2.weight": "[32 16 3 3]", "pre.conv2.bias": "[32]",
		"pre.fc.weight": "[128 32]", "pre.fc.bias": "[128]",
	}
	if got := paramShapes(r.store); !reflect.DeepEqual(got, want) {
		t.Errorf("parameters %v, want %v", got, want)
	}
}

// TestVisionBenchStemValues compares the simple stem with a direct
// evaluation of VisionStem.forward in plain Go loops.
func TestVisionBenchStemValues(t *testing.T) {
	p := mustNew(t, benchVision())
	shape := []int{2, 1, 9, 8} // odd sizes exercise the padding
	x := randVals(2, 1, prod(shape))
	r := forward(t, p, tensor.Float64, false, shape, x, nil, nil)
	s := r.store
	h1, s1 := refConv2d(x, shape, param(t, s, "pre.conv1.weight"), param(t, s, "pre.conv1.bias"), 16, 3, 2, 1)
	relu(h1)
	h2, s2 := refConv2d(h1, s1, param(t, s, "pre.conv2.weight"), param(t, s, "pre.conv2.bias"), 32, 3, 2, 1)
	relu(h2)
	b, c, hw := s2[0], s2[1], s2[2]*s2[3]
	want := make([]float64, b*128)
	w, bias := param(t, s, "pre.fc.weight"), param(t, s, "pre.fc.bias")
	for n := 0; n < b; n++ {
		for o := 0; o < 128; o++ {
			acc := bias[o]
			for ch := 0; ch < c; ch++ {
				mean := 0.0
				for i := 0; i < hw; i++ {
					mean += h2[(n*c+ch)*hw+i]
				}
				acc += w[o*c+ch] * mean / float64(hw)
			}
			want[n*128+o] = acc
		}
	}
	assertClose(t, "stem output", r.y, want, 1e-12, 1e-10)
}

// refConv2d is a direct 2-d convolution (PyTorch semantics, square kernel
// k, stride st, zero padding pd) of x [B,C,H,W].
func refConv2d(x []float64, shape []int, w, bias []float64, outC, k, st, pd int) ([]float64, []int) {
	b, inC, h, wd := shape[0], shape[1], shape[2], shape[3]
	oh, ow := (h+2*pd-k)/st+1, (wd+2*pd-k)/st+1
	y := make([]float64, b*outC*oh*ow)
	for n := 0; n < b; n++ {
		for o := 0; o < outC; o++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					acc := bias[o]
					for ci := 0; ci < inC; ci++ {
						for u := 0; u < k; u++ {
							for v := 0; v < k; v++ {
								yy, xx := i*st+u-pd, j*st+v-pd
								if yy < 0 || yy >= h || xx < 0 || xx >= wd {
									continue
								}
								acc += w[((o*inC+ci)*k+u)*k+v] * x[((n*inC+ci)*h+yy)*wd+xx]
							}
						}
					}
					y[((n*outC+o)*oh+i)*ow+j] = acc
				}
			}
		}
	}
	return y, []int{b, outC, oh, ow}
}

func relu(x []float64) {
	for i, v := range x {
		if v < 0 {
			x[i] = 0
		}
	}
}

func TestVisionOutputShapesForAnyImageSize(t *testing.T) {
	for _, arch := range []string{"simple", "resnet", "efficient"} {
		cfg := modality.Config{Kind: "vision", Architecture: arch, OutputDim: 5,
			Vision: modality.VisionConfig{InChannels: 2, Height: 8, Width: 8, Channels: []int{3, 4}}}
		p := mustNew(t, cfg)
		for _, hw := range [][2]int{{8, 8}, {5, 9}, {1, 1}, {13, 2}} {
			shape := []int{3, 2, hw[0], hw[1]}
			r := forward(t, p, tensor.Float32, false, shape, randVals(3, 1, prod(shape)), nil, nil)
			if !reflect.DeepEqual([]int(r.shape), []int{3, 5}) {
				t.Errorf("%s on %dx%d: output shape %v, want [3 5]", arch, hw[0], hw[1], r.shape)
			}
		}
	}
}

func TestVisionParameterLayout(t *testing.T) {
	cases := []struct {
		arch  string
		names []string
	}{
		{"resnet", []string{
			"pre.stem.conv.weight", "pre.stem.bn.weight", "pre.stem.bn.running_var",
			"pre.stage1.block1.conv1.weight", "pre.stage1.block1.bn2.bias",
			"pre.stage2.block1.proj.conv.weight", "pre.stage2.block1.proj.bn.weight", "pre.stage2.block2.conv2.weight",
			"pre.fc.weight"}},
		{"efficient", []string{
			"pre.stem.conv.weight", "pre.block1.dw.weight", "pre.block1.dw_bn.weight", "pre.block1.pw.weight",
			"pre.block1.pw_bn.bias", "pre.fc.bias"}},
	}
	for _, tc := range cases {
		cfg := modality.Config{Kind: "vision", Architecture: tc.arch, OutputDim: 5,
			Vision: modality.VisionConfig{InChannels: 2, Height: 8, Width: 8, Channels: []int{3, 4}, Blocks: 2}}
		r := forward(t, mustNew(t, cfg), tensor.Float64, true, []int{2, 2, 8, 8}, randVals(4, 1, 256), nil, nil)
		shapes := paramShapes(r.store)
		for _, n := range tc.names {
			if _, ok := shapes[n]; !ok {
				t.Errorf("%s: no parameter %q in %v", tc.arch, n, shapes)
			}
		}
		if tc.arch == "resnet" {
			// Stage 1 keeps width and resolution: identity shortcut.
			if _, ok := shapes["pre.stage1.block1.proj.conv.weight"]; ok {
				t.Errorf("resnet stage 1 block 1 has a projection; it should be the identity")
			}
			if got := shapes["pre.stage2.block1.proj.conv.weight"]; got != "[4 3 1 1]" {
				t.Errorf("projection weight shape %s, want [4 3 1 1]", got)
			}
		} else {
			// Depthwise: one 3×3 filter per input channel.
			if got := shapes["pre.block1.dw.weight"]; got != "[3 1 3 3]" {
				t.Errorf("depthwise weight shape %s, want [3 1 3 3]", got)
			}
		}
	}
}

func TestVisionGradients(t *testing.T) {
	shape := []int{2, 2, 7, 6}
	x := randVals(5, 1, prod(shape))
	for _, tc := range []struct {
		arch string
		vc   modality.VisionConfig
		min  int
	}{
		{"simple", modality.VisionConfig{InChannels: 2, Channels: []int{3, 4}}, 6},
		{"simple", modality.VisionConfig{InChannels: 2, Channels: []int{3}, Kernel: 5, Stride: 1, BatchNorm: true, Activation: "tanh"}, 5},
		{"resnet", modality.VisionConfig{InChannels: 2, Channels: []int{3, 4}}, 16},
		{"efficient", modality.VisionConfig{InChannels: 2, Channels: []int{3, 4, 5}}, 13},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			p := mustNew(t, modality.Config{Kind: "vision", Architecture: tc.arch, OutputDim: 3, Vision: tc.vc})
			gradCheck(t, p, shape, x, nil, tc.min)
		})
	}
}

func TestVisionRejectsWrongInput(t *testing.T) {
	p := mustNew(t, benchVision())
	wantErr(t, buildErr(p, tensor.Float64, []int{2, 3, 28, 28}), "pre: vision preprocessor expects input [batch, channels=1, height, width]", "channels is 3, want 1")
	wantErr(t, buildErr(p, tensor.Float64, []int{2, 28, 28}), "vision preprocessor expects input", "(2, 28, 28)")
	wantErr(t, buildErr(p, tensor.Float32, []int{2, 1, 28, 28}), "expects float64 input, got dtype float32")
}
