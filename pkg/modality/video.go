package modality

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// TemporalCell aggregates a sequence of per-frame features into one
// vector: the hook through which the video preprocessor runs a liquid
// (CfC) cell over frames. pkg/modality cannot import pkg/model (model
// imports modality), so pkg/model implements this interface with its CfC
// cell and sets VideoConfig.Cell before calling New when a config says
// `temporal: liquid`.
type TemporalCell interface {
	// Run adds the cell to the graph behind c (parameters under c's
	// scope) over steps, T nodes of shape [B, D] in time order, and
	// returns the final state [B, H].
	Run(c *nn.Ctx, steps []*G.Node) (*G.Node, error)
}

// VideoConfig shapes the video preprocessor (Config.Video).
type VideoConfig struct {
	// Frames is the clip length InputShape returns; Forward accepts any
	// number of frames ≥ 1. 0 means 8.
	Frames int `mapstructure:"frames" yaml:"frames"`
	// Frame describes one frame (in_channels, height, width) and, for the
	// frames architecture, the per-frame vision backbone (channels,
	// kernel, stride, ...); defaults as for the vision preprocessor.
	Frame VisionConfig `mapstructure:"frame" yaml:"frame"`
	// Backbone is the per-frame vision architecture of the frames
	// variant: simple, resnet or efficient. "" means simple.
	Backbone string `mapstructure:"backbone" yaml:"backbone"`
	// FrameDim is the per-frame feature size (the backbone's output and
	// the temporal aggregator's input). 0 means the preprocessor's
	// output_dim.
	FrameDim int `mapstructure:"frame_dim" yaml:"frame_dim"`
	// Temporal aggregates the per-frame features of the frames variant:
	//   conv:   Conv1d(frame_dim, frame_dim, temporal_kernel) over frames,
	//           ReLU, mean over frames;
	//   mean:   mean over frames;
	//   liquid: Cell.Run over the frames (pkg/model's CfC cell).
	// "" means conv.
	Temporal string `mapstructure:"temporal" yaml:"temporal"`
	// TemporalKernel of the temporal conv (padding kernel/2). 0 means 3.
	TemporalKernel int `mapstructure:"temporal_kernel" yaml:"temporal_kernel"`
	// Cell is the recurrent cell that temporal "liquid" runs. It is not
	// read from config files: pkg/model injects it. Required for liquid.
	Cell TemporalCell `mapstructure:"-" yaml:"-"`
	// Conv3DChannels are the widths of the conv3d variant's Conv3d(3×3×3,
	// padding 1) → BatchNorm → ReLU blocks. Empty means [16, 32].
	Conv3DChannels []int `mapstructure:"conv3d_channels" yaml:"conv3d_channels"`
	// Conv3DStride is the stride (time, height and width) of every conv3d
	// block. 0 means 2.
	Conv3DStride int `mapstructure:"conv3d_stride" yaml:"conv3d_stride"`
}

func (v VideoConfig) withDefaults(arch string, out int) VideoConfig {
	v.Frames = orInt(v.Frames, 8)
	v.Backbone = orString(v.Backbone, "simple")
	v.Frame = v.Frame.withDefaults(v.Backbone)
	v.FrameDim = orInt(v.FrameDim, out)
	v.Temporal = orString(v.Temporal, "conv")
	v.TemporalKernel = orInt(v.TemporalKernel, 3)
	v.Conv3DChannels = orInts(v.Conv3DChannels, []int{16, 32})
	v.Conv3DStride = orInt(v.Conv3DStride, 2)
	return v
}

func (v VideoConfig) validate(val *validator, arch string) {
	val.positive("frames", v.Frames)
	v.Frame.validate(val.sub("frame"))
	if arch == "conv3d" {
		val.widths("conv3d_channels", v.Conv3DChannels)
		val.positive("conv3d_stride", v.Conv3DStride)
		return
	}
	val.oneOf("backbone", v.Backbone, architectures[KindVision]...)
	val.positive("frame_dim", v.FrameDim)
	val.oneOf("temporal", v.Temporal, "conv", "mean", "liquid")
	val.positive("temporal_kernel", v.TemporalKernel)
	if v.Temporal == "liquid" && v.Cell == nil {
		val.add("temporal", `"liquid" needs VideoConfig.Cell (a TemporalCell; pkg/model sets it when it builds the network)`)
	}
}

// Video is the clip preprocessor: [B, frames, C, H, W] → [B, OutputDim].
//
//   - frames: every frame goes through the same vision backbone (scope
//     "frame": one set of parameters for all frames; the frames are folded
//     into the batch) giving [B, frames, frame_dim]; the Temporal
//     aggregator (scope "temporal") reduces the frames; fc Linear to
//     OutputDim.
//   - conv3d: the clip as [B, C, frames, H, W]; conv<i>/bn<i> blocks of
//     Conv3d(3, stride conv3d_stride, padding 1) → BatchNorm → ReLU;
//     global average pool; fc.
type Video struct {
	cfg   VideoConfig
	arch  string
	out   int
	frame *Vision
}

func newVideo(cfg VideoConfig, arch string, out int) *Video {
	return &Video{cfg: cfg, arch: arch, out: out, frame: newVision(cfg.Frame, cfg.Backbone, cfg.FrameDim)}
}

// Kind returns "video".
func (v *Video) Kind() string { return KindVideo }

// InputShape returns [batch, Frames, InChannels, Height, Width].
func (v *Video) InputShape(batch int) []int {
	f := v.cfg.Frame
	return []int{batch, v.cfg.Frames, f.InChannels, f.Height, f.Width}
}

// IntInput returns false.
func (v *Video) IntInput() bool { return false }

// OutputDim returns the feature size.
func (v *Video) OutputDim() int { return v.out }

// Forward maps clips x [B, frames, C, H, W] (any frames, H, W) to
// [B, OutputDim].
func (v *Video) Forward(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	return guard(c, KindVideo, func() (*G.Node, error) { return v.forward(c, x) })
}

// checkInput checks clips x [B, frames, C, H, W].
func (v *Video) checkInput(c *nn.Ctx, x *G.Node) error {
	return checkInput(c, x, KindVideo, false, []int{0, 0, v.cfg.Frame.InChannels, 0, 0},
		[]string{"batch", "frames", "channels", "height", "width"})
}

// frameFeatures runs the shared per-frame backbone over every frame of x
// [B, T, C, H, W] and returns [B, T, frame_dim].
func (v *Video) frameFeatures(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	s := x.Shape()
	b, t := s[0], s[1]
	frames, err := reshape(c, x, b*t, s[2], s[3], s[4])
	if err != nil {
		return nil, err
	}
	feat, err := v.frame.Forward(c.Sub("frame"), frames) // [B·T, frame_dim]
	if err != nil {
		return nil, err
	}
	return reshape(c, feat, b, t, v.cfg.FrameDim)
}

func (v *Video) forward(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	if err := v.checkInput(c, x); err != nil {
		return nil, err
	}
	if v.arch == "conv3d" {
		return v.conv3d(c, x)
	}
	feat, err := v.frameFeatures(c, x)
	if err != nil {
		return nil, err
	}
	b, t, d := x.Shape()[0], x.Shape()[1], v.cfg.FrameDim
	tc := c.Sub("temporal")
	var agg *G.Node
	switch v.cfg.Temporal {
	case "mean":
		if agg, err = nn.MeanAxis(feat, 1); err != nil {
			return nil, scopedErr(tc, err)
		}
	case "conv":
		seq, err := swap12(feat) // [B, frame_dim, T]
		if err != nil {
			return nil, scopedErr(tc, err)
		}
		k := v.cfg.TemporalKernel
		if seq, err = (nn.Conv1d{InC: d, OutC: d, Kernel: k, Stride: 1, Padding: k / 2}).Forward(tc.Sub("conv"), seq); err != nil {
			return nil, err
		}
		if seq, err = activate(tc, "relu", seq); err != nil {
			return nil, err
		}
		if agg, err = nn.GlobalAvgPool(tc, seq); err != nil {
			return nil, err
		}
	case "liquid":
		if v.cfg.Cell == nil {
			return nil, tc.Errorf(`video.temporal: "liquid" needs VideoConfig.Cell`)
		}
		steps := make([]*G.Node, t)
		for i := range steps {
			st, err := nn.SliceAxis(feat, 1, i, i+1)
			if err != nil {
				return nil, scopedErr(tc, err)
			}
			if steps[i], err = reshape(tc, st, b, d); err != nil {
				return nil, err
			}
		}
		if agg, err = v.cfg.Cell.Run(tc, steps); err != nil {
			return nil, err
		}
		if as := agg.Shape(); as.Dims() != 2 || as[0] != b {
			return nil, tc.Errorf("temporal cell returned shape %v, want [%d, hidden]", as, b)
		}
	default:
		return nil, tc.Errorf("video.temporal: unknown %q", v.cfg.Temporal)
	}
	return nn.Linear{In: agg.Shape()[1], Out: v.out}.Forward(c.Sub("fc"), agg)
}

func (v *Video) conv3d(c *nn.Ctx, x *G.Node) (*G.Node, error) {
	h, err := swap12(x) // [B, C, T, H, W]
	if err != nil {
		return nil, scopedErr(c, err)
	}
	for i, w := range v.cfg.Conv3DChannels {
		conv := nn.Conv3d{InC: h.Shape()[1], OutC: w, Kernel: 3, Stride: v.cfg.Conv3DStride, Padding: 1, NoBias: true}
		if h, err = conv.Forward(c.Sub(fmt.Sprintf("conv%d", i+1)), h); err != nil {
			return nil, err
		}
		if h, err = batchNorm(c, fmt.Sprintf("bn%d", i+1), w, h); err != nil {
			return nil, err
		}
		if h, err = activate(c, "relu", h); err != nil {
			return nil, err
		}
	}
	return poolHead(c, h, v.out)
}
