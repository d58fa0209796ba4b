package main

import (
	"bytes"

	"github.com/lsfuse/lsfuse/pkg/export"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/safetensors"
)

// exportONNX writes the ONNX inference graph (dynamic batch axis) to path,
// atomically, with the run's experiment in the model's metadata.
func exportONNX(net *model.Network, store *nn.Store, path string, opset int, meta map[string]string) error {
	if opset < 13 || opset > 21 {
		return usagef("--opset %d: the ONNX exporter writes opsets 13 to 21", opset)
	}
	var buf bytes.Buffer
	if err := export.ONNX(net, store, &buf, export.ONNXOptions{Opset: opset, Metadata: meta}); err != nil {
		return err
	}
	return safetensors.WriteAtomic(path, buf.Bytes())
}
