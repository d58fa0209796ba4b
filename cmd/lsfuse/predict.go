package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/model"
)

// predictOptions are `lsfuse predict`'s inputs.
type predictOptions struct {
	IO         *IOStreams
	Checkpoint string
	// Images are the image files to caption.
	Images []string
	// Modality names the image modality when the model has several.
	Modality string
	// Beam and MaxLen override the model's caption.beam_size and max_len
	// (0 keeps them).
	Beam, MaxLen int
	JSON         bool
	Sets         []string
	Environ      []string
}

func newPredictCmd(ios *IOStreams, runF func(context.Context, *predictOptions) error) *cobra.Command {
	opts := &predictOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "predict --checkpoint PATH --image FILE...",
		Short: "Generate captions for images with a captioning checkpoint",
		Long: `Predict rebuilds a caption model from the experiment embedded in a checkpoint,
decodes each image exactly as the run decoded its training images (size,
channels, normalisation from the run's statistics) and prints the caption the
model generates for it: greedy decoding, or beam search with --beam. Token ids
become words through the run's label vocabulary (or GPT-2's tokenizer).

Other modalities of the model are absent: a model trained with missing
embeddings (model.missing_embedding or modality_dropout) uses its learned
stand-ins; any other model must read images alone.`,
		Example: `  lsfuse predict --checkpoint runs/caption/best.ckpt --image shirt.png
  lsfuse predict --checkpoint runs/caption/best.ckpt --image a.png --image b.png --beam 4
  lsfuse predict --checkpoint runs/caption/best.ckpt --image a.png,b.png --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Environ = environ()
			if opts.Checkpoint == "" {
				return usagef("predict: --checkpoint is required")
			}
			if len(opts.Images) == 0 {
				return usagef("predict: give at least one --image FILE")
			}
			if opts.Beam < 0 || opts.MaxLen < 0 {
				return usagef("predict: --beam and --max-len must not be negative")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runPredict(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Checkpoint, "checkpoint", "", "checkpoint `PATH` of a caption model (a run's best.ckpt or last.ckpt)")
	f.StringSliceVar(&opts.Images, "image", nil, "image `FILE` to caption (repeat, or separate with commas)")
	f.StringVar(&opts.Modality, "modality", "", "the model's image modality (needed only when it has several)")
	f.IntVar(&opts.Beam, "beam", 0, "beam width (default: the model's caption.beam_size; 1 is greedy)")
	f.IntVar(&opts.MaxLen, "max-len", 0, "most tokens to generate (default: the model's caption.max_len)")
	f.BoolVar(&opts.JSON, "json", false, "print the captions as JSON")
	f.StringArrayVar(&opts.Sets, "set", nil, "override a run-time key of the embedded config")
	return cmd
}

// prediction is one image's caption, as printed with --json.
type prediction struct {
	Image   string  `json:"image"`
	Caption string  `json:"caption"`
	Tokens  []int   `json:"tokens"`
	LogProb float64 `json:"log_prob"`
	// Ended is false when generation stopped at max_len without <eos>.
	Ended bool `json:"ended"`
}

func runPredict(_ context.Context, opts *predictOptions) error {
	cm, err := openCheckpointModel(opts.Checkpoint, opts.Sets, opts.Environ, "decode images and tokens")
	if err != nil {
		return err
	}
	ckpt, cfg, res, net, store := cm.ckpt, cm.cfg, cm.res, cm.net, cm.store
	if res.Network.Head != model.HeadCaption {
		return usagef("checkpoint %s has a %s head: predict generates captions and needs a model with model.head caption", opts.Checkpoint, res.Network.Head)
	}
	plan := cfg.DataPlan()
	name, column, err := imageInput(plan, opts.Modality)
	if err != nil {
		return err
	}
	tok, err := labelTokenizer(plan, ckpt.Stats)
	if err != nil {
		return usagef("checkpoint %s: %v", opts.Checkpoint, err)
	}
	images, err := imageSamples(plan, column, ckpt.Stats, opts.Images)
	if err != nil {
		return err
	}
	gens := map[int]*model.Generator{}
	defer func() {
		for _, g := range gens {
			g.Close()
		}
	}()
	var preds []prediction
	batch := max(res.Train.BatchSize, 1)
	for lo := 0; lo < len(opts.Images); lo += batch {
		hi := min(lo+batch, len(opts.Images))
		b, err := data.Collate(images[lo:hi])
		if err != nil {
			return err
		}
		n := hi - lo
		gen, ok := gens[n]
		if !ok {
			if gen, err = model.NewGenerator(net, store, n); err != nil {
				return err
			}
			gens[n] = gen
		}
		x := b.Inputs[name]
		feed := model.Feed{Inputs: map[string]*tensor.Dense{name: denseFloat(res.Dtype, x.Shape, x.Data)}}
		caps, err := gen.Generate(feed, model.GenerateOptions{BeamSize: opts.Beam, MaxLen: opts.MaxLen})
		if err != nil {
			if strings.Contains(err.Error(), "cannot run without it") {
				return usagef("predict reads only images (modality %q), but this model needs its other modalities too: %v", name, err)
			}
			return err
		}
		for i, c := range caps {
			text, err := tok.Decode(c.Tokens)
			if err != nil {
				return fmt.Errorf("decoding the caption of %s: %w", opts.Images[lo+i], err)
			}
			preds = append(preds, prediction{Image: opts.Images[lo+i], Caption: text, Tokens: c.Tokens, LogProb: c.LogProb, Ended: c.Ended})
		}
	}
	return printPredictions(opts.IO.Out, preds, opts.JSON)
}

// imageInput finds the model modality fed by an image data input (the one
// named by want, if set) and its manifest column.
func imageInput(plan config.DataPlan, want string) (name, column string, err error) {
	var names []string
	cols := map[string]string{}
	for col, spec := range plan.Train.Columns {
		if spec.Kind == data.KindImage {
			names = append(names, spec.Modality)
			cols[spec.Modality] = col
		}
	}
	sort.Strings(names)
	switch {
	case want != "":
		if _, ok := cols[want]; !ok {
			return "", "", usagef("--modality %s: not an image input of this model (image inputs: %s)", want, strings.Join(names, ", "))
		}
		return want, cols[want], nil
	case len(names) == 0:
		return "", "", usagef("predict captions images, but this model has no image input (data.inputs.<name>.kind image)")
	case len(names) > 1:
		return "", "", usagef("the model has several image inputs (%s): choose one with --modality", strings.Join(names, ", "))
	}
	return names[0], cols[names[0]], nil
}

// imageSamples decodes paths with the run's settings for column (size,
// channels, normalisation by the run's statistics): a one-column CSV
// manifest of absolute paths in a temporary folder, opened like the run's
// own manifest. A file that does not decode is an error naming it.
func imageSamples(plan config.DataPlan, column string, stats *data.Stats, paths []string) ([]data.Sample, error) {
	dir, err := os.MkdirTemp("", "lsfuse-predict-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write([]string{column})
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, usagef("--image %s: %v", p, err)
		}
		if st, err := os.Stat(abs); err != nil || st.IsDir() {
			return nil, usagef("--image %s: not a readable file", p)
		}
		_ = w.Write([]string{abs})
	}
	w.Flush()
	mc := plan.Train
	mc.Path, mc.Format = filepath.Join(dir, "images.csv"), "csv"
	mc.Columns = map[string]data.ColumnSpec{column: plan.Train.Columns[column]}
	mc.LabelColumn, mc.LabelKind, mc.LabelClasses, mc.NormalizeLabel = "", "", nil, false
	if err := os.WriteFile(mc.Path, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	m, err := data.OpenManifest(mc)
	if err != nil {
		return nil, usagef("--image: %v", err)
	}
	ds, err := m.Dataset(stats, data.DatasetOptions{})
	if err != nil {
		return nil, usagef("--image: %v", err)
	}
	out := make([]data.Sample, len(paths))
	for i, p := range paths {
		if out[i], err = ds.Get(i); err != nil {
			return nil, usagef("--image %s: %v", p, err)
		}
	}
	return out, nil
}

// denseFloat copies float32 values into a tensor of dtype dt.
func denseFloat(dt tensor.Dtype, shape []int, v []float32) *tensor.Dense {
	if dt == tensor.Float64 {
		d := make([]float64, len(v))
		for i, x := range v {
			d[i] = float64(x)
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), v...)))
}

// printPredictions writes one "image<TAB>caption" line per image, or JSON.
func printPredictions(w io.Writer, preds []prediction, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(preds)
	}
	var b strings.Builder
	for _, p := range preds {
		fmt.Fprintf(&b, "%s\t%s", p.Image, p.Caption)
		if !p.Ended {
			b.WriteString("\t(no <eos> within max_len)")
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}
