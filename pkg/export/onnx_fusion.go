package export

import (
	"github.com/lsfuse/lsfuse/pkg/fusion"
	"github.com/lsfuse/lsfuse/pkg/model"
)

// The fusion strategies of pkg/fusion and the heads of pkg/model's network
// as ONNX nodes, in evaluation mode with every modality present: the keep
// mask is all ones, so the missing-embedding substitution is the identity
// and neither presence inputs nor missing embeddings appear in the graph.

// headFunc builds the head on a fused representation; mod is "" for the
// shared head, the modality's name for late fusion's per-modality heads.
type headFunc func(mod string, x value) value

// fuse adds the fusion of cfg (parameters under s, the "fusion" scope) of
// feats (one [B, D_m] per modality, in the sorted order of names) and the
// head, and returns the network output.
func fuse(s scope, cfg fusion.Config, names []string, feats []value, head headFunc) value {
	if s.failed() {
		return value{}
	}
	m := len(feats)
	var weights value // softmax of the modality weight logits [M]
	if cfg.ModalityWeights {
		weights = s.unary("Softmax", s.param(fusion.WeightsParam, m), intAttr("axis", 0))
	}
	// weightOf returns factor·w[i] (a scalar), or factor/M without weights.
	weightOf := func(i int, factor float64) value {
		if weights.name == "" {
			return s.b.scalar(factor / float64(m))
		}
		return s.scaleBy(s.gather(weights, s.b.ints([]int{}, i), 0), factor)
	}
	if cfg.ModalityWeights && cfg.Strategy != fusion.Late {
		for i := range feats {
			feats[i] = s.mul(feats[i], weightOf(i, float64(m)))
		}
	}
	var fused value
	switch cfg.Strategy {
	case fusion.Early:
		fused = project(s.sub(fusion.Early), cfg, s.concat(1, feats...))
	case fusion.Late:
		var sum value
		for i, name := range names {
			z := project(s.sub(fusion.Late).sub(name), cfg, feats[i])
			y := s.mul(head(name, z), weightOf(i, 1))
			if sum.name == "" {
				sum = y
			} else {
				sum = s.add(sum, y)
			}
		}
		return sum
	case fusion.Hybrid:
		y := selfAttention(s, cfg, stackTokens(s, feats))
		fused = poolAndProject(s, cfg, y, feats)
	case fusion.Hierarchical:
		cross := crossModal(s.sub("cross"), cfg, names, feats)
		y := selfAttention(s, cfg, stackTokens(s, cross))
		fused = poolAndProject(s, cfg, y, feats)
	default:
		s.fail("fusion strategy %q is not supported by the ONNX exporter", cfg.Strategy)
		return value{}
	}
	return head("", fused)
}

// project is the fusion projection ReLU(Linear(x → Dim)) ("proj"; its
// dropout is off in evaluation).
func project(s scope, cfg fusion.Config, x value) value {
	return s.unary("Relu", linear(s.sub("proj"), x, cfg.Dim, true))
}

// stackTokens turns M features [B, D] into tokens [B, M, D].
func stackTokens(s scope, feats []value) value {
	seq := make([]value, len(feats))
	for i, f := range feats {
		seq[i] = s.unsqueeze(f, 1)
	}
	return s.concat(1, seq...)
}

// selfAttention is fusion.SelfAttention: LayerNorm(x + MHA(x, x, x))
// ("attn", "norm").
func selfAttention(s scope, cfg fusion.Config, x value) value {
	att := attention(s.sub("attn"), x, x, x.last(), cfg.Heads)
	return layerNorm(s.sub("norm"), s.add(x, att), 1e-5)
}

// crossModal is fusion.CrossModalAttention: modality i's token attends to
// the other modalities' tokens ("<name>.attn", "<name>.norm").
func crossModal(s scope, cfg fusion.Config, names []string, feats []value) []value {
	if s.failed() {
		return nil
	}
	if len(feats) < 2 {
		s.fail("cross-modal attention needs at least two modalities, got %d", len(feats))
		return nil
	}
	seq := make([]value, len(feats))
	for i, f := range feats {
		seq[i] = s.unsqueeze(f, 1)
	}
	out := make([]value, len(feats))
	for i, name := range names {
		mc := s.sub(name)
		var others []value
		for j := range seq {
			if j != i {
				others = append(others, seq[j])
			}
		}
		d := seq[i].last()
		att := attention(mc.sub("attn"), seq[i], mc.concat(1, others...), d, cfg.Heads)
		y := layerNorm(mc.sub("norm"), mc.add(seq[i], att), 1e-5)
		out[i] = mc.reshape(y, 0, d)
	}
	return out
}

// poolAndProject averages the tokens y [B, L, D] and projects them with
// the features: ReLU(Linear([mean_L y, f_1, …, f_M])).
func poolAndProject(s scope, cfg fusion.Config, y value, feats []value) value {
	p := s.reduce("ReduceMean", y, false, 1)
	return project(s, cfg, s.concat(1, append([]value{p}, feats...)...))
}

// networkHead returns pkg/model's head builder: scope "head" (or
// "head.<modality>" for late fusion); classification and regression:
// [hidden Linear + ReLU] then Linear "out"; tokens: ReLU(x[b] + pos[l])
// first, giving [B, TokenLen, OutputDim].
func networkHead(root scope, cfg model.NetworkConfig) headFunc {
	return func(mod string, x value) value {
		hc := root.sub("head")
		if mod != "" {
			hc = hc.sub(mod)
		}
		if hc.failed() {
			return value{}
		}
		d := x.last()
		switch cfg.Head {
		case model.HeadClassification, model.HeadRegression:
		case model.HeadTokens:
			pos := hc.param("pos", 1, cfg.TokenLen, d)
			x = hc.unary("Relu", hc.add(hc.unsqueeze(x, 1), pos))
		default:
			hc.fail("head %q is not supported by the ONNX exporter", cfg.Head)
			return value{}
		}
		if cfg.HeadHidden > 0 {
			x = hc.unary("Relu", linear(hc.sub("hidden"), x, cfg.HeadHidden, true))
		}
		return linear(hc.sub("out"), x, cfg.OutputDim, true)
	}
}
