package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lsfuse/lsfuse/pkg/data"
)

// dataOptions are `lsfuse data <name>`'s inputs. Each dataset reads the
// fields its flags set (see builtinDatasets).
type dataOptions struct {
	IO *IOStreams
	// Name is the built-in dataset (a builtinDatasets name).
	Name string
	// Out is the output directory (default data/<name>); it must not exist
	// or be empty.
	Out         string
	Train, Test int
	Seed        int64
	Workers     int
	// SampleRate (Hz) and MaxSeconds shape the spoken clips (avdigits,
	// movingdigits, trimodal).
	SampleRate int
	MaxSeconds float64
	// MNISTDir, FashionDir and WordNetDir override where the sources are
	// read ("" is the generator's default).
	MNISTDir, FashionDir, WordNetDir string
	// Source (visionlang) is mnist, fashion or both; NoGlosses drops the
	// WordNet gloss column.
	Source    string
	NoGlosses bool
	// Frames, Size, Directions and FrameNoise shape the movingdigits clips.
	Frames, Size, Directions int
	FrameNoise               float64
	// ImageSize and Steps shape the robot camera frame and sensor window.
	ImageSize, Steps int
}

// builtinDataset is one `lsfuse data` subcommand.
type builtinDataset struct {
	name, short string
	// config is the experiment in configs/ that reads the dataset from
	// data/<name> ("" for none).
	config string
	// builtin says data.builtin accepts the name.
	builtin bool
	// train, test, seed are the generator's defaults.
	train, test int
	seed        int64
	// flags registers the dataset's own flags with their defaults.
	flags func(f *pflag.FlagSet, o *dataOptions)
	// generate validates the options (a usageError when they are bad) and
	// writes the dataset.
	generate func(ctx context.Context, o *dataOptions) (*data.GeneratedDataset, error)
}

// speechFlags registers the spoken-clip flags with the defaults of sc.
func speechFlags(f *pflag.FlagSet, o *dataOptions, sc data.SpeechConfig) {
	f.IntVar(&o.SampleRate, "sample-rate", sc.SampleRate, "audio sample rate in Hz")
	f.Float64Var(&o.MaxSeconds, "max-seconds", sc.MaxSeconds, "longest spoken clip in seconds (longer ones lose their end)")
}

func mnistFlag(f *pflag.FlagSet, o *dataOptions) {
	f.StringVar(&o.MNISTDir, "mnist-dir", "", "folder of the four MNIST idx .gz files (default: the GoMNIST module's)")
}

func fashionFlag(f *pflag.FlagSet, o *dataOptions) {
	f.StringVar(&o.FashionDir, "fashion-dir", "", "folder of the Fashion-MNIST idx files (default "+data.DefaultFashionMNISTDir+")")
}

func wordnetFlag(f *pflag.FlagSet, o *dataOptions) {
	f.StringVar(&o.WordNetDir, "wordnet-dir", "", "folder of WordNet 3.0's data.noun (default "+data.DefaultWordNetDir+")")
}

// validated turns a configuration error into a usage error.
func validated(err error) error {
	if err != nil {
		return usageError{err}
	}
	return nil
}

// builtinDatasets are the datasets `lsfuse data` makes, in help order.
func builtinDatasets() []builtinDataset {
	av, fa, vl := data.DefaultAVDigitsConfig(), data.DefaultFashionConfig(), data.DefaultVisionLangConfig()
	md, ro, tm := data.DefaultMovingDigitsConfig(), data.DefaultRobotConfig(), data.DefaultTriModalConfig()
	return []builtinDataset{
		{
			name: "avdigits", short: "Generate the audio-visual digits dataset (MNIST + espeak-ng speech + text)",
			builtin: true, train: av.Train, test: av.Test, seed: av.Seed,
			flags: func(f *pflag.FlagSet, o *dataOptions) { speechFlags(f, o, av.Speech); mnistFlag(f, o) },
			generate: func(ctx context.Context, o *dataOptions) (*data.GeneratedDataset, error) {
				cfg := data.DefaultAVDigitsConfig()
				cfg.Train, cfg.Test, cfg.Seed, cfg.Workers, cfg.MNISTDir = o.Train, o.Test, o.Seed, o.Workers, o.MNISTDir
				cfg.Speech.SampleRate, cfg.Speech.MaxSeconds = o.SampleRate, o.MaxSeconds
				if err := validated(cfg.Validate()); err != nil {
					return nil, err
				}
				return data.GenerateAVDigits(ctx, o.Out, cfg)
			},
		},
		{
			name: "fashion", short: "Generate the Fashion-MNIST + WordNet description dataset",
			builtin: true, train: fa.Train, test: fa.Test, seed: fa.Seed,
			flags: func(f *pflag.FlagSet, o *dataOptions) { fashionFlag(f, o); wordnetFlag(f, o) },
			generate: func(ctx context.Context, o *dataOptions) (*data.GeneratedDataset, error) {
				cfg := data.DefaultFashionConfig()
				cfg.Train, cfg.Test, cfg.Seed, cfg.Workers, cfg.Dir, cfg.WordNetDir = o.Train, o.Test, o.Seed, o.Workers, o.FashionDir, o.WordNetDir
				if err := validated(cfg.Validate()); err != nil {
					return nil, err
				}
				return data.GenerateFashion(ctx, o.Out, cfg)
			},
		},
		{
			name: "visionlang", short: "Generate the vision-language dataset (digits and garments with questions, answers and captions)",
			config: "vision_text.yaml", train: vl.Train, test: vl.Test, seed: vl.Seed,
			flags: func(f *pflag.FlagSet, o *dataOptions) {
				f.StringVar(&o.Source, "source", vl.Source, "images: mnist (digits), fashion (garments) or both")
				f.BoolVar(&o.NoGlosses, "no-glosses", false, "leave out the WordNet gloss column (then WordNet is not needed)")
				mnistFlag(f, o)
				fashionFlag(f, o)
				wordnetFlag(f, o)
			},
			generate: func(ctx context.Context, o *dataOptions) (*data.GeneratedDataset, error) {
				cfg := data.DefaultVisionLangConfig()
				cfg.Train, cfg.Test, cfg.Seed, cfg.Workers = o.Train, o.Test, o.Seed, o.Workers
				cfg.Source, cfg.Glosses = o.Source, !o.NoGlosses
				cfg.MNISTDir, cfg.FashionDir, cfg.WordNetDir = o.MNISTDir, o.FashionDir, o.WordNetDir
				if err := validated(cfg.Validate()); err != nil {
					return nil, err
				}
				return data.GenerateVisionLang(ctx, o.Out, cfg)
			},
		},
		{
			name: "movingdigits", short: "Generate the audio-video moving digits dataset (MNIST clips + espeak-ng speech)",
			config: "audio_video.yaml", train: md.Train, test: md.Test, seed: md.Seed,
			flags: func(f *pflag.FlagSet, o *dataOptions) {
				f.IntVar(&o.Frames, "frames", md.Frames, "frames per clip")
				f.IntVar(&o.Size, "size", md.Size, "frame side in pixels")
				f.IntVar(&o.Directions, "directions", md.Directions, "motion directions: 4 or 8 (with diagonals)")
				f.Float64Var(&o.FrameNoise, "frame-noise", md.FrameNoiseStd, "standard deviation of the per-frame pixel noise (0-1)")
				speechFlags(f, o, md.Speech)
				mnistFlag(f, o)
			},
			generate: func(ctx context.Context, o *dataOptions) (*data.GeneratedDataset, error) {
				cfg := data.DefaultMovingDigitsConfig()
				cfg.Train, cfg.Test, cfg.Seed, cfg.Workers, cfg.MNISTDir = o.Train, o.Test, o.Seed, o.Workers, o.MNISTDir
				cfg.Frames, cfg.Size, cfg.Directions, cfg.FrameNoiseStd = o.Frames, o.Size, o.Directions, o.FrameNoise
				cfg.Speech.SampleRate, cfg.Speech.MaxSeconds = o.SampleRate, o.MaxSeconds
				if err := validated(cfg.Validate()); err != nil {
					return nil, err
				}
				return data.GenerateMovingDigits(ctx, o.Out, cfg)
			},
		},
		{
			name: "robot", short: "Generate the simulated robot reach-to-grasp dataset (camera + IMU/joint series → 7-dof action)",
			config: "robot.yaml", train: ro.Train, test: ro.Test, seed: ro.Seed,
			flags: func(f *pflag.FlagSet, o *dataOptions) {
				f.IntVar(&o.ImageSize, "image-size", ro.ImageSize, "camera frame side in pixels")
				f.IntVar(&o.Steps, "steps", ro.Steps, "sensor time steps per window")
			},
			generate: func(ctx context.Context, o *dataOptions) (*data.GeneratedDataset, error) {
				cfg := data.DefaultRobotConfig()
				cfg.Train, cfg.Test, cfg.Seed, cfg.Workers = o.Train, o.Test, o.Seed, o.Workers
				cfg.ImageSize, cfg.Steps = o.ImageSize, o.Steps
				if err := validated(cfg.Validate()); err != nil {
					return nil, err
				}
				return data.GenerateRobot(ctx, o.Out, cfg)
			},
		},
		{
			name: "trimodal", short: "Generate the tri-modal digits dataset (MNIST + espeak-ng speech + arithmetic text, modalities sometimes missing)",
			config: "trimodal.yaml", train: tm.Train, test: tm.Test, seed: tm.Seed,
			flags: func(f *pflag.FlagSet, o *dataOptions) { speechFlags(f, o, tm.Speech); mnistFlag(f, o) },
			generate: func(ctx context.Context, o *dataOptions) (*data.GeneratedDataset, error) {
				cfg := data.DefaultTriModalConfig()
				cfg.Train, cfg.Test, cfg.Seed, cfg.Workers, cfg.MNISTDir = o.Train, o.Test, o.Seed, o.Workers, o.MNISTDir
				cfg.Speech.SampleRate, cfg.Speech.MaxSeconds = o.SampleRate, o.MaxSeconds
				if err := validated(cfg.Validate()); err != nil {
					return nil, err
				}
				return data.GenerateTriModal(ctx, o.Out, cfg)
			},
		},
	}
}

func newDataCmd(ios *IOStreams, runF func(context.Context, *dataOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Make a built-in multimodal dataset",
		Long: `Data writes a built-in dataset as a manifest directory (manifest.csv with a
split column, the files it names, metadata.json and README.md) that an
experiment reads with data.train (and data.split_column: split), or for
avdigits and fashion with data.builtin (and data.dir):

  avdigits      real MNIST digits paired by label with the digit word spoken
                by espeak-ng in noise and a text column (needs espeak-ng)
  fashion       Fashion-MNIST images paired with WordNet descriptions of the
                garment (needs dataset-fashion-mnist and wordnet-base)
  visionlang    MNIST digits and Fashion-MNIST garments with templated
                questions, answers (VQA) and captions (configs/vision_text.yaml;
                needs dataset-fashion-mnist, and wordnet-base for glosses)
  movingdigits  clips of an MNIST digit crossing the frame with the spoken
                digit (configs/audio_video.yaml; needs espeak-ng)
  robot         a simulated reach-to-grasp task: camera frame and IMU/joint
                series, 7-dof action labels (configs/robot.yaml; pure Go)
  trimodal      MNIST digit, spoken digit and an arithmetic text, modalities
                sometimes missing (configs/trimodal.yaml; needs espeak-ng)

The result is a pure function of the flags.`,
		Example: `  lsfuse data avdigits --out data/avdigits
  lsfuse data avdigits --out /tmp/av --train 700 --test 200 --sample-rate 8000
  lsfuse data fashion --out data/fashion --train 5000 --test 1000 --seed 2
  lsfuse data robot --out data/robot --image-size 32`,
		Args: cobra.NoArgs,
	}
	for _, ds := range builtinDatasets() {
		cmd.AddCommand(newDataGenCmd(ios, ds, runF))
	}
	return cmd
}

func newDataGenCmd(ios *IOStreams, ds builtinDataset, runF func(context.Context, *dataOptions) error) *cobra.Command {
	opts := &dataOptions{IO: ios, Name: ds.name}
	example := fmt.Sprintf("  lsfuse data %s --out data/%s --train 1000 --test 200", ds.name, ds.name)
	if ds.config != "" {
		example += fmt.Sprintf("\n  lsfuse data %s --out data/%s && lsfuse train --config configs/%s", ds.name, ds.name, ds.config)
	}
	cmd := &cobra.Command{
		Use:     ds.name,
		Short:   ds.short,
		Example: example,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Out == "" {
				opts.Out = filepath.Join("data", ds.name)
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
	f.StringVar(&opts.Out, "out", "", "output `dir` (must not exist or be empty; default data/"+ds.name+")")
	f.IntVar(&opts.Train, "train", ds.train, "training rows")
	f.IntVar(&opts.Test, "test", ds.test, "test rows")
	f.Int64Var(&opts.Seed, "seed", ds.seed, "seed of every random choice")
	f.IntVar(&opts.Workers, "workers", 2, "rows generated in parallel (the output does not depend on it)")
	ds.flags(f, opts)
	return cmd
}

func runData(ctx context.Context, opts *dataOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var ds *builtinDataset
	all := builtinDatasets()
	for i := range all {
		if all[i].name == opts.Name {
			ds = &all[i]
		}
	}
	if ds == nil {
		return usagef("unknown dataset %q (avdigits, fashion, visionlang, movingdigits, robot, trimodal)", opts.Name)
	}
	gen, err := ds.generate(ctx, opts)
	if err != nil {
		return err
	}
	if len(gen.Classes) > 0 {
		fmt.Fprintf(opts.IO.Out, "wrote %s (%d classes; rows per class: train %v, test %v)\n",
			gen.Manifest, len(gen.Classes), gen.Splits["train"], gen.Splits["test"])
	} else {
		fmt.Fprintf(opts.IO.Out, "wrote %s (rows: train %v, test %v)\n", gen.Manifest, gen.Splits["train"], gen.Splits["test"])
	}
	if ds.builtin {
		fmt.Fprintf(opts.IO.Out, "use it with data.builtin: %s and data.dir: %s, or data.train: %s\n", opts.Name, opts.Out, gen.Manifest)
	} else {
		fmt.Fprintf(opts.IO.Out, "use it with data.train: %s and data.split_column: split", gen.Manifest)
		if ds.config != "" {
			fmt.Fprintf(opts.IO.Out, " (configs/%s reads data/%s/manifest.csv)", ds.config, ds.name)
		}
		fmt.Fprintln(opts.IO.Out)
	}
	return nil
}
