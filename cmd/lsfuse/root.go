package main

import (
	"strings"

	"github.com/spf13/cobra"
)

func newRootCmd(ios *IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "lsfuse",
		Short: "Train liquid-spiking multimodal fusion networks",
		Long: `lsfuse trains, evaluates and exports liquid-spiking multimodal fusion networks:
each modality goes preprocessor → leaky integrate-and-fire spiking encoder → CfC
liquid cell, and cross-modal attention fuses them (early, late, hybrid,
hierarchical).

Exit codes: 0 success, 1 the run failed, 2 bad usage or bad configuration.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newVersionCmd(), newExperimentCmd(ios, nil), newTrainCmd(ios, nil), newEvalCmd(ios, nil), newConfigCmd(ios),
		newDataCmd(ios, nil), newBenchCmd(ios, nil), newExportCmd(ios, nil), newPredictCmd(ios, nil))
	return root
}

// isCobraUsage reports errors Cobra raises for unknown commands and bad
// arguments, which it does not type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
