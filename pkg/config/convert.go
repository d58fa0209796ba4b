package config

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// nameRE is a modality (map key) name: lower-case snake_case, because
// Viper lower-cases keys.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func validName(s string) bool { return nameRE.MatchString(s) }

// converter checks YAML nodes from one source against the schema and turns
// them into plain values of the schema's types (int, float64, bool,
// string, []any, map[string]any), recording every problem with its key and
// line.
type converter struct {
	root   *snode
	names  []string // modality names, for suggestions
	source string   // file path, "--set", variable or flag name
	file   bool     // source is a file: errors carry lines
	dir    string   // folder that relative paths in this source are relative to ("" keeps them)
	errs   *errorList
	pos    positions // where each key was set (nil: not recorded)
}

// position is where a key's value was set.
type position struct {
	source string
	line   int
}

// positions maps dotted keys to where they were last set, so that problems
// found after merging (cross-field validation) can name the file and line.
type positions map[string]position

// locate fills in the source and line of a key's error: the position of
// the key, else of its closest parent that was set.
func (p positions) locate(e *Error) {
	if e.Source != "" || e.Key == "" {
		return
	}
	for k := e.Key; k != ""; {
		if at, ok := p[k]; ok {
			e.Source, e.Line = at.source, at.line
			return
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			return
		}
		k = k[:i]
	}
}

func (c *converter) record(n *yaml.Node, key string) {
	if c.pos == nil {
		return
	}
	at := position{source: c.source}
	if c.file && n != nil {
		at.line = n.Line
	}
	c.pos[key] = at
}

func (c *converter) fail(n *yaml.Node, key, format string, args ...any) {
	e := &Error{Source: c.source, Key: key, Msg: fmt.Sprintf(format, args...)}
	if c.file && n != nil {
		e.Line = n.Line
	}
	c.errs.add(e)
}

// isNull reports an explicit YAML null (~, null, or an empty value).
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// convert returns n as a value of schema s at key; ok false means the value
// is unset (null) or invalid (an error was recorded).
func (c *converter) convert(n *yaml.Node, s *snode, key string) (any, bool) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if isNull(n) {
		return nil, false
	}
	switch s.kind {
	case sStruct, sMap:
		if n.Kind != yaml.MappingNode {
			c.fail(n, key, "want a mapping of keys (%s), got %s", c.expectKeys(s), describe(n))
			return nil, false
		}
		out := map[string]any{}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			k := kn.Value
			full := join(key, k)
			if kn.Kind != yaml.ScalarNode {
				c.fail(kn, key, "keys must be plain names, got %s", describe(kn))
				continue
			}
			if seen[k] {
				c.fail(kn, full, "key given twice in the same mapping")
				continue
			}
			seen[k] = true
			var child *snode
			if s.kind == sStruct {
				child = s.field(k)
				if child == nil {
					c.fail(kn, full, "unknown key (%s)", didYouMean(c.root, s, key, k, c.names))
					continue
				}
			} else {
				if !validName(k) {
					c.fail(kn, full, "%q is not a valid modality name: use lower-case letters, digits and _ , starting with a letter", k)
					continue
				}
				child = s.entry(k)
			}
			if v, ok := c.convert(vn, child, full); ok {
				out[k] = v
				c.record(kn, full)
			}
		}
		return out, true
	case sList:
		if n.Kind != yaml.SequenceNode {
			c.fail(n, key, "want a list, e.g. [a, b], got %s", describe(n))
			return nil, false
		}
		out := make([]any, 0, len(n.Content))
		good := true
		for i, e := range n.Content {
			v, ok := c.convert(e, s.elem, fmt.Sprintf("%s[%d]", key, i))
			if !ok {
				good = false
				continue
			}
			out = append(out, v)
		}
		return out, good
	case sAny:
		var v any
		if err := n.Decode(&v); err != nil {
			c.fail(n, key, "%v", err)
			return nil, false
		}
		return v, true
	}
	if n.Kind != yaml.ScalarNode {
		c.fail(n, key, "want %s, got %s", scalarWant(s.kind), describe(n))
		return nil, false
	}
	return c.scalar(n, s, key)
}

// scalar converts a scalar node to the schema's type.
func (c *converter) scalar(n *yaml.Node, s *snode, key string) (any, bool) {
	tag := n.ShortTag()
	switch s.kind {
	case sString:
		v := n.Value
		if s.path && v != "" && c.dir != "" && !filepath.IsAbs(v) {
			v = filepath.Clean(filepath.Join(c.dir, v))
		}
		return v, true
	case sBool:
		var b bool
		if tag == "!!bool" && n.Decode(&b) == nil {
			return b, true
		}
	case sInt:
		var i int64
		if tag == "!!int" && n.Decode(&i) == nil {
			return int(i), true
		}
		var f float64
		if tag == "!!float" && n.Decode(&f) == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int(f), true
		}
	case sFloat:
		var f float64
		if (tag == "!!float" || tag == "!!int") && n.Decode(&f) == nil {
			return f, true
		}
	}
	c.fail(n, key, "want %s, got %q", scalarWant(s.kind), n.Value)
	return nil, false
}

func scalarWant(k skind) string {
	switch k {
	case sInt:
		return "an integer"
	case sFloat:
		return "a number"
	case sBool:
		return "true or false"
	case sString:
		return "a string"
	case sList:
		return "a list"
	}
	return "a value"
}

func (c *converter) expectKeys(s *snode) string {
	if s.kind == sMap {
		return "modality names"
	}
	keys := s.keys()
	if len(keys) > 6 {
		return strings.Join(keys[:6], ", ") + ", ..."
	}
	return strings.Join(keys, ", ")
}

// describe names a node's shape for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected YAML node"
}

// parseValue parses a value given as text (a --set value, an environment
// variable) for schema s: strings are taken verbatim, anything else is
// read as YAML ("3e-4", "true", "[16, 32]", "{vision: 0.2}").
func (c *converter) parseValue(text string, s *snode, key string) (any, bool) {
	if s.kind == sString {
		return c.scalar(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: text}, s, key)
	}
	if s.kind == sList && !strings.HasPrefix(strings.TrimSpace(text), "[") {
		text = "[" + text + "]" // a comma-separated list without brackets
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		c.fail(nil, key, "cannot parse %q: %v", text, yamlMsg(err))
		return nil, false
	}
	if n.Kind == 0 { // empty text
		n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}
	}
	return c.convert(&n, s, key)
}

// yamlMsg strips the "yaml: " prefix of yaml.v3's errors.
func yamlMsg(err error) string { return strings.TrimPrefix(err.Error(), "yaml: ") }
