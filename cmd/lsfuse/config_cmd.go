package main

import (
	"github.com/spf13/cobra"
)

func newConfigCmd(ios *IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect experiment configurations",
		Example: `  lsfuse config print --config configs/quickstart.yaml
  lsfuse config print -c configs/quickstart.yaml --set train.lr=3e-4 --epochs 3`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newConfigPrintCmd(ios, nil))
	return cmd
}

// configPrintOptions are `lsfuse config print`'s inputs.
type configPrintOptions struct {
	IO     *IOStreams
	Config configFlags
}

func newConfigPrintCmd(ios *IOStreams, runF func(*configPrintOptions) error) *cobra.Command {
	opts := &configPrintOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "print",
		Short: "Print the resolved experiment as YAML",
		Long: `Print loads the experiment exactly as train would (defaults < --config files <
LSFUSE_* environment < --set < shorthand flags), fills in every default, checks
it, and prints the result as YAML: every key with the value a run would use.
Sizes only the data can tell (model.output_dim, the vocab_size of a text
modality whose vocabulary is built from the data) show as 0 until a run fills
them in; the run's config.yaml holds the final values.`,
		Example: `  lsfuse config print --config configs/quickstart.yaml
  lsfuse config print -c configs/quickstart.yaml -c my-overrides.yaml --set train.lr=3e-4
  LSFUSE_TRAIN_EPOCHS=3 lsfuse config print -c configs/quickstart.yaml --fusion-strategy late`,
		Args: func(cmd *cobra.Command, args []string) error { return opts.Config.positional(cmd, args) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Config.Environ = environ()
			if runF != nil {
				return runF(opts)
			}
			return runConfigPrint(opts)
		},
	}
	opts.Config.register(cmd.Flags(), true)
	return cmd
}

func runConfigPrint(opts *configPrintOptions) error {
	cfg, err := opts.Config.load()
	if err != nil {
		return err
	}
	b, err := cfg.Marshal(false)
	if err != nil {
		return err
	}
	_, err = opts.IO.Out.Write(b)
	return err
}
