package main

import (
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lsfuse/lsfuse/pkg/config"
)

// configFlags are the flags every command that reads an experiment takes:
// the config files, --set overrides and the seed's shorthand flags. The
// environment (LSFUSE_*) is read too. Precedence: defaults < files < env <
// --set < shorthand flags.
type configFlags struct {
	Files          []string
	Sets           []string
	Multimodal     bool
	Modalities     []string
	FusionStrategy string
	FusionDim      int
	Epochs         int
	Seed           int64
	RunDir         string
	Device         string

	// Environ is the environment (os.Environ() outside tests).
	Environ []string
	// changed reports whether a flag was given (nil: none).
	changed func(name string) bool
}

// shorthands maps each shorthand flag to the key it sets.
var shorthands = []struct{ flag, key string }{
	{"fusion-strategy", "model.fusion_strategy"},
	{"fusion-dim", "model.fusion_dim"},
	{"epochs", "train.epochs"},
	{"seed", "run.seed"},
	{"run-dir", "run.dir"},
	{"device", "run.device"},
}

// register adds the flags to fs. model adds the model-shaping shorthands
// (--multimodal, --modalities, --fusion-strategy, --fusion-dim).
func (f *configFlags) register(fs *pflag.FlagSet, model bool) {
	fs.StringArrayVarP(&f.Files, "config", "c", nil, "experiment YAML `file` (repeatable; later files override earlier ones)")
	fs.StringArrayVar(&f.Sets, "set", nil, "override one key, e.g. --set train.lr=3e-4 (repeatable; values parse as YAML)")
	if model {
		fs.BoolVar(&f.Multimodal, "multimodal", false, "require at least two modalities (the seed's flag; every lsfuse model fuses its modalities)")
		fs.StringSliceVar(&f.Modalities, "modalities", nil, "keep only these modalities (space or comma separated; names not in the config get the defaults of that type)")
		fs.StringVar(&f.FusionStrategy, "fusion-strategy", "", "fusion strategy: early, late, hybrid or hierarchical (model.fusion_strategy)")
		fs.IntVar(&f.FusionDim, "fusion-dim", 0, "width of the fused representation (model.fusion_dim)")
	}
	fs.IntVar(&f.Epochs, "epochs", 0, "number of training epochs (train.epochs)")
	fs.Int64Var(&f.Seed, "seed", 0, "seed of initialisation, shuffling, splits and noise (run.seed)")
	fs.StringVar(&f.RunDir, "run-dir", "", "parent `dir` of run directories (run.dir)")
	fs.StringVar(&f.Device, "device", "", "cpu, cuda or auto (run.device)")
	f.changed = fs.Changed
}

// positional accepts the seed's space-separated list after --modalities
// (`--modalities vision text`): extra arguments are more modality names.
// Without --modalities, arguments are an error.
func (f *configFlags) positional(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if f.changed == nil || !f.changed("modalities") {
		return usagef("%s takes no arguments, got %q (did you mean --modalities %s?)", cmd.CommandPath(), strings.Join(args, " "), strings.Join(args, " "))
	}
	f.Modalities = append(f.Modalities, args...)
	return nil
}

// loadOptions turns the flags into config.LoadOptions; only flags given on
// the command line override.
func (f *configFlags) loadOptions() config.LoadOptions {
	o := config.LoadOptions{Files: f.Files, Sets: f.Sets, Environ: f.Environ, Modalities: f.Modalities}
	for _, s := range shorthands {
		if f.changed == nil || !f.changed(s.flag) {
			continue
		}
		var v string
		switch s.flag {
		case "fusion-strategy":
			v = f.FusionStrategy
		case "fusion-dim":
			v = strconv.Itoa(f.FusionDim)
		case "epochs":
			v = strconv.Itoa(f.Epochs)
		case "seed":
			v = strconv.FormatInt(f.Seed, 10)
		case "run-dir":
			v = f.RunDir
		case "device":
			v = f.Device
		}
		o.Flags = append(o.Flags, config.Override{Flag: "--" + s.flag, Key: s.key, Value: v})
	}
	return o
}

// load builds the configuration; every problem is a usage error (exit 2).
func (f *configFlags) load() (*config.Config, error) {
	return f.loadWith(nil)
}

// loadWith loads with extra documents after the files (a checkpoint's
// embedded config).
func (f *configFlags) loadWith(docs []config.Doc) (*config.Config, error) {
	o := f.loadOptions()
	o.Docs = docs
	cfg, err := config.Load(o)
	if err != nil {
		return nil, usageError{err}
	}
	if f.Multimodal && len(cfg.Model.Modalities) < 2 {
		return nil, usagef("--multimodal: the configuration has %d modality (%s); fuse at least two (add modalities, or drop --multimodal)",
			len(cfg.Model.Modalities), strings.Join(modalityNames(cfg), ", "))
	}
	return cfg, nil
}

func modalityNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Model.Modalities))
	for n := range cfg.Model.Modalities {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// environ is the process environment, read when a command runs (tests
// set variables with t.Setenv).
func environ() []string { return os.Environ() }
