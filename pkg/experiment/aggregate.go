package experiment

import (
	"math"
	"slices"
)

// Run is the outcome of one (variant, seed) run.
type Run struct {
	Variant string `json:"variant"`
	Seed    int64  `json:"seed"`
	// Dir is the run directory.
	Dir string `json:"dir"`
	// Err is why the run failed ("" for a successful run); a failed run
	// counts as missing in every aggregate.
	Err string `json:"error,omitempty"`
	// Accuracy and MacroF1 are the test metrics of best.ckpt, in [0, 1].
	Accuracy float64 `json:"accuracy"`
	MacroF1  float64 `json:"macro_f1"`
	// TestN is the number of test samples evaluated.
	TestN int `json:"test_n"`
	// Ablation maps each modality to the test accuracy with it removed
	// (fused runs only).
	Ablation map[string]float64 `json:"ablation,omitempty"`
	// SamplesPerSec is the median over epochs of the trainer's training
	// throughput (samples / time inside training steps, validation
	// excluded), from metrics.jsonl.
	SamplesPerSec float64 `json:"samples_per_sec"`
	// PeakRSS is the training process's peak resident set size in bytes
	// (0 when the platform does not report it).
	PeakRSS int64 `json:"peak_rss_bytes"`
	// Epochs is the number of epochs trained; TrainN and ValN the samples
	// per training epoch and in the validation part.
	Epochs int `json:"epochs"`
	TrainN int `json:"train_n"`
	ValN   int `json:"val_n"`
	// TrainSeconds and EvalSeconds are the wall-clock times of the train
	// and eval processes.
	TrainSeconds float64 `json:"train_seconds"`
	EvalSeconds  float64 `json:"eval_seconds"`
	// TrainCPUSeconds is the training process's user + system CPU time
	// (start-up, decoding, training, validation and its final test pass),
	// and CPUSeconds that of both processes.
	TrainCPUSeconds float64 `json:"train_cpu_seconds"`
	CPUSeconds      float64 `json:"cpu_seconds"`
}

// OK reports whether the run succeeded.
func (r Run) OK() bool { return r.Err == "" }

// Stat summarises one metric over seeds.
type Stat struct {
	// N is the number of values (successful runs).
	N int `json:"n"`
	// Mean is the arithmetic mean; Std the sample standard deviation
	// sqrt(Σ(x−mean)²/(N−1)) (0 when N < 2); Min and Max the range. All are
	// NaN when N is 0.
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

// Summarize returns the mean, sample standard deviation and range of xs.
func Summarize(xs []float64) Stat {
	nan := math.NaN()
	s := Stat{N: len(xs), Mean: nan, Std: nan, Min: nan, Max: nan}
	if len(xs) == 0 {
		return s
	}
	sum := 0.0
	s.Min, s.Max = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		sum += x
		s.Min, s.Max = math.Min(s.Min, x), math.Max(s.Max, x)
	}
	s.Mean = sum / float64(len(xs))
	s.Std = 0
	if len(xs) > 1 {
		ss := 0.0
		for _, x := range xs {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.Std = math.Sqrt(ss / float64(len(xs)-1))
	}
	return s
}

// Median returns the median of xs (the mean of the middle two for an even
// count), NaN for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Row is one aggregated variant.
type Row struct {
	Variant Variant `json:"variant"`
	// Seeds is the number of runs planned, OK the number that succeeded.
	Seeds int `json:"seeds"`
	OK    int `json:"ok"`
	// Accuracy and MacroF1 summarise the successful runs' test metrics.
	Accuracy Stat `json:"accuracy"`
	MacroF1  Stat `json:"macro_f1"`
	// Ablation summarises, per modality, the test accuracy with that
	// modality removed (fused rows).
	Ablation map[string]Stat `json:"ablation,omitempty"`
	// SamplesPerSec is the median over seeds of the runs' throughput and
	// PeakRSS the median peak resident memory in bytes (NaN without runs;
	// PeakRSS also when no run reported it).
	SamplesPerSec float64 `json:"samples_per_sec"`
	PeakRSS       float64 `json:"peak_rss_bytes"`
	// TrainCPU is the median over seeds of the training processes' CPU
	// seconds.
	TrainCPU float64 `json:"train_cpu_seconds"`
	// Speed, Memory and CPU are SamplesPerSec, PeakRSS and TrainCPU divided
	// by the Baseline row's (NaN when either is unknown). Speed above 1 is
	// faster than early fusion; Memory and CPU above 1 use more.
	Speed  float64 `json:"speed"`
	Memory float64 `json:"memory"`
	CPU    float64 `json:"cpu"`
	// Failed are the runs that failed.
	Failed []Run `json:"failed,omitempty"`
}

// Aggregate groups runs by variant (in the order of variants) over the
// planned number of seeds. Runs of unknown variants are ignored; a
// variant without successful runs gets a row of NaNs.
func Aggregate(variants []Variant, seeds int, runs []Run) []Row {
	rows := make([]Row, len(variants))
	for i, v := range variants {
		row := Row{Variant: v, Seeds: seeds}
		var acc, f1, sps, rss, cpu []float64
		abl := map[string][]float64{}
		for _, r := range runs {
			if r.Variant != v.Name {
				continue
			}
			if !r.OK() {
				row.Failed = append(row.Failed, r)
				continue
			}
			row.OK++
			acc = append(acc, r.Accuracy)
			f1 = append(f1, r.MacroF1)
			if r.SamplesPerSec > 0 {
				sps = append(sps, r.SamplesPerSec)
			}
			if r.PeakRSS > 0 {
				rss = append(rss, float64(r.PeakRSS))
			}
			if r.TrainCPUSeconds > 0 {
				cpu = append(cpu, r.TrainCPUSeconds)
			}
			for m, a := range r.Ablation {
				abl[m] = append(abl[m], a)
			}
		}
		row.Accuracy, row.MacroF1 = Summarize(acc), Summarize(f1)
		row.SamplesPerSec, row.PeakRSS, row.TrainCPU = Median(sps), Median(rss), Median(cpu)
		if len(abl) > 0 {
			row.Ablation = map[string]Stat{}
			for m, xs := range abl {
				row.Ablation[m] = Summarize(xs)
			}
		}
		rows[i] = row
	}
	base, baseRSS, baseCPU := math.NaN(), math.NaN(), math.NaN()
	for _, r := range rows {
		if r.Variant.Name == Baseline {
			base, baseRSS, baseCPU = r.SamplesPerSec, r.PeakRSS, r.TrainCPU
		}
	}
	for i := range rows {
		rows[i].Speed = ratio(rows[i].SamplesPerSec, base)
		rows[i].Memory = ratio(rows[i].PeakRSS, baseRSS)
		rows[i].CPU = ratio(rows[i].TrainCPU, baseCPU)
	}
	return rows
}

// ratio is a/b, NaN when either is unknown or b is not positive.
func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b <= 0 {
		return math.NaN()
	}
	return a / b
}
