package experiment

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Report is everything the markdown table shows.
type Report struct {
	// Title, when set, is written as a level-1 heading.
	Title string
	// Command is the command line that reproduces the table.
	Command string
	// Settings are lines describing the experiment (seeds, epochs, data
	// sizes, dropout rates), each rendered as a bullet.
	Settings []string
	// Machine describes where it ran ("linux/amd64, 2 CPUs"); Load the
	// load averages seen ("" when unknown).
	Machine string
	Load    string
	// Wall is the whole table's wall-clock time and CPU the CPU time (user
	// + system) of all its train and eval processes (0: not shown).
	Wall, CPU time.Duration
	// Modalities are the experiment's modalities (ablation columns).
	Modalities []string
	Rows       []Row
}

// seedSpeed and seedMemory are the seed README's claims for the strategies
// relative to early fusion.
var (
	seedSpeed  = map[string]float64{"early": 1.0, "late": 0.9, "hybrid": 0.8, "hierarchical": 0.7}
	seedMemory = map[string]float64{"early": 1.0, "late": 1.2, "hybrid": 1.3, "hierarchical": 1.5}
)

// Markdown renders the report: the settings, the table, how each column is
// measured, the verdicts and any failed runs.
func Markdown(r Report) string {
	var b strings.Builder
	if r.Title != "" {
		fmt.Fprintf(&b, "# %s\n\n", r.Title)
	}
	if r.Command != "" {
		fmt.Fprintf(&b, "Reproduce with `%s`.\n\n", r.Command)
	}
	for _, s := range r.Settings {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	if r.Machine != "" || r.Wall > 0 {
		parts := []string{}
		if r.Machine != "" {
			parts = append(parts, "machine: "+r.Machine)
		}
		if r.Load != "" {
			parts = append(parts, "load average "+r.Load)
		}
		if r.Wall > 0 {
			parts = append(parts, "wall time "+r.Wall.Round(time.Second).String())
		}
		if r.CPU > 0 {
			parts = append(parts, "CPU time of the runs "+r.CPU.Round(time.Second).String())
		}
		fmt.Fprintf(&b, "- %s\n", strings.Join(parts, "; "))
	}
	if len(r.Settings) > 0 || r.Machine != "" || r.Wall > 0 {
		b.WriteByte('\n')
	}
	mods := OrderModalities(r.Modalities)
	b.WriteString(Table(r.Rows, mods))
	b.WriteString("\n")
	b.WriteString("Test accuracy and macro-F1: mean ± sample standard deviation over the seeds (n − 1 in the denominator); " +
		"range: lowest–highest seed. Speed: each run's training throughput is the median over its epochs of the trainer's " +
		"samples/s (time inside training steps; validation excluded); the row shows the median over seeds and its ratio to " +
		"early fusion's (above 1 is faster). Memory: peak resident set size of each training process (rusage of the child " +
		"process), median over seeds, and its ratio to early fusion's. Train CPU: user + system CPU time of each training process " +
		"(start-up, decoding, training, validation, final test pass), median over seeds, and its ratio to early fusion's; unlike " +
		"throughput it hardly changes when other processes compete for the CPUs. \"Without m\": test accuracy with modality m removed at " +
		"evaluation (its learned missing embedding stands in when the run trained with modality dropout, zeros otherwise), " +
		"mean over seeds, and in brackets the change from the row's accuracy. Runs are sequential; speed and memory come from " +
		"single runs, but other processes on the machine slow them unevenly, so the ratios are noisy: " +
		"compare them only when they differ by more than about 10%.\n")
	if v := Verdicts(r.Rows, mods); len(v) > 0 {
		b.WriteString("\nWhat the numbers say:\n\n")
		for _, s := range v {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	var failed []Run
	for _, row := range r.Rows {
		failed = append(failed, row.Failed...)
	}
	if len(failed) > 0 {
		b.WriteString("\nFailed runs (missing from the aggregates):\n\n")
		for _, f := range failed {
			fmt.Fprintf(&b, "- %s seed %d: %s\n", f.Variant, f.Seed, oneLine(f.Err))
		}
	}
	return b.String()
}

// Table renders the rows as a markdown table with one ablation column per
// modality.
func Table(rows []Row, modalities []string) string {
	var b strings.Builder
	head := []string{"Run", "Test accuracy %", "range %", "Macro-F1 %", "Speed vs early", "Peak memory vs early", "Train CPU vs early"}
	align := []string{"---", "--:", "--:", "--:", "--:", "--:", "--:"}
	for _, m := range modalities {
		head = append(head, "Without "+m)
		align = append(align, "--:")
	}
	head, align = append(head, "Runs"), append(align, "--:")
	fmt.Fprintf(&b, "| %s |\n|%s|\n", strings.Join(head, " | "), strings.Join(align, "|"))
	for _, row := range rows {
		label := row.Variant.Label
		if row.Variant.Name == Baseline {
			label = "**" + label + "**"
		}
		cells := []string{label, pctStat(row.Accuracy), pctRange(row.Accuracy), pctStat(row.MacroF1),
			ratioCell(row.Speed, fmtRate(row.SamplesPerSec)), ratioCell(row.Memory, fmtBytes(row.PeakRSS)), ratioCell(row.CPU, fmtSeconds(row.TrainCPU))}
		for _, m := range modalities {
			cells = append(cells, ablationCell(row, m))
		}
		cells = append(cells, fmt.Sprintf("%d/%d", row.OK, row.Seeds))
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
	}
	return b.String()
}

const dash = "—"

func pct(x float64) string {
	if math.IsNaN(x) {
		return dash
	}
	return fmt.Sprintf("%.1f", 100*x)
}

func pctStat(s Stat) string {
	if s.N == 0 {
		return dash
	}
	return fmt.Sprintf("%.1f ± %.1f", 100*s.Mean, 100*s.Std)
}

func pctRange(s Stat) string {
	if s.N == 0 {
		return dash
	}
	return pct(s.Min) + "–" + pct(s.Max)
}

func ratioCell(r float64, raw string) string {
	if math.IsNaN(r) {
		if raw == dash {
			return dash
		}
		return "n/a (" + raw + ")"
	}
	return fmt.Sprintf("%.2fx (%s)", r, raw)
}

func fmtRate(x float64) string {
	if math.IsNaN(x) {
		return dash
	}
	return fmt.Sprintf("%.0f samples/s", x)
}

func fmtBytes(x float64) string {
	if math.IsNaN(x) {
		return dash
	}
	return fmt.Sprintf("%.0f MB", x/(1<<20))
}

func fmtSeconds(x float64) string {
	if math.IsNaN(x) {
		return dash
	}
	return fmt.Sprintf("%.0f s", x)
}

func ablationCell(row Row, m string) string {
	s, ok := row.Ablation[m]
	if !ok || s.N == 0 {
		return dash
	}
	return fmt.Sprintf("%s (%+.1f)", pct(s.Mean), 100*(s.Mean-row.Accuracy.Mean))
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}

// Verdicts states in plain words what the rows show: whether fusion beats
// the best single modality, the measured strategy order against the seed's
// claim, speed and memory against the seed's claims, and the effect of
// modality dropout. Differences smaller than the seed spread are called
// out as unresolved.
func Verdicts(rows []Row, modalities []string) []string {
	var out []string
	byName := map[string]Row{}
	var singles, fused, strategies []Row
	for _, r := range rows {
		if r.Accuracy.N == 0 {
			continue
		}
		byName[r.Variant.Name] = r
		switch r.Variant.Group {
		case GroupSingle:
			singles = append(singles, r)
		case GroupFusion:
			fused = append(fused, r)
			strategies = append(strategies, r)
		default:
			fused = append(fused, r)
		}
	}
	best := func(rs []Row) Row {
		b := rs[0]
		for _, r := range rs[1:] {
			if r.Accuracy.Mean > b.Accuracy.Mean {
				b = r
			}
		}
		return b
	}
	if len(singles) == 0 || len(fused) == 0 {
		out = append(out, "Not enough successful runs to compare fusion with single modalities.")
	} else {
		bs, bf := best(singles), best(fused)
		// n fused rows have a higher mean than the best single row, clear of
		// them by more than the larger standard deviation of the two.
		n, clear := 0, 0
		for _, r := range fused {
			if d := r.Accuracy.Mean - bs.Accuracy.Mean; d > 0 {
				n++
				if r.Accuracy.N > 1 && bs.Accuracy.N > 1 && d > math.Max(r.Accuracy.Std, bs.Accuracy.Std) {
					clear++
				}
			}
		}
		diff := bf.Accuracy.Mean - bs.Accuracy.Mean
		if diff > 0 {
			s := fmt.Sprintf("Fusion beats the best single modality: %s reaches %s%% against %s%% for %s (%+.1f points); %d of %d fused rows have a higher mean than %s, %d of them by more than the larger standard deviation.",
				bf.Variant.Label, pctStat(bf.Accuracy), pctStat(bs.Accuracy), bs.Variant.Label, 100*diff, n, len(fused), bs.Variant.Label, clear)
			switch {
			case bf.Accuracy.N < 2 || bs.Accuracy.N < 2:
				s += " With a single seed there is no spread to judge the margin by."
			case diff < math.Max(bf.Accuracy.Std, bs.Accuracy.Std):
				s += " The margin is smaller than the spread over seeds, so it is not established by these runs."
			}
			out = append(out, s)
		} else {
			out = append(out, fmt.Sprintf("Fusion does NOT beat the best single modality: %s reaches %s%%; the best fused row, %s, reaches %s%% (%+.1f points).",
				bs.Variant.Label, pctStat(bs.Accuracy), bf.Variant.Label, pctStat(bf.Accuracy), 100*diff))
		}
	}
	if len(strategies) > 1 {
		sort.SliceStable(strategies, func(i, j int) bool { return strategies[i].Accuracy.Mean > strategies[j].Accuracy.Mean })
		parts := make([]string, len(strategies))
		order := make([]string, len(strategies))
		for i, r := range strategies {
			parts[i] = fmt.Sprintf("%s %s", r.Variant.Name, pct(r.Accuracy.Mean))
			order[i] = r.Variant.Name
		}
		s := "Measured order of the strategies by mean test accuracy: " + strings.Join(parts, " > ") + ". "
		claim := strings.Join(SeedClaim, " > ")
		switch {
		case len(order) == len(SeedClaim) && strings.Join(order, " > ") == claim:
			s += "It matches the seed's claim (" + claim + ")."
		case len(order) == len(SeedClaim):
			s += "It DIFFERS from the seed's claim (" + claim + ")."
		default:
			s += "Not every strategy has successful runs, so the seed's claim (" + claim + ") is not tested."
		}
		var close []string
		for i := 0; i+1 < len(strategies); i++ {
			a, c := strategies[i], strategies[i+1]
			gap := a.Accuracy.Mean - c.Accuracy.Mean
			if a.Accuracy.N < 2 || c.Accuracy.N < 2 || gap < math.Max(a.Accuracy.Std, c.Accuracy.Std) {
				close = append(close, fmt.Sprintf("%s/%s (%.1f points apart)", a.Variant.Name, c.Variant.Name, 100*gap))
			}
		}
		if len(close) > 0 {
			s += " Adjacent strategies closer than one standard deviation (or with a single seed), whose order these runs do not resolve: " + strings.Join(close, ", ") + "."
		}
		out = append(out, s)
	}
	if base, ok := byName[Baseline]; ok && !math.IsNaN(base.SamplesPerSec) {
		var sp, mem, cpu []string
		for _, s := range Strategies[1:] {
			r, ok := byName[s]
			if !ok {
				continue
			}
			sp = append(sp, fmt.Sprintf("%s %s (seed: %.1fx)", s, fmtRatio(r.Speed), seedSpeed[s]))
			mem = append(mem, fmt.Sprintf("%s %s (seed: %.1fx)", s, fmtRatio(r.Memory), seedMemory[s]))
			cpu = append(cpu, fmt.Sprintf("%s %s", s, fmtRatio(r.CPU)))
		}
		if len(sp) > 0 {
			out = append(out, "Relative to early fusion, measured speed: "+strings.Join(sp, ", ")+"; peak memory: "+strings.Join(mem, ", ")+
				"; training CPU time: "+strings.Join(cpu, ", ")+". The seed's accuracies (82.3–87.2%) were on unstated data and are not comparable.")
		}
	}
	on, okOn := byName["hybrid"]
	off, okOff := byName[NoDropout]
	if okOn && okOff {
		s := fmt.Sprintf("Modality dropout: hybrid reaches %s%% with it and %s%% without (%+.1f points).",
			pctStat(on.Accuracy), pctStat(off.Accuracy), 100*(on.Accuracy.Mean-off.Accuracy.Mean))
		var parts []string
		for _, m := range modalities {
			a, okA := on.Ablation[m]
			c, okC := off.Ablation[m]
			if okA && okC && a.N > 0 && c.N > 0 {
				parts = append(parts, fmt.Sprintf("without %s %s%% against %s%%", m, pct(a.Mean), pct(c.Mean)))
			}
		}
		if len(parts) > 0 {
			s += " With a modality removed at evaluation, with dropout against without: " + strings.Join(parts, "; ") + "."
		}
		out = append(out, s)
	}
	return out
}

func fmtRatio(r float64) string {
	if math.IsNaN(r) {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", r)
}
