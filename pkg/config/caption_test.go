package config

import (
	"strings"
	"testing"
)

// captionYAML is a captioning experiment: images, caption token labels.
const captionYAML = `
model:
  head: caption
  fusion_strategy: early
  output_dim: 40
  caption: {embed_dim: 16, units: 32, beam_size: 3}
  modalities:
    vision:
      preprocessing: {in_channels: 1, height: 8, width: 8}
data:
  train: x.csv
  label_kind: tokens
  label_text: {tokenizer: word, length: 9, add_bos: true, add_eos: true}
  inputs:
    vision: {column: image, channels: 1, height: 8, width: 8}
`

func loadDoc(yaml string, sets ...string) (*Config, error) {
	return Load(LoadOptions{Docs: []Doc{{Name: "test.yaml", Data: []byte(yaml)}}, Sets: sets})
}

// TestCaptionConfigResolves: the caption keys reach model.NetworkConfig,
// token_len comes from data.label_text.length, and a gpt2 label tokenizer
// sets <bos>/<eos> to <|endoftext|>.
func TestCaptionConfigResolves(t *testing.T) {
	cfg, err := loadDoc(captionYAML)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := cfg.NetworkConfig()
	if err != nil {
		t.Fatal(err)
	}
	cc := nc.Caption
	if nc.Head != "caption" || nc.TokenLen != 9 || cc.EmbedDim != 16 || cc.Units != 32 || cc.BeamSize != 3 || cc.Mode != "default" || cc.BOS != 0 || cc.EOS != 0 {
		t.Errorf("network config: head %s, token_len %d, caption %+v", nc.Head, nc.TokenLen, cc)
	}
	cfg, err = loadDoc(captionYAML, "data.label_text.tokenizer=gpt2", "model.ignore_index=-1", "model.output_dim=50257")
	if err != nil {
		t.Fatal(err)
	}
	if nc, _ = cfg.NetworkConfig(); nc.Caption.BOS != 50256 || nc.Caption.EOS != 50256 {
		t.Errorf("gpt2 captions: bos/eos %d/%d, want 50256", nc.Caption.BOS, nc.Caption.EOS)
	}
	cfg, err = loadDoc(captionYAML, "model.temporal_align=[vision]")
	if err != nil {
		t.Fatal(err)
	}
	if nc, _ = cfg.NetworkConfig(); len(nc.Align) != 1 || nc.Align[0] != "vision" {
		t.Errorf("temporal_align: %v", nc.Align)
	}
}

func TestCaptionConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{[]string{"data.label_kind=category"}, `data.label_kind: is "category" but the caption head trains on caption token labels`},
		{[]string{"data.label_text.add_eos=false"}, "data.label_text: the caption head needs captions wrapped in <bos> … <eos>"},
		{[]string{"model.fusion_strategy=late"}, "model.fusion_strategy: late fusion forms no single fused representation"},
		{[]string{"data.label_text.tokenizer=gpt2", "model.ignore_index=50256"}, "model.ignore_index: is 50256, gpt2's <|endoftext|>"},
		{[]string{"model.caption.beam_size=0"}, "model.caption.beam_size: must be at least 1"},
		{[]string{"model.caption.mode=fancy"}, `model.caption.mode: unknown value "fancy"`},
		{[]string{"model.head=captions"}, `did you mean "caption"?`},
		{[]string{"model.temporal_align=[audio]"}, `model.temporal_align[0]: no modality "audio" under model.modalities (vision)`},
	} {
		_, err := loadDoc(captionYAML, tc.sets...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.sets, err, tc.want)
		}
	}
	twoMods := strings.Replace(captionYAML, "  modalities:\n", "  modalities:\n    audio: {num_spike_steps: 4}\n    video: {num_spike_steps: 6}\n", 1)
	_, err := loadDoc(twoMods, "model.temporal_align=[audio, video]")
	if err == nil || !strings.Contains(err.Error(), "model.temporal_align[1]: aligned modalities share one length, num_spike_steps, but audio has 4 and video has 6") {
		t.Errorf("unequal steps: %v", err)
	}
}
