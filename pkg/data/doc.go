// Package data turns files on disk into batches of tensors for lsfuse. It
// knows nothing about graphs: everything here is plain float32 slices with
// shapes, token ids and labels.
//
// # Samples and batches
//
// A Sample holds per-modality inputs keyed by modality name — float tensors
// (image [C,H,W], audio [L] or [C,L], sensor [T,C], video [F,C,H,W]) and
// token ids (text [L]) — a presence flag per modality (missing modalities
// are zeros and Present false), and a Label (class id, regression vector or
// token sequence). Collate stacks samples into a Batch with a leading batch
// axis. A Dataset is random access; the Loader batches it deterministically.
//
// # Manifests
//
// A user dataset is a manifest (CSV with a header, or JSON Lines) whose
// columns are typed by ManifestConfig: image, audio, sensor and video cells
// hold paths relative to the manifest, text cells hold the text. The flow is
//
//	m, err := data.OpenManifest(cfg)          // parse, check (skip mode: drop bad rows)
//	stats, err := m.FitStats(split.Train)     // categories, vocabularies, normalisation
//	err = stats.Save(filepath.Join(run, "data_stats.json"))
//	train, err := m.Dataset(stats, data.DatasetOptions{Augment: true, Seed: seed})
//	eval, err := m.Dataset(stats, data.DatasetOptions{})
//
// Statistics come from the training split only and are saved with the run,
// so evaluation and resumption reuse exactly the same mapping.
//
// # Decoders
//
//   - Images: PNG, JPEG, GIF via the standard library; gray or RGB; resize
//     with golang.org/x/image/draw; per-channel normalisation; seeded random
//     crop and flips (CropFlip). IDX arrays (MNIST), gzip'd or not (ReadIDX).
//   - Audio: WAV PCM 8/16/24/32-bit and float 32/64 (DecodeWAV), mono
//     mix-down, band-limited windowed-sinc resampling (Resampler), pad/trim,
//     seeded white noise at an exact SNR (AddNoise).
//   - Text: GPT-2 byte-level BPE (r50k_base, offline) or a word/character
//     vocabulary built from the training split with <pad> <unk> <bos> <eos>;
//     pad/truncate to a length (EncodeText).
//   - Sensor: CSV time series, rows = time steps, columns = channels
//     (ReadSensorCSV).
//   - Video: frame folders, animated GIFs (composited), and anything ffmpeg
//     reads through an ffmpeg subprocess (LoadVideo); a fixed frame count by
//     uniform sampling.
//
// # Bad input
//
// Bad input is an error naming the file, line and column (*InputError) —
// or, with ManifestConfig.OnError "skip", the row is dropped and counted in
// the manifest's Summary. Decoders never panic and never silently alter a
// sample: a truncated WAV is an error, not shorter audio; NaN in a sensor
// file is an error, not a zero. Every decoder has a fuzz target.
package data
