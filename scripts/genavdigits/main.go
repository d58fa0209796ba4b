// Command genavdigits writes a built-in lsfuse dataset (avdigits or fashion)
// as a manifest directory. It backs `make testdata`, which regenerates the
// committed subset under testdata/; `lsfuse data` exposes the same library
// functions to users.
//
//	go run ./scripts/genavdigits -dataset avdigits -out testdata/avdigits -train 600 -test 200 -rate 8000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/lsfuse/lsfuse/pkg/data"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genavdigits:", err)
		os.Exit(1)
	}
}

func run() error {
	av := data.DefaultAVDigitsConfig()
	fa := data.DefaultFashionConfig()
	dataset := flag.String("dataset", "avdigits", "avdigits or fashion")
	out := flag.String("out", "", "output directory (must not exist or be empty)")
	train := flag.Int("train", av.Train, "train rows")
	test := flag.Int("test", av.Test, "test rows")
	seed := flag.Int64("seed", av.Seed, "generation seed")
	rate := flag.Int("rate", av.Speech.SampleRate, "avdigits: WAV sample rate in Hz")
	maxSec := flag.Float64("max-seconds", av.Speech.MaxSeconds, "avdigits: longest clip in seconds")
	workers := flag.Int("workers", 2, "rows generated in parallel")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		return fmt.Errorf("usage: genavdigits -dataset avdigits|fashion -out DIR [-train N -test N -seed S]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var (
		res *data.GeneratedDataset
		err error
	)
	switch *dataset {
	case "avdigits":
		av.Train, av.Test, av.Seed, av.Workers = *train, *test, *seed, *workers
		av.Speech.SampleRate, av.Speech.MaxSeconds = *rate, *maxSec
		res, err = data.GenerateAVDigits(ctx, *out, av)
	case "fashion":
		fa.Train, fa.Test, fa.Seed, fa.Workers = *train, *test, *seed, *workers
		res, err = data.GenerateFashion(ctx, *out, fa)
	default:
		return fmt.Errorf("-dataset %q: want avdigits or fashion", *dataset)
	}
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s: rows per class %v\n", res.Manifest, res.Splits)
	if res.TruncatedClips > 0 {
		fmt.Printf("%d clips were cut at the maximum length\n", res.TruncatedClips)
	}
	return nil
}
