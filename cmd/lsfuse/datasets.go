package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/data"
)

// datasets are the parts of an experiment's data, decoded with the
// training split's statistics.
type datasets struct {
	Train, Val, Test data.Dataset
	// Stats are the training split's statistics (categories, vocabularies,
	// normalisation moments).
	Stats *data.Stats
	// Outputs is what the data says model.output_dim is: the number of
	// classes, the length of vector labels, or the size of the token labels'
	// vocabulary (0 when unknown).
	Outputs int
	// Vocab maps each text modality that builds its vocabulary from the
	// data to the vocabulary size.
	Vocab map[string]int
}

// summary is a one-line description of the parts' sizes.
func (d *datasets) summary() string {
	n := func(ds data.Dataset) int {
		if ds == nil {
			return 0
		}
		return ds.Len()
	}
	return fmt.Sprintf("%d train, %d validation, %d test samples", n(d.Train), n(d.Val), n(d.Test))
}

// openDatasets opens the manifests of plan and cuts the parts: rows of
// the training manifest go to train/val/test by the split column (or all
// to train), separate val/test manifests give those parts, and
// val_fraction / test_fraction carve a stratified part off the training
// rows when nothing else gives one. With stats nil the statistics are fitted
// on the training rows; otherwise (evaluation, resumption) the given ones
// are applied. A missing manifest is a usage error naming the key.
func openDatasets(plan config.DataPlan, stats *data.Stats) (*datasets, error) {
	if plan.Train.Path == "" {
		return nil, usagef("data.train: no training manifest: set data.train to a CSV or JSONL manifest, or data.builtin to avdigits or fashion (made by `lsfuse data`)")
	}
	train, err := openManifest("data.train", plan.Train, plan.Builtin)
	if err != nil {
		return nil, err
	}
	n := train.Len()
	split := data.Split{Train: seq(n)}
	if plan.SplitColumn != "" {
		names, err := train.Column(plan.SplitColumn)
		if err != nil {
			return nil, usagef("data.split_column: %v", err)
		}
		if split, err = data.SplitByName(names); err != nil {
			return nil, usagef("data.split_column %q of %s: %v", plan.SplitColumn, plan.Train.Path, err)
		}
	}
	valFrac, testFrac := plan.ValFraction, plan.TestFraction
	if len(split.Val) > 0 || plan.Val.Path != "" {
		valFrac = 0
	}
	if len(split.Test) > 0 || plan.Test.Path != "" {
		testFrac = 0
	}
	if valFrac > 0 || testFrac > 0 {
		if split, err = carve(train, plan, split, valFrac, testFrac); err != nil {
			return nil, err
		}
	}
	if len(split.Train) == 0 {
		return nil, usagef("data: %s has no training rows (split column %q)", plan.Train.Path, plan.SplitColumn)
	}
	if stats == nil {
		if stats, err = train.FitStats(split.Train); err != nil {
			return nil, fmt.Errorf("fitting the training statistics: %w", err)
		}
	}
	opts := data.DatasetOptions{Augment: plan.Augment, Seed: uint64(plan.Seed)}
	whole, err := train.Dataset(stats, opts)
	if err != nil {
		return nil, usagef("data: %v", err)
	}
	evalWhole, err := train.Dataset(stats, data.DatasetOptions{})
	if err != nil {
		return nil, usagef("data: %v", err)
	}
	d := &datasets{Stats: stats, Vocab: map[string]int{}}
	if d.Train, err = part(whole, split.Train, plan.MaxTrainSamples); err != nil {
		return nil, err
	}
	if d.Val, err = part(evalWhole, split.Val, plan.MaxEvalSamples); err != nil {
		return nil, err
	}
	if d.Test, err = part(evalWhole, split.Test, plan.MaxEvalSamples); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		key string
		cfg data.ManifestConfig
		dst *data.Dataset
	}{{"data.val", plan.Val, &d.Val}, {"data.test", plan.Test, &d.Test}} {
		if p.cfg.Path == "" {
			continue
		}
		m, err := openManifest(p.key, p.cfg, "")
		if err != nil {
			return nil, err
		}
		ds, err := m.Dataset(stats, data.DatasetOptions{})
		if err != nil {
			return nil, usagef("%s: %v", p.key, err)
		}
		if *p.dst, err = part(ds, seq(m.Len()), plan.MaxEvalSamples); err != nil {
			return nil, err
		}
	}
	switch {
	case len(stats.Categories) > 0:
		d.Outputs = len(stats.Categories)
	case stats.Label != nil:
		d.Outputs = len(stats.Label.Mean)
	case plan.Train.LabelKind == data.LabelTokens:
		if tok, err := labelTokenizer(plan, stats); err == nil {
			d.Outputs = tok.VocabSize()
		}
	}
	for col, spec := range plan.Train.Columns {
		if spec.Kind == data.KindText && spec.Text.NeedsVocab() {
			if cs, ok := stats.Columns[col]; ok && cs.Vocab != nil {
				d.Vocab[spec.Modality] = cs.Vocab.VocabSize()
			}
		}
	}
	return d, nil
}

// labelTokenizer is the tokenizer of the run's token labels: the label
// column's vocabulary built on the training split (word, char), or GPT-2's.
func labelTokenizer(plan config.DataPlan, stats *data.Stats) (data.Tokenizer, error) {
	if !plan.Train.LabelText.NeedsVocab() {
		return data.NewGPT2Tokenizer()
	}
	if stats != nil {
		if cs, ok := stats.Columns[plan.Train.LabelColumn]; ok && cs.Vocab != nil {
			return cs.Vocab, nil
		}
	}
	return nil, fmt.Errorf("the data statistics hold no vocabulary of the label column %q", plan.Train.LabelColumn)
}

// openManifest opens one manifest, turning a missing file into a usage
// error that names the key (and, for a built-in dataset, the command that
// makes it).
func openManifest(key string, cfg data.ManifestConfig, builtin string) (*data.Manifest, error) {
	if _, err := os.Stat(cfg.Path); errors.Is(err, fs.ErrNotExist) {
		if builtin != "" {
			return nil, usagef("%s: %s does not exist: make the %s dataset first with `lsfuse data %s --out <dir>` (and set data.dir to it)", key, cfg.Path, builtin, builtin)
		}
		return nil, usagef("%s: manifest %s does not exist", key, cfg.Path)
	}
	m, err := data.OpenManifest(cfg)
	if err != nil {
		var ie *data.InputError
		if errors.As(err, &ie) {
			return nil, usagef("%s: %v", key, err)
		}
		return nil, usagef("%s: %s: %v", key, cfg.Path, err)
	}
	return m, nil
}

// carve moves a stratified share of the training rows to val and test.
func carve(m *data.Manifest, plan config.DataPlan, split data.Split, valFrac, testFrac float64) (data.Split, error) {
	classes := make([]int, len(split.Train))
	if plan.Train.LabelColumn != "" && (plan.Train.LabelKind == "" || plan.Train.LabelKind == data.LabelCategory) {
		labels, err := m.Column(plan.Train.LabelColumn)
		if err != nil {
			return split, usagef("data.label_column: %v", err)
		}
		ids := map[string]int{}
		for i, r := range split.Train {
			id, ok := ids[labels[r]]
			if !ok {
				id = len(ids)
				ids[labels[r]] = id
			}
			classes[i] = id
		}
	}
	s, err := data.SplitStratified(classes, data.SplitRatios{Train: 1 - valFrac - testFrac, Val: valFrac, Test: testFrac}, plan.Seed)
	if err != nil {
		return split, usagef("data.val_fraction: %v", err)
	}
	pick := func(idx []int) []int {
		out := make([]int, len(idx))
		for i, j := range idx {
			out[i] = split.Train[j]
		}
		return out
	}
	out := data.Split{Train: pick(s.Train), Val: split.Val, Test: split.Test}
	if valFrac > 0 {
		out.Val = pick(s.Val)
	}
	if testFrac > 0 {
		out.Test = pick(s.Test)
	}
	return out, nil
}

// part is the subset idx of ds, capped at limit samples (0: all); nil for
// an empty part.
func part(ds data.Dataset, idx []int, limit int) (data.Dataset, error) {
	if len(idx) == 0 {
		return nil, nil
	}
	if limit > 0 && len(idx) > limit {
		idx = idx[:limit]
	}
	return data.NewSubset(ds, idx)
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
