package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable that overrides a key:
// train.lr is LSFUSE_TRAIN_LR, model.modalities.vision.encoder_dim is
// LSFUSE_MODEL_MODALITIES_VISION_ENCODER_DIM.
const EnvPrefix = "LSFUSE_"

// envSections are the prefixes of variables that must name a key: an
// unknown LSFUSE_TRAIN_* variable is a misspelling, while other LSFUSE_*
// variables (test switches and the like) are not configuration.
var envSections = []string{"MODEL_", "DATA_", "TRAIN_", "EXPORT_", "RUN_"}

// Doc is one YAML experiment document.
type Doc struct {
	// Name is shown in errors: the file path, or e.g. "checkpoint config".
	Name string
	// Data is the YAML text.
	Data []byte
	// Dir is the folder relative paths in the document are relative to;
	// "" leaves them as written (relative to the working directory).
	Dir string
}

// Override is one value set by a named command-line flag.
type Override struct {
	// Flag is the flag as typed, e.g. "--epochs", for error messages.
	Flag string
	// Key is the dotted key it sets, e.g. "train.epochs".
	Key string
	// Value is the flag's value as text; it is parsed like a --set value.
	Value string
}

// LoadOptions are the sources of a configuration, from lowest to highest
// precedence: Default(), Files and Docs (in order, later wins), Environ,
// Sets, Flags. The zero value loads the defaults.
type LoadOptions struct {
	// Files are YAML experiment files (--config, repeatable). Paths inside
	// a file are relative to its folder.
	Files []string
	// Docs are further documents, merged after Files.
	Docs []Doc
	// Environ is the environment as "KEY=value" (os.Environ()); variables
	// starting with LSFUSE_ override keys. nil ignores the environment.
	Environ []string
	// Sets are "dotted.key=value" overrides (--set), applied in order.
	// Values parse as YAML: 3e-4, true, [16, 32], {vision: 0.2}.
	Sets []string
	// Flags are the command's named flags (--epochs 3 → train.epochs),
	// applied last, in order.
	Flags []Override
	// Modalities, when not empty (--modalities vision text), keeps only
	// these modalities; a listed name that no file configures is added with
	// the defaults of the type of that name.
	Modalities []string
}

// Load builds the configuration from opts, completes the defaults that
// depend on other keys (Complete) and validates it (Validate). Every
// problem is reported at once, each an *Error naming the key, its source
// and (in files) the line; an unknown key suggests the closest valid one.
// Load uses a fresh Viper instance: it has no global state.
func Load(opts LoadOptions) (*Config, error) {
	cfg, pos, err := decode(opts)
	if err != nil {
		return nil, err
	}
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		for _, e := range flattenJoin(err) {
			if ce, ok := e.(*Error); ok {
				pos.locate(ce)
			}
		}
		return nil, err
	}
	return cfg, nil
}

// source is one parsed document.
type source struct {
	doc  Doc
	root *yaml.Node // the document's top mapping; nil when empty
}

// decode merges the sources and decodes them strictly into a Config.
func decode(opts LoadOptions) (*Config, positions, error) {
	var errs errorList
	pos := positions{}
	var docs []Doc
	for _, path := range opts.Files {
		b, err := os.ReadFile(path)
		if err != nil {
			msg := err.Error()
			if errors.Is(err, fs.ErrNotExist) {
				msg = "config file does not exist"
			}
			errs.add(&Error{Source: path, Msg: msg})
			continue
		}
		docs = append(docs, Doc{Name: path, Data: b, Dir: filepath.Dir(path)})
	}
	docs = append(docs, opts.Docs...)
	var srcs []source
	for _, d := range docs {
		s, err := parseDoc(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		srcs = append(srcs, s)
	}
	if err := errs.err(); err != nil {
		return nil, nil, err
	}

	sets, err := parseSets(opts.Sets)
	if err != nil {
		return nil, nil, err
	}
	kinds, names, mods := discover(srcs, sets, opts.Modalities)
	root := rootSchema(kinds)

	v := viper.New()
	registerDefaults(v, mods)
	for _, s := range srcs {
		if s.root == nil {
			continue
		}
		c := &converter{root: root, names: names, source: s.doc.Name, file: true, dir: s.doc.Dir, errs: &errs, pos: pos}
		m, ok := c.convert(s.root, root, "")
		if ok {
			if err := v.MergeConfigMap(m.(map[string]any)); err != nil {
				errs.add(&Error{Source: s.doc.Name, Msg: err.Error()})
			}
		}
	}
	applyEnv(v, root, names, opts.Environ, &errs, pos)
	for _, s := range sets {
		setValue(v, root, names, "--set "+s.key+"="+s.value, s.key, s.value, &errs, pos)
	}
	for _, f := range opts.Flags {
		setValue(v, root, names, f.Flag, f.Key, f.Value, &errs, pos)
	}
	if err := errs.err(); err != nil {
		return nil, nil, err
	}

	cfg := &Config{}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: cfg, ErrorUnused: true, ZeroFields: true})
	if err != nil {
		return nil, nil, err
	}
	if err := dec.Decode(v.AllSettings()); err != nil {
		// The converter checked every key and type, so this is a bug.
		return nil, nil, fmt.Errorf("config: decoding the merged configuration: %w", err)
	}
	if err := keepModalities(cfg, opts.Modalities); err != nil {
		return nil, nil, err
	}
	if cfg.Run.Name == "" {
		cfg.Run.Name = "run"
		if n := len(opts.Files); n > 0 {
			base := filepath.Base(opts.Files[n-1])
			cfg.Run.Name = strings.TrimSuffix(base, filepath.Ext(base))
		}
	}
	return cfg, pos, nil
}

// parseDoc parses one YAML document; its top level must be a mapping.
func parseDoc(d Doc) (source, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(d.Data, &n); err != nil {
		return source{}, yamlError(d.Name, err)
	}
	s := source{doc: d}
	if n.Kind == 0 || len(n.Content) == 0 {
		return s, nil // empty document
	}
	top := n.Content[0]
	if isNull(top) {
		return s, nil
	}
	if top.Kind != yaml.MappingNode {
		return source{}, &Error{Source: d.Name, Line: top.Line, Msg: "the top level must be a mapping of sections (model, data, train, export, run)"}
	}
	s.root = top
	return s, nil
}

// yamlError turns a yaml.v3 syntax error ("yaml: line 3: ...") into an
// *Error carrying the line.
func yamlError(name string, err error) error {
	msg := yamlMsg(err)
	e := &Error{Source: name, Msg: "YAML syntax: " + msg}
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		e.Line = line
		if _, rest, ok := strings.Cut(msg, ": "); ok {
			e.Msg = "YAML syntax: " + rest
		}
	}
	return e
}

// setEntry is one parsed --set.
type setEntry struct{ key, value string }

func parseSets(sets []string) ([]setEntry, error) {
	var errs errorList
	var out []setEntry
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			errs.add(&Error{Source: "--set " + s, Msg: "want dotted.key=value, e.g. --set train.lr=3e-4"})
			continue
		}
		out = append(out, setEntry{k, v})
	}
	return out, errs.err()
}

// discover finds the names used as modalities or data inputs (all), the
// modalities among them (mods: named under model.modalities by a document
// or --set, or by --modalities), and the types and kinds that decide the
// keys of preprocessing and data input sections.
func discover(srcs []source, sets []setEntry, keep []string) (k kindLookup, all, mods []string) {
	k = kindLookup{types: map[string]string{}, inputs: map[string]string{}}
	seenAll, seenMod := map[string]bool{}, map[string]bool{}
	add := func(name string, modality bool) {
		if !validName(name) {
			return
		}
		seenAll[name] = true
		if modality {
			seenMod[name] = true
		}
	}
	for _, s := range srcs {
		if s.root == nil {
			continue
		}
		var raw map[string]any
		if s.root.Decode(&raw) != nil {
			continue // the converter reports it
		}
		for name, m := range section(raw, "model", "modalities") {
			add(name, true)
			if t, ok := m.(map[string]any)["type"].(string); ok {
				k.types[name] = t
			}
		}
		for name, m := range section(raw, "data", "inputs") {
			add(name, false)
			if t, ok := m.(map[string]any)["kind"].(string); ok {
				k.inputs[name] = t
			}
		}
	}
	for _, s := range sets {
		segs := strings.Split(s.key, ".")
		if len(segs) < 3 {
			continue
		}
		switch segs[0] + "." + segs[1] {
		case "model.modalities":
			add(segs[2], true)
			if len(segs) == 4 && segs[3] == "type" {
				k.types[segs[2]] = s.value
			}
		case "data.inputs":
			add(segs[2], false)
			if len(segs) == 4 && segs[3] == "kind" {
				k.inputs[segs[2]] = s.value
			}
		}
	}
	for _, name := range keep {
		add(name, true)
	}
	return k, sortedSet(seenAll), sortedSet(seenMod)
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// section returns raw[a][b] as a map of maps (entries that are not maps
// are skipped).
func section(raw map[string]any, a, b string) map[string]any {
	out := map[string]any{}
	ma, _ := raw[a].(map[string]any)
	mb, _ := ma[b].(map[string]any)
	for k, v := range mb {
		if m, ok := v.(map[string]any); ok {
			out[k] = m
		} else if v == nil {
			out[k] = map[string]any{}
		}
	}
	return out
}

// registerDefaults registers every key's default, so that the environment
// can override it and the decoded config is complete: the static defaults,
// and DefaultModality under model.modalities.<name> for every modality.
func registerDefaults(v *viper.Viper, modalities []string) {
	leaves := map[string]any{}
	flatten("", encode(reflect.ValueOf(Default())), leaves)
	for _, name := range modalities {
		flatten("model.modalities."+name, encode(reflect.ValueOf(DefaultModality())), leaves)
	}
	// Sorted, so that an empty map's default ("model.modalities") is set
	// before the keys under it, which it would otherwise replace.
	for _, k := range sortedNames(leaves) {
		v.SetDefault(k, leaves[k])
	}
}

// applyEnv applies LSFUSE_* variables that name a key.
func applyEnv(v *viper.Viper, root *snode, names, environ []string, errs *errorList, pos positions) {
	if len(environ) == 0 {
		return
	}
	byEnv := map[string]string{}
	var envNames []string
	for _, p := range leafPaths(root, "", names) {
		e := EnvName(p)
		if _, dup := byEnv[e]; !dup {
			byEnv[e] = p
			envNames = append(envNames, e)
		}
	}
	sorted := append([]string(nil), environ...)
	sort.Strings(sorted) // deterministic order of errors and overrides
	for _, kv := range sorted {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		key, known := byEnv[name]
		if !known {
			rest := strings.TrimPrefix(name, EnvPrefix)
			for _, sec := range envSections {
				if strings.HasPrefix(rest, sec) {
					msg := "does not name a configuration key"
					if s := suggest(name, envNames); s != "" {
						msg += fmt.Sprintf(" (did you mean %s?)", s)
					}
					errs.add(&Error{Source: "environment variable " + name, Msg: msg})
					break
				}
			}
			continue
		}
		setValue(v, root, names, "environment variable "+name, key, val, errs, pos)
	}
}

// EnvName is the environment variable that overrides a dotted key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_").Replace(key))
}

// setValue checks key against the schema, parses text for it and sets it
// at the override level (later calls win).
func setValue(v *viper.Viper, root *snode, names []string, src, key, text string, errs *errorList, pos positions) {
	node, valid, bad := lookupPath(root, key)
	if node == nil {
		parent := root
		if valid != "" {
			parent, _, _ = lookupPath(root, valid)
		}
		msg := "unknown key"
		if parent != nil && parent.kind == sStruct {
			msg += " (" + didYouMean(root, parent, valid, bad, names) + ")"
		} else if parent != nil && parent.kind == sMap {
			msg += fmt.Sprintf(" (%q is not a valid modality name)", bad)
		}
		errs.add(&Error{Source: src, Key: key, Msg: msg})
		return
	}
	c := &converter{root: root, names: names, source: src, errs: errs, pos: pos}
	val, ok := c.parseValue(text, node, key)
	if !ok {
		return
	}
	v.Set(key, val)
	c.record(nil, key)
}

// keepModalities applies --modalities: only the listed modalities stay,
// with their data inputs and per-modality settings.
func keepModalities(cfg *Config, keep []string) error {
	if len(keep) == 0 {
		return nil
	}
	var errs errorList
	want := map[string]bool{}
	for _, n := range keep {
		if !validName(n) {
			errs.add(&Error{Source: "--modalities", Msg: fmt.Sprintf("%q is not a valid modality name (lower-case letters, digits and _)", n)})
		}
		want[n] = true
	}
	for n := range cfg.Model.Modalities {
		if !want[n] {
			delete(cfg.Model.Modalities, n)
			delete(cfg.Data.Inputs, n)
			delete(cfg.Model.ModalityDropout, n)
			delete(cfg.Train.ModalityLR, n)
		}
	}
	return errs.err()
}
