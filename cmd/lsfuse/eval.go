package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/train"
)

// evalOptions are `lsfuse eval`'s inputs.
type evalOptions struct {
	IO         *IOStreams
	Checkpoint string
	// Data, when set, is a manifest (with the training manifest's columns)
	// evaluated whole instead of a split of the run's data.
	Data  string
	Split string
	JSON  bool
	// Batch is the evaluation batch size (0: the run's train.batch_size).
	Batch int
	// NoAblation skips the per-modality ablation passes.
	NoAblation bool
	// AttentionMaps is how many samples get attention-map PNGs (hybrid and
	// hierarchical fusion), written to AttentionDir.
	AttentionMaps int
	// AttentionDir is where the PNGs go ("": attention/ next to the
	// checkpoint).
	AttentionDir string
	// Beam is the caption beam width (0: the model's caption.beam_size).
	Beam int
	// Captions is how many generated captions the text report shows.
	Captions int
	// Device is cpu, cuda or auto ("": auto). The checkpoint's run.device
	// says where it was trained, which does not bind where it is
	// evaluated. The evaluation passes run there; caption generation and
	// attention maps run on the CPU.
	Device  string
	Sets    []string
	Environ []string
}

func newEvalCmd(ios *IOStreams, runF func(context.Context, *evalOptions) error) *cobra.Command {
	opts := &evalOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "eval --checkpoint PATH",
		Short: "Evaluate a checkpoint: metrics, confusion matrix, per-modality ablation",
		Long: `Eval rebuilds the model from the experiment embedded in a checkpoint, loads its
weights and evaluates it on a part of the run's data (--split, default test) or
on another manifest with the same columns (--data). It prints the loss,
accuracy, macro-F1 and top-5 (MSE and MAE for regression), the confusion
matrix, and the accuracy with each modality removed (the fusion's learned
missing embedding stands in when the model has one, zeros otherwise).

For a caption head it reports the teacher-forced token accuracy, generates a
caption for every sample (greedy, or beam search with --beam) and scores them
with corpus BLEU-4 against the label captions, showing a few of them.`,
		Example: `  lsfuse eval --checkpoint runs/quickstart/best.ckpt
  lsfuse eval --checkpoint runs/quickstart/best.ckpt --split val --json
  lsfuse eval --checkpoint runs/quickstart/last.ckpt --data testdata/avdigits/manifest.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Environ = environ()
			if opts.Checkpoint == "" {
				return usagef("eval: --checkpoint is required")
			}
			switch opts.Split {
			case "train", "val", "test":
			default:
				return usagef("--split %q: want train, val or test", opts.Split)
			}
			switch opts.Device {
			case "", "cpu", "cuda", "auto":
			default:
				return usagef("--device %q: want cpu, cuda or auto", opts.Device)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runEval(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Checkpoint, "checkpoint", "", "checkpoint `PATH` (a run's best.ckpt, last.ckpt or epoch-N.ckpt)")
	f.StringVar(&opts.Data, "data", "", "evaluate every row of this `MANIFEST` instead of a split of the run's data")
	f.StringVar(&opts.Split, "split", "test", "part of the run's data: train, val or test")
	f.BoolVar(&opts.JSON, "json", false, "print the results as JSON")
	f.IntVar(&opts.Batch, "batch", 0, "evaluation batch size (default: the run's train.batch_size)")
	f.BoolVar(&opts.NoAblation, "no-ablation", false, "skip the per-modality ablation passes")
	f.IntVar(&opts.AttentionMaps, "attention-maps", 4, "write fusion attention-map PNGs for this many samples (hybrid, hierarchical; 0: none)")
	f.StringVar(&opts.AttentionDir, "attention-dir", "", "folder for the attention-map PNGs (default: attention/ next to the checkpoint)")
	f.IntVar(&opts.Beam, "beam", 0, "caption heads: beam width of generation (default: the model's caption.beam_size; 1 is greedy)")
	f.IntVar(&opts.Captions, "captions", 5, "caption heads: how many generated captions to show")
	f.StringArrayVar(&opts.Sets, "set", nil, "override a run-time key of the embedded config, e.g. --set data.test=other.csv")
	f.StringVar(&opts.Device, "device", "", "cpu, cuda or auto for the evaluation passes (default auto, whatever device the checkpoint was trained on)")
	return cmd
}

// evalReport is eval's result, as printed with --json.
type evalReport struct {
	Checkpoint string        `json:"checkpoint"`
	Data       string        `json:"data"`
	Split      string        `json:"split,omitempty"`
	Head       string        `json:"head"`
	Metrics    train.Metrics `json:"metrics"`
	Classes    []string      `json:"classes,omitempty"`
	// Confusion rows are true classes, columns predictions.
	Confusion [][]int `json:"confusion,omitempty"`
	// Ablation maps each modality to the accuracy (MSE for regression)
	// with that modality removed.
	Ablation map[string]float64 `json:"ablation,omitempty"`
	// AttentionPNGs lists the attention-map images written.
	AttentionPNGs []string `json:"attention_pngs,omitempty"`
	// BLEU details metrics.bleu4 (caption heads).
	BLEU *train.BLEU `json:"bleu,omitempty"`
	// Captions are every sample's generated caption and reference, as text
	// (caption heads).
	Captions []captionText `json:"captions,omitempty"`
}

// captionText is one sample's generated caption next to its reference.
type captionText struct {
	Index     int    `json:"index"`
	Generated string `json:"generated"`
	Reference string `json:"reference"`
}

func runEval(_ context.Context, opts *evalOptions) (err error) {
	cm, err := openCheckpointModel(opts.Checkpoint, opts.Sets, opts.Environ, "map labels and tokens")
	if err != nil {
		return err
	}
	ckpt, cfg, res, net, store := cm.ckpt, cm.cfg, cm.res, cm.net, cm.store
	cfg.Run.Device = opts.Device
	if cfg.Run.Device == "" {
		cfg.Run.Device = "auto"
	}
	// train.mixed_precision is the training run's GEMM format: evaluation
	// runs float32 wherever it runs (the checkpoint holds the float32
	// master weights), so a run trained with it evaluates on the CPU too.
	cfg.Train.MixedPrecision = "off"
	dev, err := openDevice(cfg)
	if err != nil {
		return err
	}
	defer dev.closeInto(&err)
	if dev.Name != "cpu" {
		fmt.Fprintf(opts.IO.ErrOut, "device: %s\n", dev.Name)
	}
	plan := cfg.DataPlan()
	var ds data.Dataset
	rep := evalReport{Checkpoint: opts.Checkpoint, Head: res.Network.Head, Classes: ckpt.Stats.Categories}
	if opts.Data != "" {
		mc := plan.Train
		mc.Path = opts.Data
		m, err := openManifest("--data", mc, "")
		if err != nil {
			return err
		}
		full, err := m.Dataset(ckpt.Stats, data.DatasetOptions{})
		if err != nil {
			return usagef("--data: %v", err)
		}
		ds, rep.Data = full, opts.Data
	} else {
		plan.MaxEvalSamples, plan.MaxTrainSamples = 0, 0
		parts, err := openDatasets(plan, ckpt.Stats)
		if err != nil {
			return err
		}
		ds = map[string]data.Dataset{"train": parts.Train, "val": parts.Val, "test": parts.Test}[opts.Split]
		rep.Data, rep.Split = plan.String(), opts.Split
		if ds == nil {
			return usagef("--split %s: the run's data has no %s part (%s); choose another --split or give --data", opts.Split, opts.Split, parts.summary())
		}
	}
	batch := opts.Batch
	if batch <= 0 {
		batch = res.Train.BatchSize
	}
	r, err := train.Evaluate(net, store, ds, batch, train.EvalOptions{Ablate: !opts.NoAblation, Workers: res.Train.Workers, BeamSize: opts.Beam, Device: dev.Train})
	if err != nil {
		return err
	}
	rep.Metrics, rep.Confusion, rep.Ablation, rep.BLEU = r.Metrics, r.Confusion, r.PerModalityAblation, r.BLEU
	if len(r.Captions) > 0 {
		tok, err := labelTokenizer(plan, ckpt.Stats)
		if err != nil {
			return usagef("checkpoint %s: %v", opts.Checkpoint, err)
		}
		for _, c := range r.Captions {
			gen, err := tok.Decode(c.Tokens)
			if err != nil {
				return fmt.Errorf("decoding the caption of sample %d: %w", c.Index, err)
			}
			ref, err := tok.Decode(c.Reference)
			if err != nil {
				return fmt.Errorf("decoding the reference of sample %d: %w", c.Index, err)
			}
			rep.Captions = append(rep.Captions, captionText{Index: c.Index, Generated: gen, Reference: ref})
		}
	}
	if rep.AttentionPNGs, err = writeAttentionMaps(net, store, ds, opts, rep.Classes); err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printEval(opts.IO.Out, rep, opts.Captions)
}

// printEval writes the report as text, with up to captions generated
// captions.
func printEval(w io.Writer, r evalReport, captions int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "checkpoint %s\ndata %s", r.Checkpoint, r.Data)
	if r.Split != "" {
		fmt.Fprintf(&b, " [%s]", r.Split)
	}
	fmt.Fprintf(&b, ", %d samples\n%s\n", r.Metrics.N, metricLine(r.Head, r.Metrics))
	if s := r.BLEU; s != nil {
		p := s.Precisions
		fmt.Fprintf(&b, "BLEU-4 n-gram precisions %.3f %.3f %.3f %.3f, brevity penalty %.3f (%d generated, %d reference tokens)\n",
			p[0], p[1], p[2], p[3], s.BrevityPenalty, s.CandidateLen, s.ReferenceLen)
	}
	if n := min(captions, len(r.Captions)); n > 0 {
		fmt.Fprintf(&b, "\ncaptions (%d of %d)\n", n, len(r.Captions))
		for _, c := range r.Captions[:n] {
			fmt.Fprintf(&b, "  sample %d\n    generated: %s\n    reference: %s\n", c.Index, c.Generated, c.Reference)
		}
	}
	if len(r.Confusion) > 0 {
		b.WriteString("\nconfusion matrix (rows: true class, columns: predicted)\n")
		names := r.Classes
		if len(names) != len(r.Confusion) {
			names = make([]string, len(r.Confusion))
			for i := range names {
				names[i] = fmt.Sprint(i)
			}
		}
		width := 4
		for _, n := range names {
			width = max(width, len(n)+1)
		}
		fmt.Fprintf(&b, "%*s", width, "")
		for _, n := range names {
			fmt.Fprintf(&b, "%*s", width, n)
		}
		b.WriteByte('\n')
		for i, row := range r.Confusion {
			fmt.Fprintf(&b, "%*s", width, names[i])
			for _, v := range row {
				fmt.Fprintf(&b, "%*d", width, v)
			}
			b.WriteByte('\n')
		}
	}
	if len(r.Ablation) > 0 {
		what := "accuracy"
		if r.Head == model.HeadRegression {
			what = "mse"
		}
		fmt.Fprintf(&b, "\nablation (%s with one modality removed)\n", what)
		mods := make([]string, 0, len(r.Ablation))
		for m := range r.Ablation {
			mods = append(mods, m)
		}
		sort.Strings(mods)
		for _, m := range mods {
			fmt.Fprintf(&b, "  without %-12s %.4f\n", m, r.Ablation[m])
		}
	}
	if len(r.AttentionPNGs) > 0 {
		fmt.Fprintf(&b, "\nattention maps: %d PNGs in %s\n", len(r.AttentionPNGs), filepath.Dir(r.AttentionPNGs[0]))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeAttentionMaps draws the fusion attention maps of the first
// opts.AttentionMaps samples of ds as PNGs and returns their paths.
func writeAttentionMaps(net *model.Network, store *nn.Store, ds data.Dataset, opts *evalOptions, classes []string) ([]string, error) {
	if opts.AttentionMaps <= 0 {
		return nil, nil
	}
	samples, err := train.AttentionMaps(net, store, ds, opts.AttentionMaps)
	if err != nil || len(samples) == 0 {
		return nil, err
	}
	dir := opts.AttentionDir
	if dir == "" {
		dir = filepath.Join(filepath.Dir(opts.Checkpoint), "attention")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("attention maps: %w", err)
	}
	className := func(c int) string {
		if c >= 0 && c < len(classes) {
			return classes[c]
		}
		return fmt.Sprint(c)
	}
	var paths []string
	for _, s := range samples {
		for _, m := range s.Maps {
			title := fmt.Sprintf("sample %d, %s", s.Index, m.Name)
			if s.Label >= 0 {
				title += fmt.Sprintf(" (label %s, predicted %s)", className(s.Label), className(s.Pred))
			}
			path := filepath.Join(dir, fmt.Sprintf("sample-%d-%s.png", s.Index, m.Name))
			if err := train.WriteAttentionPNG(path, title, m); err != nil {
				return nil, fmt.Errorf("attention maps: %w", err)
			}
			paths = append(paths, path)
		}
	}
	return paths, nil
}
