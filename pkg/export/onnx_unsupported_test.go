package export

import (
	"bytes"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

// TestONNXRefusesCaptionAndAlignedModels: the caption head and temporally
// aligned encoders have no ONNX builder, and exporting the rest of such a
// network would silently be another model: an error.
func TestONNXRefusesCaptionAndAlignedModels(t *testing.T) {
	caption, err := model.VisionLanguageModel(model.VisionLanguageOptions{Task: model.TaskCaption, ImageSize: [3]int{1, 8, 8}, TextVocabSize: 9, CaptionLen: 5})
	if err != nil {
		t.Fatal(err)
	}
	aligned, err := model.AudioVideoModel(model.AudioVideoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []model.NetworkConfig{caption, aligned} {
		net, err := model.NewNetwork(cfg)
		if err != nil {
			t.Fatal(err)
		}
		store, _ := nn.NewStore(tensor.Float32, 1)
		err = ONNX(net, store, &bytes.Buffer{}, ONNXOptions{})
		if err == nil || !strings.Contains(err.Error(), "caption heads and temporally aligned modalities") {
			t.Errorf("ONNX of a %s network (align %v): %v", cfg.Head, cfg.Align, err)
		}
	}
}
