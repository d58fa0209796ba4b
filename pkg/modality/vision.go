package modality

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// VisionConfig shapes the vision preprocessor (Config.Vision) and the
// per-frame backbone of the video preprocessor (VideoConfig.Frame).
type VisionConfig struct {
	// InChannels is the number of image channels C (1 grey, 3 RGB).
	// 0 means 3.
	InChannels int `mapstructure:"in_channels" yaml:"in_channels"`
	// Height and Width, in pixels, give the placeholder shape InputShape
	// returns; Forward accepts any H×W ≥ 1×1. 0 means 224.
	Height int `mapstructure:"height" yaml:"height"`
	Width  int `mapstructure:"width" yaml:"width"`
	// Channels are the convolution widths. simple: one 3×3 conv per entry.
	// resnet: the stem's width is Channels[0] and each entry is a stage of
	// Blocks residual blocks (stages after the first halve H and W).
	// efficient: the stem's width is Channels[0] and each further entry is
	// one depthwise-separable block that halves H and W. Empty means
	// [16, 32] for simple and [32, 64, 128] for resnet and efficient.
	Channels []int `mapstructure:"channels" yaml:"channels"`
	// Kernel is the square kernel size of the simple convs (padding
	// Kernel/2). 0 means 3. resnet and efficient always use 3.
	Kernel int `mapstructure:"kernel" yaml:"kernel"`
	// Stride of every simple conv, and of the resnet/efficient stem conv.
	// 0 means 2.
	Stride int `mapstructure:"stride" yaml:"stride"`
	// Blocks is the number of residual blocks per resnet stage. 0 means 1.
	Blocks int `mapstructure:"blocks" yaml:"blocks"`
	// BatchNorm adds a batch norm after each simple conv (resnet and
	// efficient always have them). false (the default) matches
	// bench-small's VisionStem.
	BatchNorm bool `mapstructure:"batch_norm" yaml:"batch_norm"`
	// Activation after each conv: relu, gelu, silu, tanh, sigmoid,
	// lecun_tanh, identity. "" means relu for simple and resnet, silu for
	// efficient.
	Activation string `mapstructure:"activation" yaml:"activation"`
}

func (v VisionConfig) withDefaults(arch string) VisionConfig {
	v.InChannels = orInt(v.InChannels, 3)
	v.Height = orInt(v.Height, 224)
	v.Width = orInt(v.Width, 224)
	if arch == "simple" {
		v.Channels = orInts(v.Channels, []int{16, 32})
		v.Activation = orString(v.Activation, "relu")
	} else {
		v.Channels = orInts(v.Channels, []int{32, 64, 128})
		if arch == "efficient" {
			v.Activation = orString(v.Activation, "silu")
		} else {
			v.Activation = orString(v.Activation, "relu")
		}
	}
	v.Kernel = orInt(v.Kernel, 3)
	v.Stride = orInt(v.Stride, 2)
	v.Blocks = orInt(v.Blocks, 1)
	return v
}

func (v VisionConfig) validate(val *validator) {
	val.positive("in_channels", v.InChannels)
	val.positive("height", v.Height)
	val.positive("width", v.Width)
	val.widths("channels", v.Channels)
	val.positive("kernel", v.Kernel)
	val.positive("stride", v.Stride)
	val.positive("blocks", v.Blocks)
	val.activation("activation", v.Activation)
}

// Vision is the image preprocessor: [B, C, H, W] → [B, OutputDim].
//
//   - simple: per width w_i, conv<i> Conv2d(k, stride, padding k/2)
//     [→ bn<i>] → activation; global average pool; fc Linear. With
//     Channels [16, 32], kernel 3, stride 2, ReLU and no batch norm it is
//     bench-small's VisionStem exactly (parameters conv1, conv2, fc).
//   - resnet: stem (conv 3×3 stride Stride, bn, act), then stages of basic
//     residual blocks y = act(bn2(conv2(act(bn1(conv1(x))))) + s(x)) where
//     s is the identity, or proj (1×1 conv with the block's stride + bn)
//     when the width or resolution changes (He et al. 2016); GAP; fc.
//   - efficient: stem (conv 3×3 stride Stride, bn, act), then per further
//     width a depthwise-separable block (MobileNet, Howard et al. 2017):
//     dw Conv2d 3×3 stride 2 groups=C → dw_bn → act → pw Conv2d 1×1 →
//     pw_bn → act; GAP; fc.
//
// Batch norms use batch statistics in training graphs and running
// statistics in evaluation graphs. Any H×W works (3×3 convs with padding 1
// never shrink a side below 1).
type Vision struct {
	cfg  VisionConfig
	arch string
	out  int
}

func newVision(cfg VisionConfig, arch string, out int) *Vision {
	return &Vision{cfg: cfg, arch: arch, out: out}
}

// Kind returns "vision".
func (v *Vision) Kind() string { return KindVision }

// InputShape returns [batch, InChannels, Height, Width].
func (v *Vision) InputShape(batch int) []int {
	return []int{batch, v.cfg.InChannels, v.cfg.Height, v.cfg.Width}
}

// IntInput returns false.
func (v *Vision) IntInput() bool { return false }

// OutputDim returns the feature size.
func (v *Vision) OutputDim() int { return v.out }

// Forward maps images x [B, C, H, W] (any H, W) to features [B, OutputDim].
func (v *Vision) Forward(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	return guard(c, KindVision, func() (*G.Node, error) { return v.forward(c, x) })
}

func (v *Vision) forward(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	if err := checkInput(c, x, KindVision, false, []int{0, v.cfg.InChannels, 0, 0},
		[]string{"batch", "channels", "height", "width"}); err != nil {
		return nil, err
	}
	h, err := v.features(c, x)
	if err != nil {
		return nil, err
	}
	return poolHead(c, h, v.out)
}

// features returns the last feature map [B, C', H', W'] before pooling.
func (v *Vision) features(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	switch v.arch {
	case "simple":
		return v.simple(c, x)
	case "resnet":
		return v.resnet(c, x)
	case "efficient":
		return v.efficient(c, x)
	}
	return nil, c.Errorf("vision.architecture: unknown %q", v.arch)
}

func (v *Vision) simple(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	var err error
	k := v.cfg.Kernel
	for i, w := range v.cfg.Channels {
		in := x.Shape()[1]
		conv := nn.Conv2d{InC: in, OutC: w, Kernel: k, Stride: v.cfg.Stride, Padding: k / 2}
		if x, err = conv.Forward(c.Sub(fmt.Sprintf("conv%d", i+1)), x); err != nil {
			return nil, err
		}
		if v.cfg.BatchNorm {
			if x, err = batchNorm(c, fmt.Sprintf("bn%d", i+1), w, x); err != nil {
				return nil, err
			}
		}
		if x, err = activate(c, v.cfg.Activation, x); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// convBNAct is Conv2d (no bias: the batch norm's shift replaces it) →
// BatchNorm → the activation when act, with parameters under c.Sub(conv)
// and c.Sub(bn).
func (v *Vision) convBNAct(c *nn.Ctx, x *G.Node, conv, bn string, spec nn.Conv2d, act bool) (*G.Node, error) {
	spec.InC = x.Shape()[1]
	spec.NoBias = true
	y, err := spec.Forward(c.Sub(conv), x)
	if err != nil {
		return nil, err
	}
	if y, err = batchNorm(c, bn, spec.OutC, y); err != nil {
		return nil, err
	}
	if !act {
		return y, nil
	}
	return activate(c, v.cfg.Activation, y)
}

func (v *Vision) stem(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	s := c.Sub("stem")
	return v.convBNAct(s, x, "conv", "bn", nn.Conv2d{OutC: v.cfg.Channels[0], Kernel: 3, Stride: v.cfg.Stride, Padding: 1}, true)
}

func (v *Vision) resnet(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	x, err := v.stem(c, x)
	if err != nil {
		return nil, err
	}
	for si, w := range v.cfg.Channels {
		for bi := 0; bi < v.cfg.Blocks; bi++ {
			stride := 1
			if si > 0 && bi == 0 {
				stride = 2
			}
			b := c.Sub(fmt.Sprintf("stage%d", si+1)).Sub(fmt.Sprintf("block%d", bi+1))
			if x, err = v.basicBlock(b, x, w, stride); err != nil {
				return nil, err
			}
		}
	}
	return x, nil
}

func (v *Vision) basicBlock(c *nn.Ctx, x *G.Node, width, stride int) (*G.Node, error) {
	h, err := v.convBNAct(c, x, "conv1", "bn1", nn.Conv2d{OutC: width, Kernel: 3, Stride: stride, Padding: 1}, true)
	if err != nil {
		return nil, err
	}
	if h, err = v.convBNAct(c, h, "conv2", "bn2", nn.Conv2d{OutC: width, Kernel: 3, Stride: 1, Padding: 1}, false); err != nil {
		return nil, err
	}
	short := x
	if stride != 1 || x.Shape()[1] != width {
		p := c.Sub("proj")
		if short, err = v.convBNAct(p, x, "conv", "bn", nn.Conv2d{OutC: width, Kernel: 1, Stride: stride}, false); err != nil {
			return nil, err
		}
	}
	sum, err := nn.Add(h, short)
	if err != nil {
		return nil, c.Errorf("residual add %v + %v: %v", h.Shape(), short.Shape(), err)
	}
	return activate(c, v.cfg.Activation, sum)
}

func (v *Vision) efficient(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	x, err := v.stem(c, x)
	if err != nil {
		return nil, err
	}
	for i, w := range v.cfg.Channels[1:] {
		b := c.Sub(fmt.Sprintf("block%d", i+1))
		in := x.Shape()[1]
		if x, err = v.convBNAct(b, x, "dw", "dw_bn", nn.Conv2d{OutC: in, Kernel: 3, Stride: 2, Padding: 1, Groups: in}, true); err != nil {
			return nil, err
		}
		if x, err = v.convBNAct(b, x, "pw", "pw_bn", nn.Conv2d{OutC: w, Kernel: 1, Stride: 1}, true); err != nil {
			return nil, err
		}
	}
	return x, nil
}
