package config

import (
	"reflect"
	"sort"
	"strings"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/modality"
)

// skind is the shape of a schema node.
type skind int

const (
	sStruct skind = iota // a mapping with a fixed set of keys
	sMap                 // a mapping from modality names to one schema
	sList                // a sequence
	sInt
	sFloat
	sBool
	sString
	sAny // anything: passed through unchecked (registered preprocessors' options)
)

// snode is one node of the experiment schema: what a YAML value at a key
// may be. The tree is built from the Go structs' tags (mapstructure, else
// json), so the schema cannot drift from the types it decodes into.
type snode struct {
	kind   skind
	fields []sfield                // sStruct, in declaration order
	elem   *snode                  // sMap values, sList elements
	keyed  func(key string) *snode // sMap: the schema of entry key (overrides elem)
	path   bool                    // sString: a file path, resolved against the config file's folder
}

type sfield struct {
	key  string
	node *snode
}

// field returns the schema of key, or nil.
func (n *snode) field(key string) *snode {
	for _, f := range n.fields {
		if f.key == key {
			return f.node
		}
	}
	return nil
}

// entry returns the schema of the map entry named key.
func (n *snode) entry(key string) *snode {
	if n.keyed != nil {
		return n.keyed(key)
	}
	return n.elem
}

// keys lists a struct node's keys.
func (n *snode) keys() []string {
	out := make([]string, len(n.fields))
	for i, f := range n.fields {
		out[i] = f.key
	}
	return out
}

// isLeaf reports a node set by one value in the environment or a flag.
func (n *snode) isLeaf() bool { return n.kind != sStruct && n.kind != sMap }

// tagKey returns the config key of a struct field: its mapstructure tag,
// else its json tag; "" for a field that is not configurable, and remain
// for a mapstructure ",remain" field.
func tagKey(f reflect.StructField) (key string, remain bool) {
	tag, ok := f.Tag.Lookup("mapstructure")
	if !ok {
		tag, ok = f.Tag.Lookup("json")
	}
	if !ok || !f.IsExported() {
		return "", false
	}
	name, opts, _ := strings.Cut(tag, ",")
	if name == "-" {
		return "", false
	}
	if name == "" && strings.Contains(opts, "remain") {
		return "", true
	}
	return name, false
}

// schemaOf builds the schema of a Go type. Struct fields without a tag are
// not configurable; ",remain" fields are left to the caller (their keys
// depend on another key's value).
func schemaOf(t reflect.Type) *snode {
	switch t.Kind() {
	case reflect.Struct:
		n := &snode{kind: sStruct}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			key, _ := tagKey(f)
			if key == "" {
				continue
			}
			c := schemaOf(f.Type)
			if c.kind == sString && f.Tag.Get("lsfuse") == "path" {
				c = &snode{kind: sString, path: true}
			}
			n.fields = append(n.fields, sfield{key, c})
		}
		return n
	case reflect.Map:
		return &snode{kind: sMap, elem: schemaOf(t.Elem())}
	case reflect.Slice, reflect.Array:
		return &snode{kind: sList, elem: schemaOf(t.Elem())}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &snode{kind: sInt}
	case reflect.Float32, reflect.Float64:
		return &snode{kind: sFloat}
	case reflect.Bool:
		return &snode{kind: sBool}
	case reflect.String:
		return &snode{kind: sString}
	}
	return &snode{kind: sAny}
}

// preprocessingTypes maps each built-in modality type to its settings
// struct in pkg/modality (the preprocessing section's keys).
var preprocessingTypes = map[string]reflect.Type{
	modality.KindVision: reflect.TypeOf(modality.VisionConfig{}),
	modality.KindAudio:  reflect.TypeOf(modality.AudioConfig{}),
	modality.KindText:   reflect.TypeOf(modality.TextConfig{}),
	modality.KindSensor: reflect.TypeOf(modality.SensorConfig{}),
	modality.KindVideo:  reflect.TypeOf(modality.VideoConfig{}),
	modality.KindMLP:    reflect.TypeOf(modality.MLPConfig{}),
}

// inputKinds maps each data input kind to its decoding settings in
// pkg/data.
var inputKinds = map[string]reflect.Type{
	data.KindImage:  reflect.TypeOf(data.ImageConfig{}),
	data.KindAudio:  reflect.TypeOf(data.AudioConfig{}),
	data.KindText:   reflect.TypeOf(data.TextConfig{}),
	data.KindSensor: reflect.TypeOf(data.SensorConfig{}),
	data.KindVideo:  reflect.TypeOf(data.VideoConfig{}),
}

// inputKindOfType is the data input kind a modality type reads by default.
var inputKindOfType = map[string]string{
	modality.KindVision: data.KindImage,
	modality.KindAudio:  data.KindAudio,
	modality.KindText:   data.KindText,
	modality.KindSensor: data.KindSensor,
	modality.KindVideo:  data.KindVideo,
}

// archKey is the preprocessing key that picks the variant of a type.
const archKey = "architecture"

// preprocessingSchema is the preprocessing section of a modality of type
// typ: architecture plus the type's settings. An unknown (registered or
// misspelt) type accepts anything; the type itself is validated.
func preprocessingSchema(typ string) *snode {
	t, ok := preprocessingTypes[typ]
	if !ok {
		return &snode{kind: sAny}
	}
	n := schemaOf(t)
	n.fields = append([]sfield{{archKey, &snode{kind: sString}}}, n.fields...)
	return n
}

// inputSchema is a data input of kind: InputConfig's keys plus the kind's
// decoding settings.
func inputSchema(kind string) *snode {
	n := schemaOf(reflect.TypeOf(InputConfig{}))
	if t, ok := inputKinds[kind]; ok {
		n.fields = append(n.fields, schemaOf(t).fields...)
	}
	return n
}

// kindLookup tells the schema the type of each modality and the kind of
// each data input, which decide the keys of their kind-specific sections.
type kindLookup struct {
	types  map[string]string // modality name → type
	inputs map[string]string // input name → kind as given ("" when not given)
}

// modalityType is a modality's type: as given, else its name when that is
// a built-in type.
func (k kindLookup) modalityType(name string) string {
	if t := k.types[name]; t != "" {
		return t
	}
	if _, ok := preprocessingTypes[name]; ok {
		return name
	}
	return ""
}

// inputKind is a data input's kind: as given, else the one its modality's
// type reads.
func (k kindLookup) inputKind(name string) string {
	if s := k.inputs[name]; s != "" {
		return s
	}
	return inputKindOfType[k.modalityType(name)]
}

// rootSchema is the schema of Config for the given modality types and
// input kinds.
func rootSchema(k kindLookup) *snode {
	root := schemaOf(reflect.TypeOf(Config{}))
	model := root.field("model")
	mods := model.field("modalities")
	mods.keyed = func(name string) *snode {
		n := schemaOf(reflect.TypeOf(ModalityConfig{}))
		for i := range n.fields {
			if n.fields[i].key == "preprocessing" {
				n.fields[i].node = preprocessingSchema(k.modalityType(name))
			}
		}
		return n
	}
	d := root.field("data")
	d.field("inputs").keyed = func(name string) *snode { return inputSchema(k.inputKind(name)) }
	for i := range d.fields {
		if d.fields[i].key == "label_text" {
			d.fields[i].node = schemaOf(reflect.TypeOf(data.TextConfig{}))
		}
	}
	return root
}

// leafPaths lists every settable leaf under n at prefix (maps expand to
// the given modality names), sorted. Used for environment variables and
// suggestions.
func leafPaths(n *snode, prefix string, names []string) []string {
	var out []string
	var walk func(n *snode, p string)
	walk = func(n *snode, p string) {
		switch n.kind {
		case sStruct:
			for _, f := range n.fields {
				walk(f.node, join(p, f.key))
			}
		case sMap:
			for _, name := range names {
				walk(n.entry(name), join(p, name))
			}
		case sAny:
		default:
			out = append(out, p)
		}
	}
	walk(n, prefix)
	sort.Strings(out)
	return out
}

// lookupPath walks a dotted key from n; it returns the node, or the
// longest valid prefix and the first unknown segment.
func lookupPath(n *snode, key string) (node *snode, valid string, bad string) {
	segs := strings.Split(key, ".")
	for i, s := range segs {
		switch n.kind {
		case sStruct:
			c := n.field(s)
			if c == nil {
				return nil, strings.Join(segs[:i], "."), s
			}
			n = c
		case sMap:
			if !validName(s) {
				return nil, strings.Join(segs[:i], "."), s
			}
			n = n.entry(s)
		case sAny:
			return n, key, ""
		default:
			return nil, strings.Join(segs[:i], "."), s
		}
	}
	return n, key, ""
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
