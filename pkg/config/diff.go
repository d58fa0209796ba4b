package config

import (
	"fmt"
	"reflect"
	"sort"
)

// ModelDiff lists the model keys on which a and b differ, as
// "key: a-value ≠ b-value" sorted by key: what makes a checkpoint of a
// incompatible with b. Keys outside model (epochs, data paths, the run's
// name) may differ between a run and its resumption and are not compared.
func ModelDiff(a, b *Config) []string {
	fa, fb := map[string]any{}, map[string]any{}
	flatten("model", encode(reflect.ValueOf(a.Model)), fa)
	flatten("model", encode(reflect.ValueOf(b.Model)), fb)
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		va, okA := fa[k]
		vb, okB := fb[k]
		if okA && okB && reflect.DeepEqual(va, vb) {
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s ≠ %s", k, show(va, okA), show(vb, okB)))
	}
	sort.Strings(out)
	return out
}

func show(v any, ok bool) string {
	if !ok {
		return "(absent)"
	}
	return fmt.Sprintf("%v", v)
}
