package config

import (
	"reflect"
	"sort"
)

// Default returns the configuration every experiment starts from: no
// modalities (a file or --modalities adds them), hybrid fusion of width 128
// with 4 heads, Adam at 1e-3 for 10 epochs in batches of 32, runs under
// runs/. The defaults of each modality are DefaultModality's.
func Default() Config {
	return Config{
		Model: ModelConfig{
			FusionStrategy:    "hybrid",
			FusionDim:         128,
			NumAttentionHeads: 4,
			Head:              "classification",
			Caption:           CaptionSettings{EmbedDim: 64, Units: 128, Mode: "default", BeamSize: 1},
			FusedOps:          true,
		},
		Data: DataConfig{
			ValFraction: 0.1,
			LabelColumn: "label",
			LabelKind:   "category",
			OnError:     "fail",
		},
		Train: TrainConfig{
			BatchSize:      32,
			Optimizer:      "adam",
			LR:             1e-3,
			Schedule:       ScheduleSettings{Kind: "constant"},
			AccumSteps:     1,
			LossScale:      LossScaleSettings{Init: 65536, GrowthInterval: 2000},
			MixedPrecision: "off",
			EarlyStop:      EarlyStopSettings{StopOnNonFinite: true},
			Workers:        2,
			Prefetch:       2,
			Cache:          true,
			LogEvery:       10,
		},
		Export: ExportConfig{Format: "safetensors", Opset: 17},
		Run:    RunConfig{Dir: "runs", Seed: 1, Device: "auto", Dtype: "float32"},
	}
}

// DefaultModality is the encoder every modality starts from: bench-small's
// (input and encoder width 128, one LIF layer of 64 units over 8 steps with
// β 0.95 and θ 1, a CfC of 64 units with one backbone layer of 64).
func DefaultModality() ModalityConfig {
	return ModalityConfig{
		InputDim:           128,
		EncoderDim:         128,
		LiquidUnits:        64,
		SpikingUnits:       64,
		SpikingLayers:      1,
		NumSpikeSteps:      8,
		Beta:               0.95,
		Threshold:          1,
		Reset:              "subtract",
		Surrogate:          SurrogateConfig{Kind: "fast_sigmoid", Slope: 25, Scale: 1},
		Backbone:           "cfc",
		BackboneUnits:      64,
		BackboneLayers:     1,
		BackboneActivation: "lecun_tanh",
		ElapsedTime:        1,
	}
}

// encode turns a configuration value into plain values (map[string]any
// keyed by config keys, []any, int, int64, float64, bool, string), the form
// Viper and the YAML printer take. Zero-length maps and slices encode as
// empty ones; a ",remain" map's entries join its struct's keys.
func encode(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			key, remain := tagKey(t.Field(i))
			switch {
			case remain:
				for k, x := range encode(v.Field(i)).(map[string]any) {
					out[k] = x
				}
			case key != "":
				out[key] = encode(v.Field(i))
			}
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			out[k.String()] = encode(v.MapIndex(k))
		}
		return out
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = encode(v.Index(i))
		}
		return out
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return encode(v.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int(v.Uint())
	case reflect.Float32, reflect.Float64:
		return v.Float()
	}
	return v.Interface()
}

// flatten lists the leaves of a plain value as dotted key → value; maps
// and structs recurse, everything else (lists included) is a leaf. An empty
// map is a leaf too, so that it is registered.
func flatten(prefix string, v any, out map[string]any) {
	m, ok := v.(map[string]any)
	if !ok || (len(m) == 0 && prefix != "") {
		out[prefix] = v
		return
	}
	for k, x := range m {
		flatten(join(prefix, k), x, out)
	}
}
