package export

import (
	"fmt"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/safetensors"
)

// WeightsFormat is stored under the "format" metadata key of every weights
// file Safetensors writes.
const WeightsFormat = "lsfuse-weights/1"

// Safetensors writes the weights of store to path as a safetensors file,
// atomically (temporary file, fsync, rename).
//
// Every parameter and buffer of the store is written, and nothing else (no
// optimiser state, which the store does not hold): trainable weights,
// running statistics of batch norms, fixed matrices. Values are converted to
// float32 whatever the store's dtype. Tensor names are the store's dotted
// names, which follow the model's module tree the way a PyTorch state_dict
// does, e.g.
//
//	vision.pre.conv1.weight              [out_channels, in_channels/groups, kH, kW]
//	vision.pre.bn1.running_mean          [channels]
//	vision.encoder.proj.weight           [out_features, in_features]  (Linear, y = x·Wᵀ + b)
//	vision.encoder.spiking.lif1.fc.bias  [out_features]
//	vision.encoder.cfc.backbone.0.weight [backbone_units, in+units]   (ncps CfC names)
//	fusion.attn.q_proj.weight            [dim, dim]
//	head.out.weight                      [output_dim, fusion_dim]
//
// so each tensor loads as-is into the PyTorch module of the same layout.
// meta is stored as the file's string metadata, with "format" set to
// WeightsFormat (a "format" key in meta is overridden).
func Safetensors(store *nn.Store, path string, meta map[string]string) error {
	if store == nil {
		return fmt.Errorf("export safetensors: nil store")
	}
	params := store.Params()
	if len(params) == 0 {
		return fmt.Errorf("export safetensors %s: the store holds no parameters (build or load the model first)", path)
	}
	ts := make(map[string]safetensors.Tensor, len(params))
	for _, p := range params {
		vals, err := nn.ToFloat64(p.Value)
		if err != nil {
			return fmt.Errorf("export safetensors %s: parameter %s: %w", path, p.Name, err)
		}
		f := make([]float32, len(vals))
		for i, v := range vals {
			f[i] = float32(v)
		}
		ts[p.Name] = safetensors.Tensor{Shape: append([]int(nil), p.Value.Shape()...), F32: f}
	}
	m := map[string]string{}
	for k, v := range meta {
		m[k] = v
	}
	m["format"] = WeightsFormat
	if err := safetensors.WriteFile(path, ts, m); err != nil {
		return fmt.Errorf("export safetensors: %w", err)
	}
	return nil
}
