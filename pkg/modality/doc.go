// Package modality holds lsfuse's modality kinds and their preprocessors:
// the first stage of each modality branch, which turns a raw batch (images,
// waveforms, token ids, sensor series, video clips, feature vectors) into a
// feature matrix [B, D] for the modality's spiking encoder (DESIGN.md §1).
//
// A Preprocessor is built from a plain Config by New, which applies the
// documented defaults (Config.WithDefaults) and validates every field
// (Config.Validate), naming the offending key as "<kind>.<key>". Built-in
// kinds:
//
//	vision  [B, C, H, W]          simple | resnet | efficient CNN
//	audio   [B, samples]          log-mel spectrogram + conv1d | raw-waveform conv1d
//	text    [B, L] int ids        token + position embedding, masked pooling
//	sensor  [B, sensors, time]    conv1d stack, optional temporal attention
//	video   [B, frames, C, H, W]  shared per-frame CNN + temporal conv/mean/liquid | conv3d
//	mlp     [B, in]               Linear/activation stack
//
// Register adds a kind of the caller's own; its registry (a map behind a
// mutex) is the package's only mutable state.
//
// Preprocessors own no tensors: Forward creates its parameters in the
// nn.Store behind the nn.Ctx, under the ctx's scope, so the training and
// evaluation graphs share them. Batch norms use batch statistics in
// training graphs and running statistics in evaluation graphs; dropout is
// active only when training. Shape errors are returned (never panics) and
// name the scope, so a message says which modality and layer failed.
package modality
