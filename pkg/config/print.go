package config

import (
	"bytes"
	"path/filepath"
	"reflect"
	"sort"

	"go.yaml.in/yaml/v3"
)

// Marshal writes the configuration as YAML, keys in schema order (the
// order of the Go fields), modalities and other maps sorted by name.
// Loading the output gives back the same configuration. With absPaths,
// relative paths become absolute, so the file can be read from anywhere
// (the form saved in run directories and checkpoints).
func (c *Config) Marshal(absPaths bool) ([]byte, error) {
	cc := *c
	if absPaths {
		for _, p := range []*string{&cc.Data.Dir, &cc.Data.Train, &cc.Data.Val, &cc.Data.Test, &cc.Run.Dir} {
			if *p != "" && !filepath.IsAbs(*p) {
				if abs, err := filepath.Abs(*p); err == nil {
					*p = abs
				}
			}
		}
	}
	root := rootSchema(c.kinds())
	n := toNode(encode(reflect.ValueOf(cc)), root)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// kinds is the kind lookup of a decoded config.
func (c *Config) kinds() kindLookup {
	k := kindLookup{types: map[string]string{}, inputs: map[string]string{}}
	for n, m := range c.Model.Modalities {
		k.types[n] = m.Type
	}
	for n, in := range c.Data.Inputs {
		k.inputs[n] = in.Kind
	}
	return k
}

// toNode builds the YAML node of a plain value following schema s for key
// order (nil s: sorted keys).
func toNode(v any, s *snode) *yaml.Node {
	switch x := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode}
		var keys []string
		if s != nil && s.kind == sStruct {
			for _, f := range s.fields {
				if _, ok := x[f.key]; ok {
					keys = append(keys, f.key)
				}
			}
		}
		var rest []string
		for k := range x {
			if s == nil || s.kind != sStruct || s.field(k) == nil {
				rest = append(rest, k)
			}
		}
		sort.Strings(rest)
		keys = append(keys, rest...)
		if len(keys) == 0 {
			n.Style = yaml.FlowStyle
		}
		for _, k := range keys {
			var cs *snode
			if s != nil {
				switch s.kind {
				case sStruct:
					cs = s.field(k)
				case sMap:
					cs = s.entry(k)
				}
			}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, toNode(x[k], cs))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		var es *snode
		if s != nil {
			es = s.elem
		}
		flow := true
		for _, e := range x {
			c := toNode(e, es)
			flow = flow && c.Kind == yaml.ScalarNode
			n.Content = append(n.Content, c)
		}
		if flow {
			n.Style = yaml.FlowStyle
		}
		return n
	}
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	}
	return &n
}
