// Package experiment runs the measured fusion-strategy comparison behind
// `lsfuse experiment table`: the same experiment trained once per seed for
// every variant (each modality alone, each fusion strategy with all
// modalities, and hybrid fusion with modality dropout switched off), each
// run a separate `lsfuse train` process followed by `lsfuse eval --json`,
// then aggregated over seeds and rendered as a markdown table.
//
// The pieces are separate so they can be tested alone:
//
//   - Variants builds the rows from the experiment's modalities and its
//     modality-dropout rates.
//   - Runner executes one (variant, seed) run as child processes of the
//     lsfuse binary and reads back the test metrics, the per-modality
//     ablation, the trainer's throughput (metrics.jsonl) and the training
//     process's peak resident memory (the operating system's rusage of the
//     child, never the parent's).
//   - Aggregate turns runs into rows: mean, sample standard deviation and
//     range of test accuracy and macro-F1 over seeds, the median throughput
//     and peak memory, and both relative to the early-fusion row.
//   - Markdown renders a Report, including plain-language verdicts on whether
//     fusion beats the best single modality and whether the strategy order
//     matches the seed's claim (hierarchical > hybrid > late > early).
//
// Nothing here writes to the terminal; the command passes writers in.
package experiment
