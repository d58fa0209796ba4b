package model

import (
	"fmt"
	"sort"
	"strings"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/safetensors"
)

// checkpointFormat is stored in every checkpoint's metadata under "format".
const checkpointFormat = "lsfuse-checkpoint/1"

// stateSep separates the "state" namespace (optimiser moments, loss scale,
// data position) from parameter names inside a checkpoint file.
const statePrefix = "state/"

// SaveCheckpoint writes every parameter and buffer of store, the extra
// training state (optimiser moments and the like; names must not collide
// with parameters) and string metadata (resolved config, epoch, batch) to
// path as a safetensors file, atomically (temporary file, fsync, rename).
func SaveCheckpoint(path string, store *nn.Store, state map[string]safetensors.Tensor, meta map[string]string) error {
	ts := map[string]safetensors.Tensor{}
	for _, p := range store.Params() {
		t, err := toSafetensor(p.Value)
		if err != nil {
			return fmt.Errorf("checkpoint %s: parameter %s: %w", path, p.Name, err)
		}
		ts[p.Name] = t
	}
	for name, t := range state {
		ts[statePrefix+name] = t
	}
	m := map[string]string{"format": checkpointFormat}
	for k, v := range meta {
		m[k] = v
	}
	return safetensors.WriteFile(path, ts, m)
}

// LoadCheckpoint reads path into store, which must already hold the
// parameters of the same model (build the model from the checkpoint's
// config first). A parameter missing from the file, an extra one, or a
// shape mismatch is an error listing the offending names: a checkpoint of
// another model never loads partially. It returns the extra state and the
// metadata.
func LoadCheckpoint(path string, store *nn.Store) (map[string]safetensors.Tensor, map[string]string, error) {
	ts, meta, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if meta["format"] != checkpointFormat {
		return nil, nil, fmt.Errorf("%s: not an lsfuse checkpoint (format %q, want %q)", path, meta["format"], checkpointFormat)
	}
	state := map[string]safetensors.Tensor{}
	params := map[string]safetensors.Tensor{}
	for name, t := range ts {
		if strings.HasPrefix(name, statePrefix) {
			state[strings.TrimPrefix(name, statePrefix)] = t
		} else {
			params[name] = t
		}
	}
	var missing, mismatched []string
	for _, p := range store.Params() {
		t, ok := params[p.Name]
		if !ok {
			missing = append(missing, p.Name)
			continue
		}
		delete(params, p.Name)
		if !equalShape(p.Value.Shape(), t.Shape) {
			mismatched = append(mismatched, fmt.Sprintf("%s (model %v, checkpoint %v)", p.Name, p.Value.Shape(), t.Shape))
		}
	}
	var extra []string
	for name := range params {
		extra = append(extra, name)
	}
	sort.Strings(extra)
	if len(missing)+len(mismatched)+len(extra) > 0 {
		return nil, nil, fmt.Errorf("%s: checkpoint does not match the model: missing %s; shape mismatch %s; unexpected %s",
			path, list(missing), list(mismatched), list(extra))
	}
	for _, p := range store.Params() {
		if err := fromSafetensor(p.Value, ts[p.Name]); err != nil {
			return nil, nil, fmt.Errorf("%s: parameter %s: %w", path, p.Name, err)
		}
	}
	return state, meta, nil
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 8 {
		return strings.Join(names[:8], ", ") + fmt.Sprintf(" and %d more", len(names)-8)
	}
	return strings.Join(names, ", ")
}

func equalShape(a tensor.Shape, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range b {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func toSafetensor(d *tensor.Dense) (safetensors.Tensor, error) {
	shape := append([]int(nil), d.Shape()...)
	switch b := d.Data().(type) {
	case []float32:
		return safetensors.Tensor{Shape: shape, F32: append([]float32(nil), b...)}, nil
	case []float64:
		return safetensors.Tensor{Shape: shape, F64: append([]float64(nil), b...)}, nil
	}
	return safetensors.Tensor{}, fmt.Errorf("unsupported dtype %v", d.Dtype())
}

func fromSafetensor(d *tensor.Dense, t safetensors.Tensor) error {
	var vals []float64
	switch {
	case t.F32 != nil:
		vals = make([]float64, len(t.F32))
		for i, v := range t.F32 {
			vals[i] = float64(v)
		}
	case t.F64 != nil:
		vals = t.F64
	default:
		return fmt.Errorf("checkpoint tensor is not a float tensor")
	}
	return nn.SetFromFloat64(d, vals)
}
