package experiment

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Row groups of a table.
const (
	// GroupSingle rows train one modality alone.
	GroupSingle = "single"
	// GroupFusion rows train every modality with one fusion strategy and the
	// experiment's modality-dropout rates.
	GroupFusion = "fusion"
	// GroupDropout is the hybrid row trained without modality dropout, the
	// "off" half of the modality-dropout pair (the "on" half is the hybrid
	// row of GroupFusion).
	GroupDropout = "dropout"
)

// Strategies are the fusion strategies of the table, in the order of the
// seed's comparison table.
var Strategies = []string{"early", "late", "hybrid", "hierarchical"}

// SeedClaim is the order the seed's README claims, best first.
var SeedClaim = []string{"hierarchical", "hybrid", "late", "early"}

// Baseline is the variant that speed and memory are relative to.
const Baseline = "early"

// NoDropout is the name of the hybrid variant without modality dropout.
const NoDropout = "hybrid-no-dropout"

// Variant is one row of the table: a change of the shared experiment,
// trained once per seed.
type Variant struct {
	// Name identifies the variant in run directory names and results:
	// the modality name for single rows, the strategy for fusion rows,
	// NoDropout for the pair's "off" half.
	Name string `json:"name"`
	// Label is how the row reads in the table.
	Label string `json:"label"`
	// Group is GroupSingle, GroupFusion or GroupDropout.
	Group string `json:"group"`
	// Modalities are the modalities trained (all of them for fused rows),
	// in table order.
	Modalities []string `json:"modalities"`
	// Strategy is the fusion strategy (model.fusion_strategy). Single rows
	// use early fusion: with one modality it is a projection of its
	// feature, no attention.
	Strategy string `json:"strategy"`
	// Sets are `--set key=value` overrides that make the variant, applied
	// after the shared ones.
	Sets []string `json:"sets,omitempty"`
	// Ablate asks eval for the accuracy with each modality removed (fused
	// rows only).
	Ablate bool `json:"ablate"`
}

// Fused reports whether the variant trains more than one modality.
func (v Variant) Fused() bool { return v.Group != GroupSingle }

// TrainArgs are the `lsfuse train` arguments that make the variant
// (after the shared -c/--set arguments, so they win).
func (v Variant) TrainArgs() []string {
	args := []string{"--fusion-strategy", v.Strategy}
	if !v.Fused() {
		args = append(args, "--modalities", joinComma(v.Modalities))
	}
	for _, s := range v.Sets {
		args = append(args, "--set", s)
	}
	return args
}

func joinComma(xs []string) string { return strings.Join(xs, ",") }

// OrderModalities returns the names in table order: vision, audio and
// text first (the avdigits order), then any others sorted.
func OrderModalities(names []string) []string {
	rank := map[string]int{"vision": 0, "audio": 1, "text": 2}
	out := slices.Clone(names)
	sort.SliceStable(out, func(i, j int) bool {
		ri, iok := rank[out[i]]
		rj, jok := rank[out[j]]
		switch {
		case iok && jok:
			return ri < rj
		case iok != jok:
			return iok
		}
		return out[i] < out[j]
	})
	return out
}

// Variants returns the table's rows for an experiment with these
// modalities and modality-dropout rates (model.modality_dropout; modalities
// without a rate have none): each modality alone (without modality
// dropout, which would only blank its sole input), each strategy of
// Strategies with every modality and the configured rates, and hybrid with
// every rate set to 0 (and no missing embedding). It needs at least two
// modalities and at least one positive rate, so that the dropout pair
// compares something.
func Variants(modalities []string, dropout map[string]float64) ([]Variant, error) {
	if len(modalities) < 2 {
		return nil, fmt.Errorf("the table compares fusion of at least two modalities; the experiment has %d (%s)", len(modalities), joinComma(modalities))
	}
	mods := OrderModalities(modalities)
	var rated []string
	for _, m := range mods {
		r, ok := dropout[m]
		if ok && r > 0 {
			rated = append(rated, m)
		}
	}
	for m := range dropout {
		if !slices.Contains(mods, m) {
			return nil, fmt.Errorf("model.modality_dropout.%s: no such modality (%s)", m, joinComma(mods))
		}
	}
	if len(rated) == 0 {
		return nil, fmt.Errorf("the modality-dropout pair needs model.modality_dropout rates in the experiment (e.g. model.modality_dropout.%s: 0.3); it has none", mods[0])
	}
	var vs []Variant
	for _, m := range mods {
		v := Variant{Name: m, Label: m + " alone", Group: GroupSingle, Modalities: []string{m}, Strategy: Baseline}
		if r := dropout[m]; r > 0 {
			v.Sets = append(v.Sets, "model.modality_dropout."+m+"=0")
		}
		vs = append(vs, v)
	}
	for _, s := range Strategies {
		label := s
		if s == "hybrid" {
			label = "hybrid (modality dropout on)"
		}
		vs = append(vs, Variant{Name: s, Label: label, Group: GroupFusion, Modalities: mods, Strategy: s, Ablate: true})
	}
	off := Variant{Name: NoDropout, Label: "hybrid, modality dropout off", Group: GroupDropout, Modalities: mods, Strategy: "hybrid", Ablate: true}
	for _, m := range rated {
		off.Sets = append(off.Sets, "model.modality_dropout."+m+"=0")
	}
	off.Sets = append(off.Sets, "model.missing_embedding=false")
	vs = append(vs, off)
	return vs, nil
}

// DropoutSummary describes the rates for the table's header, e.g.
// "vision 0.1, audio 0.1, text 0.3".
func DropoutSummary(modalities []string, dropout map[string]float64) string {
	out := ""
	for _, m := range OrderModalities(modalities) {
		r, ok := dropout[m]
		if !ok || r <= 0 {
			continue
		}
		if out != "" {
			out += ", "
		}
		out += m + " " + strconv.FormatFloat(r, 'g', -1, 64)
	}
	return out
}
