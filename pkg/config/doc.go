// Package config is lsfuse's experiment file: the schema (Config and its
// sections, with snake_case keys), the defaults, loading and strict
// checking, and the conversion into the option structs of the library
// packages (model.NetworkConfig, train.Config, data.ManifestConfig).
//
// Load merges, from lowest to highest precedence, Default(), YAML files
// (later wins, key by key), LSFUSE_* environment variables, --set
// overrides and named command-line flags, using a fresh Viper instance per
// call. Every YAML document is walked node by node against the schema
// before it is merged, so an unknown key is an error naming its full
// dotted path, file and line and the closest valid key, and a value of the
// wrong type names its key and line; Viper on its own would lower-case and
// silently drop unknown keys. Complete then fills the defaults that depend
// on other keys (preprocessor sizes from the data inputs, pkg/modality's
// defaults), and Validate checks ranges and the keys that must agree (the
// seed's "dimension mismatch": hybrid and hierarchical fusion need one
// encoder_dim). Problems are *Error values; a command maps them to exit
// code 2.
//
// Resolve turns a loaded config into model, data and train options;
// SetDataSizes first fills the sizes only the training data can tell (the
// class count, a built vocabulary). Marshal writes the resolved config as
// YAML, the form a run saves and embeds in its checkpoints.
//
// Only cmd/lsfuse and this package use Viper; library packages take their
// own option structs and never import config.
package config
