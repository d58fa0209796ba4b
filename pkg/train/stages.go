package train

import (
	"fmt"
	"sort"
	"strings"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// stage is one resolved progressive-training stage.
type stage struct {
	index   int
	name    string
	first   int // first 0-based epoch
	cfg     StageConfig
	lrScale float64
}

// stagePlan maps epochs to stages. Without configured stages it is one
// stage, "all", that changes no parameter's frozen mark (a caller's own
// Store.Freeze calls are respected).
type stagePlan struct {
	stages []stage
}

func newStagePlan(cfgs []StageConfig) stagePlan {
	if len(cfgs) == 0 {
		return stagePlan{stages: []stage{{index: -1, name: "all", lrScale: 1}}}
	}
	var p stagePlan
	first := 0
	for i, c := range cfgs {
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("stage%d", i+1)
		}
		scale := c.LRScale
		if scale == 0 {
			scale = 1
		}
		p.stages = append(p.stages, stage{index: i, name: name, first: first, cfg: c, lrScale: scale})
		first += c.Epochs
	}
	return p
}

// at returns the stage of 0-based epoch e: the last stage whose first
// epoch is ≤ e (epochs past the stages stay in the last one).
func (p stagePlan) at(e int) stage {
	s := p.stages[0]
	for _, st := range p.stages {
		if st.first <= e {
			s = st
		}
	}
	return s
}

// configured reports whether the plan comes from Config.Stages.
func (p stagePlan) configured() bool { return p.stages[0].index >= 0 }

// apply sets the store's frozen marks for s: with Train prefixes, every
// trainable parameter outside them is frozen; then every Freeze prefix is
// frozen. Call check first: apply does not report unmatched prefixes.
func (s stage) apply(store *nn.Store) error {
	if s.index < 0 {
		return nil
	}
	store.Unfreeze("")
	if len(s.cfg.Train) > 0 {
		store.Freeze("")
		for _, p := range s.cfg.Train {
			store.Unfreeze(p)
		}
	}
	for _, p := range s.cfg.Freeze {
		store.Freeze(p)
	}
	if store.NumParams() > 0 && len(frozenFree(store)) == 0 {
		return fmt.Errorf("train.stages[%d] (%s): every parameter is frozen; train something (stages[%d].train) or freeze less", s.index, s.name, s.index)
	}
	return nil
}

// frozenFree returns the names of the trainable, unfrozen parameters.
func frozenFree(store *nn.Store) []string {
	var out []string
	for _, p := range store.Params() {
		if p.Trainable && !p.Frozen {
			out = append(out, p.Name)
		}
	}
	return out
}

// check reports a Train or Freeze prefix of s that matches no trainable
// parameter of store, without changing any frozen mark: a misspelt prefix
// must not silently train everything. The error names the stage and lists
// the top-level scopes that exist.
func (s stage) check(store *nn.Store) error {
	if s.index < 0 {
		return nil
	}
	fields := []struct {
		key      string
		prefixes []string
	}{{"train", s.cfg.Train}, {"freeze", s.cfg.Freeze}}
	for _, f := range fields {
		for _, p := range f.prefixes {
			n := 0
			for _, q := range store.Params() {
				if q.Trainable && nn.HasPathPrefix(q.Name, p) {
					n++
				}
			}
			if n == 0 {
				return fmt.Errorf("train.stages[%d] (%s).%s: prefix %q matches no trainable parameter (top-level scopes: %s)",
					s.index, s.name, f.key, p, strings.Join(topScopes(store), ", "))
			}
		}
	}
	return nil
}

// topScopes lists the first path segment of every trainable parameter.
func topScopes(store *nn.Store) []string {
	seen := map[string]bool{}
	for _, p := range store.Params() {
		if p.Trainable {
			seen[strings.SplitN(p.Name, ".", 2)[0]] = true
		}
	}
	return sortedKeys(seen)
}

// lrGroup is a set of parameter nodes sharing a learning-rate multiplier.
type lrGroup struct {
	mult  float64
	nodes G.Nodes
}

// lrGroups partitions nodes by their ModalityLR multiplier: the value of
// the longest prefix (whole dotted segments) matching the node's name, 1
// when none does. Groups come in increasing multiplier order, each in the
// nodes' order, so the update order is deterministic.
func lrGroups(nodes G.Nodes, mults map[string]float64) []lrGroup {
	prefixes := sortedKeys(mults)
	byMult := map[float64]G.Nodes{}
	for _, n := range nodes {
		m, best := 1.0, -1
		for _, p := range prefixes {
			if nn.HasPathPrefix(n.Name(), p) && len(p) > best {
				m, best = mults[p], len(p)
			}
		}
		byMult[m] = append(byMult[m], n)
	}
	out := make([]lrGroup, 0, len(byMult))
	for m, ns := range byMult {
		out = append(out, lrGroup{mult: m, nodes: ns})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].mult < out[j].mult })
	return out
}
