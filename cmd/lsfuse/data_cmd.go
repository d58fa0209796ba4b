package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lsfuse/lsfuse/pkg/data"
)

// dataOptions are `lsfuse data <name>`'s inputs.
type dataOptions struct {
	IO *IOStreams
	// Name is the built-in dataset: avdigits or fashion.
	Name string
	// Out is the output directory (default data/<name>); it must not exist
	// or be empty.
	Out         string
	Train, Test int
	Seed        int64
	Workers     int
	// SampleRate is avdigits' audio rate in Hz.
	SampleRate int
	// SourceDir overrides where the source images are read (MNIST idx
	// files for avdigits, Fashion-MNIST for fashion).
	SourceDir string
}

func newDataCmd(ios *IOStreams, runF func(context.Context, *dataOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Make a built-in multimodal dataset",
		Long: `Data writes a built-in dataset as a manifest directory (manifest.csv with a
split column, the files it names, metadata.json and README.md) that an
experiment reads with data.builtin (and data.dir) or data.train:

  avdigits  real MNIST digits paired by label with the digit word spoken by
            espeak-ng in noise and a text column (needs espeak-ng)
  fashion   Fashion-MNIST images paired with WordNet descriptions of the
            garment (needs dataset-fashion-mnist and wordnet-base)

The result is a pure function of the flags.`,
		Example: `  lsfuse data avdigits --out data/avdigits
  lsfuse data avdigits --out /tmp/av --train 700 --test 200 --sample-rate 8000
  lsfuse data fashion --out data/fashion --train 5000 --test 1000 --seed 2`,
		Args: cobra.NoArgs,
	}
	for _, name := range []string{"avdigits", "fashion"} {
		cmd.AddCommand(newDataGenCmd(ios, name, runF))
	}
	return cmd
}

func newDataGenCmd(ios *IOStreams, name string, runF func(context.Context, *dataOptions) error) *cobra.Command {
	opts := &dataOptions{IO: ios, Name: name}
	var train, test int
	var seed int64
	short := "Generate the audio-visual digits dataset (MNIST + espeak-ng speech + text)"
	if name == "avdigits" {
		d := data.DefaultAVDigitsConfig()
		train, test, seed = d.Train, d.Test, d.Seed
	} else {
		short = "Generate the Fashion-MNIST + WordNet description dataset"
		d := data.DefaultFashionConfig()
		train, test, seed = d.Train, d.Test, d.Seed
	}
	cmd := &cobra.Command{
		Use:     name,
		Short:   short,
		Example: fmt.Sprintf("  lsfuse data %s --out data/%s --train 1000 --test 200", name, name),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Out == "" {
				opts.Out = filepath.Join("data", name)
			}
			if opts.Train < 0 || opts.Test < 0 || opts.Train+opts.Test == 0 {
				return usagef("--train %d and --test %d: row counts must be ≥ 0 and not both 0", opts.Train, opts.Test)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runData(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Out, "out", "", "output `dir` (must not exist or be empty; default data/"+name+")")
	f.IntVar(&opts.Train, "train", train, "training rows")
	f.IntVar(&opts.Test, "test", test, "test rows")
	f.Int64Var(&opts.Seed, "seed", seed, "seed of every random choice")
	f.IntVar(&opts.Workers, "workers", 2, "rows generated in parallel (the output does not depend on it)")
	if name == "avdigits" {
		f.IntVar(&opts.SampleRate, "sample-rate", data.DefaultAVDigitsConfig().Speech.SampleRate, "audio sample rate in Hz")
		f.StringVar(&opts.SourceDir, "mnist-dir", "", "folder of the four MNIST idx .gz files (default: the GoMNIST module's)")
	} else {
		f.StringVar(&opts.SourceDir, "fashion-dir", "", "folder of the Fashion-MNIST idx files (default "+data.DefaultFashionMNISTDir+")")
	}
	return cmd
}

func runData(ctx context.Context, opts *dataOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var (
		gen *data.GeneratedDataset
		err error
	)
	switch opts.Name {
	case "avdigits":
		cfg := data.DefaultAVDigitsConfig()
		cfg.Train, cfg.Test, cfg.Seed, cfg.Workers, cfg.MNISTDir = opts.Train, opts.Test, opts.Seed, opts.Workers, opts.SourceDir
		cfg.Speech.SampleRate = opts.SampleRate
		if err := cfg.Validate(); err != nil {
			return usageError{err}
		}
		gen, err = data.GenerateAVDigits(ctx, opts.Out, cfg)
	case "fashion":
		cfg := data.DefaultFashionConfig()
		cfg.Train, cfg.Test, cfg.Seed, cfg.Workers, cfg.Dir = opts.Train, opts.Test, opts.Seed, opts.Workers, opts.SourceDir
		if err := cfg.Validate(); err != nil {
			return usageError{err}
		}
		gen, err = data.GenerateFashion(ctx, opts.Out, cfg)
	default:
		return usagef("unknown dataset %q (avdigits, fashion)", opts.Name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "wrote %s (%d classes; rows per class: train %v, test %v)\nuse it with data.builtin: %s and data.dir: %s, or data.train: %s\n",
		gen.Manifest, len(gen.Classes), gen.Splits["train"], gen.Splits["test"], opts.Name, opts.Out, gen.Manifest)
	return nil
}
