package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fixture is the path of a file under the repository's testdata/config.
func fixture(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "testdata", "config"}, parts...)...)
}

// mustLoad loads opts and fails the test on error.
func mustLoad(t *testing.T, opts LoadOptions) *Config {
	t.Helper()
	cfg, err := Load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// wantErr loads opts and checks that the error is a config error holding
// every fragment.
func wantErr(t *testing.T, opts LoadOptions, fragments ...string) error {
	t.Helper()
	_, err := Load(opts)
	if err == nil {
		t.Fatalf("Load succeeded, want an error with %q", fragments)
	}
	if !IsConfigError(err) {
		t.Errorf("error %v (%T) is not a config error", err, err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error lacks %q:\n%v", f, err)
		}
	}
	return err
}

func TestValidFixturesLoad(t *testing.T) {
	files, err := filepath.Glob(fixture("valid", "*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("valid fixtures: %v, %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			mustLoad(t, LoadOptions{Files: []string{f}})
		})
	}
}

// TestInvalidFixtures checks that every invalid fixture fails with a
// message naming the file, the line, the full key and the fix.
func TestInvalidFixtures(t *testing.T) {
	cases := map[string][]string{
		"misspelt_key.yaml": {"misspelt_key.yaml:5: model.modalities.vision.encoder_dimm: unknown key",
			`did you mean "model.modalities.vision.encoder_dim"?`},
		"misspelt_section.yaml": {"2 problems", `misspelt_section.yaml:2: model.fusion_stratgy: unknown key (did you mean "model.fusion_strategy"?)`,
			`misspelt_section.yaml:3: trian: unknown key (did you mean "train"?)`},
		"misplaced_key.yaml": {`misplaced_key.yaml:2: run.lr: unknown key (did you mean "train.lr"?)`},
		"bad_types.yaml": {`bad_types.yaml:2: train.lr: want a number, got "fast"`, `bad_types.yaml:3: train.epochs: want an integer, got "2.5"`,
			`bad_types.yaml:4: train.cache: want true or false, got "yes please"`,
			`bad_types.yaml:9: model.modalities.vision.preprocessing.channels: want a list`},
		"bad_syntax.yaml":    {"bad_syntax.yaml:3: YAML syntax: mapping values are not allowed"},
		"not_a_mapping.yaml": {"not_a_mapping.yaml:1: the top level must be a mapping"},
		"encoder_dim_mismatch.yaml": {"model.modalities: fusion_strategy hybrid", "encoder_dim differs (audio=64, vision=128)",
			"set the same model.modalities.<name>.encoder_dim", "use fusion_strategy early or late"},
		"bad_values.yaml": {`bad_values.yaml:2: model.fusion_strategy: unknown value "hybird"`, `did you mean "hybrid"?`,
			"bad_values.yaml:6: model.modalities.vision.num_spike_steps: must be at least 1, got 0",
			"bad_values.yaml:7: model.modalities.vision.beta: must be in [0, 1], got 1.5",
			`bad_values.yaml:8: model.modalities.vision.preprocessing.architecture: unknown "resnt"`,
			`train.optimizer: unknown optimizer "adamm"`, "train.lr: must be > 0, got -1",
			`bad_values.yaml:13: run.device: unknown value "tpu"`},
		"wrong_type_keys.yaml": {"wrong_type_keys.yaml:8: model.modalities.text.preprocessing.height: unknown key", "vocab_size, seq_len"},
		"data_mismatch.yaml": {`data_mismatch.yaml:10: data.inputs.sound: no modality "sound"`,
			"data.inputs.vision.height: is 32 but model.modalities.vision.preprocessing.height is 28",
			"data.inputs.vision.channels: is 1 but model.modalities.vision.preprocessing.in_channels is 3"},
	}
	files, _ := filepath.Glob(fixture("invalid", "*.yaml"))
	if len(files) != len(cases) {
		t.Errorf("%d invalid fixtures, %d cases: give every fixture a case", len(files), len(cases))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, ok := cases[filepath.Base(f)]
			if !ok {
				t.Fatalf("no expected message for %s", f)
			}
			wantErr(t, LoadOptions{Files: []string{f}}, want...)
		})
	}
}

func TestMissingFile(t *testing.T) {
	wantErr(t, LoadOptions{Files: []string{fixture("valid", "nope.yaml")}}, "nope.yaml: config file does not exist")
}

// TestPrecedence adds one source at a time and checks that each wins over
// the ones before it: defaults < files (in order) < environment < --set <
// flags.
func TestPrecedence(t *testing.T) {
	a, b := fixture("valid", "layer_a.yaml"), fixture("overlay", "layer_b.yaml")
	steps := []struct {
		name   string
		opts   LoadOptions
		epochs int
		lr     float64
		textD  int
	}{
		{"defaults", LoadOptions{Sets: []string{"model.output_dim=2", "model.modalities.vision.preprocessing.in_channels=1"}}, DefaultEpochs, 1e-3, 0},
		{"file a", LoadOptions{Files: []string{a}}, 2, 0.1, 32},
		{"file b after a", LoadOptions{Files: []string{a, b}}, 3, 0.1, 48},
		{"environment", LoadOptions{Files: []string{a, b}, Environ: []string{"LSFUSE_TRAIN_EPOCHS=4", "LSFUSE_TRAIN_LR=0.3"}}, 4, 0.3, 48},
		{"--set", LoadOptions{Files: []string{a, b}, Environ: []string{"LSFUSE_TRAIN_EPOCHS=4", "LSFUSE_TRAIN_LR=0.3"},
			Sets: []string{"train.epochs=5"}}, 5, 0.3, 48},
		{"flag", LoadOptions{Files: []string{a, b}, Environ: []string{"LSFUSE_TRAIN_EPOCHS=4"},
			Sets: []string{"train.epochs=5"}, Flags: []Override{{Flag: "--epochs", Key: "train.epochs", Value: "6"}}}, 6, 0.1, 48},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			cfg := mustLoad(t, s.opts)
			if cfg.Train.Epochs != s.epochs || cfg.Train.LR != s.lr {
				t.Errorf("epochs %d lr %g, want %d and %g", cfg.Train.Epochs, cfg.Train.LR, s.epochs, s.lr)
			}
			if got := cfg.Model.Modalities["text"].EncoderDim; s.textD != 0 && got != s.textD {
				t.Errorf("text encoder_dim %d, want %d", got, s.textD)
			}
		})
	}
	// Keys a later file does not mention keep the earlier file's value.
	cfg := mustLoad(t, LoadOptions{Files: []string{a, b}})
	if cfg.Model.Modalities["vision"].EncoderDim != 64 || cfg.Run.Seed != 7 || cfg.Model.FusionStrategy != "early" {
		t.Errorf("layer_a values lost after layer_b: %+v", cfg.Model.Modalities["vision"])
	}
}

func TestEnvironment(t *testing.T) {
	a := fixture("valid", "layer_a.yaml")
	cfg := mustLoad(t, LoadOptions{Files: []string{a}, Environ: []string{
		"LSFUSE_TRAIN_LR=3e-4",
		"LSFUSE_MODEL_MODALITIES_VISION_ENCODER_DIM=96",
		"LSFUSE_MODEL_MODALITIES_VISION_PREPROCESSING_CHANNELS=8,16",
		"LSFUSE_RUN_NAME=007",
		"LSFUSE_SLOW_TESTS=1", // not a config section: ignored
		"HOME=/root",
	}})
	if cfg.Train.LR != 3e-4 || cfg.Model.Modalities["vision"].EncoderDim != 96 || cfg.Run.Name != "007" {
		t.Errorf("environment not applied: lr %g, encoder_dim %d, name %q", cfg.Train.LR, cfg.Model.Modalities["vision"].EncoderDim, cfg.Run.Name)
	}
	if got := cfg.Model.Modalities["vision"].Preprocessing["channels"]; !reflect.DeepEqual(got, []any{8, 16}) {
		t.Errorf("channels from the environment = %v, want [8 16]", got)
	}
	wantErr(t, LoadOptions{Files: []string{a}, Environ: []string{"LSFUSE_TRAIN_LRR=1"}},
		"environment variable LSFUSE_TRAIN_LRR: does not name a configuration key (did you mean LSFUSE_TRAIN_LR?)")
	wantErr(t, LoadOptions{Files: []string{a}, Environ: []string{"LSFUSE_TRAIN_EPOCHS=many"}},
		`environment variable LSFUSE_TRAIN_EPOCHS: train.epochs: want an integer, got "many"`)
}

func TestSetOverrides(t *testing.T) {
	a := fixture("valid", "layer_a.yaml")
	cfg := mustLoad(t, LoadOptions{Files: []string{a}, Sets: []string{
		"model.modality_dropout={vision: 0.2, text: 0.1}",
		"model.modalities.vision.preprocessing.channels=[4, 8]",
		"train.schedule.kind=cosine",
		"run.name=a=b", // the value may hold '='
		"train.lr=5e-3",
		"train.lr=6e-3", // later wins
	}})
	if !reflect.DeepEqual(cfg.Model.ModalityDropout, map[string]float64{"vision": 0.2, "text": 0.1}) {
		t.Errorf("modality_dropout = %v", cfg.Model.ModalityDropout)
	}
	if got := cfg.Model.Modalities["vision"].Preprocessing["channels"]; !reflect.DeepEqual(got, []any{4, 8}) {
		t.Errorf("channels = %v", got)
	}
	if cfg.Train.Schedule.Kind != "cosine" || cfg.Run.Name != "a=b" || cfg.Train.LR != 6e-3 {
		t.Errorf("schedule %q name %q lr %g", cfg.Train.Schedule.Kind, cfg.Run.Name, cfg.Train.LR)
	}
	for _, c := range []struct {
		set  string
		want string
	}{
		{"train.lr", "--set train.lr: want dotted.key=value"},
		{"train.lrr=1", `--set train.lrr=1: train.lrr: unknown key (did you mean "train.lr"?)`},
		{"trian.lr=1", `trian.lr: unknown key (did you mean "train"?)`},
		{"model.fusion_dim=wide", `--set model.fusion_dim=wide: model.fusion_dim: want an integer, got "wide"`},
		{"train.cache=maybe", "train.cache: want true or false"},
		{"model.modalities.Vision.encoder_dim=3", `"Vision" is not a valid modality name`},
		{"train.lr=[1", "train.lr: cannot parse"},
	} {
		wantErr(t, LoadOptions{Files: []string{a}, Sets: []string{c.set}}, c.want)
	}
}

func TestModalitiesFlag(t *testing.T) {
	a := fixture("valid", "layer_a.yaml")
	cfg := mustLoad(t, LoadOptions{Files: []string{a}, Modalities: []string{"text"}})
	if len(cfg.Model.Modalities) != 1 || cfg.Model.Modalities["text"].EncoderDim != 32 {
		t.Errorf("--modalities text kept %v", cfg.Model.Modalities)
	}
	// A name the file does not configure is added with the defaults of the
	// type of that name.
	cfg = mustLoad(t, LoadOptions{Files: []string{a}, Modalities: []string{"vision", "audio"}})
	au, ok := cfg.Model.Modalities["audio"]
	if !ok || au.Type != "audio" || au.EncoderDim != DefaultModality().EncoderDim || au.Preprocessing["n_mels"] != 64 {
		t.Errorf("added audio modality = %+v", au)
	}
	if _, ok := cfg.Model.Modalities["text"]; ok {
		t.Error("text kept although --modalities did not list it")
	}
	wantErr(t, LoadOptions{Files: []string{a}, Modalities: []string{"gizmo"}}, "model.modalities.gizmo.type: missing")
}

func TestDefaultsAreCompleted(t *testing.T) {
	cfg := mustLoad(t, LoadOptions{Files: []string{fixture("valid", "minimal.yaml")}})
	v := cfg.Model.Modalities["vision"]
	if v.Type != "vision" || v.CfCMode != "default" || v.NumSpikeSteps != 8 || v.Beta != 0.95 {
		t.Errorf("modality defaults: %+v", v)
	}
	pc, err := cfg.PreprocessorConfig("vision")
	if err != nil {
		t.Fatal(err)
	}
	if pc.Architecture != "simple" || pc.Vision.Kernel != 3 || pc.Vision.Stride != 2 || pc.Vision.InChannels != 1 || pc.OutputDim != 128 {
		t.Errorf("preprocessing after Complete: %+v", pc)
	}
	if cfg.Train.Epochs != DefaultEpochs || cfg.Run.Name != "minimal" || cfg.Run.Device != "auto" {
		t.Errorf("epochs %d name %q device %q", cfg.Train.Epochs, cfg.Run.Name, cfg.Run.Device)
	}
	// Stages without train.epochs: the stages' total.
	cfg = mustLoad(t, LoadOptions{Files: []string{fixture("valid", "stages_ltc.yaml")}})
	if cfg.Train.Epochs != 5 || cfg.Train.Stages[1].Name != "stage2" || cfg.Model.Modalities["imu"].ODEUnfolds != 6 {
		t.Errorf("epochs %d stages %+v", cfg.Train.Epochs, cfg.Train.Stages)
	}
}

// TestPathsRelativeToFile: a path in a file is relative to the file's
// folder; a path from --set is relative to the working directory.
func TestPathsRelativeToFile(t *testing.T) {
	f := fixture("valid", "data_paths.yaml")
	cfg := mustLoad(t, LoadOptions{Files: []string{f}})
	if want := filepath.Join("..", "..", "testdata", "avdigits", "manifest.csv"); cfg.Data.Train != want {
		t.Errorf("data.train = %q, want %q", cfg.Data.Train, want)
	}
	if want := filepath.Join("..", "..", "runs-test"); cfg.Run.Dir != want {
		t.Errorf("run.dir = %q, want %q", cfg.Run.Dir, want)
	}
	cfg = mustLoad(t, LoadOptions{Files: []string{f}, Sets: []string{"data.train=x/m.csv"}})
	if cfg.Data.Train != "x/m.csv" {
		t.Errorf("--set data.train = %q", cfg.Data.Train)
	}
	// The data input fills the preprocessor's image size.
	pc, _ := cfg.PreprocessorConfig("vision")
	if pc.Vision.InChannels != 1 || pc.Vision.Height != 28 || pc.Vision.Width != 28 {
		t.Errorf("vision preprocessing from the data: %+v", pc.Vision)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, f := range []string{fixture("valid", "stages_ltc.yaml"), fixture("valid", "data_paths.yaml"), "../../configs/quickstart.yaml"} {
		cfg := mustLoad(t, LoadOptions{Files: []string{f}})
		b, err := cfg.Marshal(false)
		if err != nil {
			t.Fatal(err)
		}
		back := mustLoad(t, LoadOptions{Docs: []Doc{{Name: "printed", Data: b}}})
		b2, err := back.Marshal(false)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(b2) {
			t.Errorf("%s: printed config loads differently:\n%s\nvs\n%s", f, b, b2)
		}
		if d := ModelDiff(cfg, back); len(d) != 0 {
			t.Errorf("ModelDiff of equal configs: %v", d)
		}
	}
	cfg := mustLoad(t, LoadOptions{Files: []string{fixture("valid", "data_paths.yaml")}})
	b, _ := cfg.Marshal(true)
	back := mustLoad(t, LoadOptions{Docs: []Doc{{Name: "abs", Data: b}}})
	if !filepath.IsAbs(back.Data.Train) || !filepath.IsAbs(back.Run.Dir) {
		t.Errorf("Marshal(true) kept relative paths: %q %q", back.Data.Train, back.Run.Dir)
	}
}

func TestModelDiff(t *testing.T) {
	a := mustLoad(t, LoadOptions{Files: []string{fixture("valid", "layer_a.yaml")}})
	b := mustLoad(t, LoadOptions{Files: []string{fixture("valid", "layer_a.yaml")},
		Sets: []string{"model.modalities.text.encoder_dim=40", "train.epochs=9", "run.name=other"}})
	d := ModelDiff(a, b)
	if len(d) != 1 || d[0] != "model.modalities.text.encoder_dim: 32 ≠ 40" {
		t.Errorf("ModelDiff = %q, want only the encoder_dim change", d)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"encoder_dim", "input_dim", "liquid_units", "lr", "batch_size", "epochs"}
	for in, want := range map[string]string{
		"encoder_dimm": "encoder_dim", "enocder_dim": "encoder_dim", "liquid_unit": "liquid_units",
		"epoch": "epochs", "batchsize": "batch_size", "batch": "batch_size", "zzz": "", "l": "lr",
	} {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
	if d := editDistance("abcd", "acbd"); d != 1 {
		t.Errorf("transposition distance %d, want 1", d)
	}
}

func TestErrorsAreTyped(t *testing.T) {
	_, err := Load(LoadOptions{Files: []string{fixture("invalid", "bad_types.yaml")}})
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 || e.Key != "train.lr" || !strings.HasSuffix(e.Source, "bad_types.yaml") {
		t.Errorf("first error = %+v", e)
	}
}
