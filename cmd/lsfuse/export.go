package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lsfuse/lsfuse/pkg/export"
)

// exportOptions are `lsfuse export`'s inputs.
type exportOptions struct {
	IO         *IOStreams
	Checkpoint string
	// Format is safetensors or onnx ("" takes the run's export.format).
	Format string
	Out    string
	// Opset is the ONNX opset (0 takes the run's export.opset).
	Opset int
}

func newExportCmd(ios *IOStreams, runF func(context.Context, *exportOptions) error) *cobra.Command {
	opts := &exportOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "export --checkpoint PATH --out FILE",
		Short: "Export a checkpoint's weights (safetensors) or inference graph (ONNX)",
		Long: `Export writes a trained model for other tools: safetensors holds the weights
alone, under the parameter names lsfuse uses (PyTorch layouts); onnx holds the
inference graph with the spiking and liquid recurrences unrolled.`,
		Example: `  lsfuse export --checkpoint runs/quickstart/best.ckpt --format safetensors --out quickstart.safetensors
  lsfuse export --checkpoint runs/quickstart/best.ckpt --format onnx --out quickstart.onnx`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Checkpoint == "" || opts.Out == "" {
				return usagef("export: --checkpoint and --out are required")
			}
			switch opts.Format {
			case "", "safetensors", "onnx":
			default:
				return usagef("--format %q: want safetensors or onnx", opts.Format)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runExport(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Checkpoint, "checkpoint", "", "checkpoint `PATH` to export")
	f.StringVar(&opts.Format, "format", "", "safetensors or onnx (default: the run's export.format)")
	f.StringVar(&opts.Out, "out", "", "output `FILE`")
	f.IntVar(&opts.Opset, "opset", 0, "ONNX opset, 13 to 21 (default: the run's export.opset)")
	return cmd
}

func runExport(_ context.Context, opts *exportOptions) error {
	cm, err := openCheckpointModel(opts.Checkpoint, nil, nil, "")
	if err != nil {
		return err
	}
	ckpt, cfg, net, store := cm.ckpt, cm.cfg, cm.net, cm.store
	format, opset := cfg.Export.Format, cfg.Export.Opset
	if opts.Format != "" {
		format = opts.Format
	}
	if opts.Opset != 0 {
		opset = opts.Opset
	}
	meta := map[string]string{metaConfig: string(ckpt.Config)}
	switch format {
	case "safetensors":
		err = export.Safetensors(store, opts.Out, meta)
	case "onnx":
		err = exportONNX(net, store, opts.Out, opset, meta)
	}
	if err != nil {
		return err
	}
	st, err := os.Stat(opts.Out)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(opts.IO.Out, "wrote %s (%s, %d bytes)\n", opts.Out, format, st.Size())
	return err
}
