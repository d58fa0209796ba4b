package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/data"
	"github.com/lsfuse/lsfuse/pkg/model"
	"github.com/lsfuse/lsfuse/pkg/nn"
	"github.com/lsfuse/lsfuse/pkg/safetensors"
)

// Checkpoint metadata keys written by `lsfuse train` (besides the
// trainer's own): the resolved experiment as YAML, and the training
// split's data statistics as JSON.
const (
	metaConfig = "config"
	metaStats  = "data_stats"
)

// checkpointInfo is what a checkpoint says about the run that wrote it.
type checkpointInfo struct {
	Path string
	// Config is the embedded experiment YAML.
	Config []byte
	// Stats are the embedded data statistics (nil when absent).
	Stats *data.Stats
}

// readCheckpoint reads a checkpoint's metadata. A missing file or a file
// that is not an lsfuse training checkpoint is a usage error.
func readCheckpoint(path string) (*checkpointInfo, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, usagef("checkpoint %s does not exist", path)
	}
	_, meta, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, usagef("checkpoint %s: %v", path, err)
	}
	cfg, ok := meta[metaConfig]
	if !ok {
		return nil, usagef("checkpoint %s has no embedded experiment config: it was not written by `lsfuse train`", path)
	}
	info := &checkpointInfo{Path: path, Config: []byte(cfg)}
	if s, ok := meta[metaStats]; ok {
		info.Stats = &data.Stats{}
		if err := json.Unmarshal([]byte(s), info.Stats); err != nil {
			return nil, usagef("checkpoint %s: data statistics: %v", path, err)
		}
	}
	return info, nil
}

// doc is the checkpoint's config as a document for config.Load.
func (c *checkpointInfo) doc() config.Doc {
	return config.Doc{Name: c.Path + " (embedded config)", Data: c.Config}
}

// checkpointMeta is the metadata a run stores in its checkpoints.
func checkpointMeta(cfg *config.Config, stats *data.Stats) (map[string]string, []byte, error) {
	y, err := cfg.Marshal(true)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	meta := map[string]string{metaConfig: string(y)}
	if stats != nil {
		js, err := json.Marshal(stats)
		if err != nil {
			return nil, nil, fmt.Errorf("data statistics: %w", err)
		}
		meta[metaStats] = string(js)
	}
	return meta, y, nil
}

// loadWeights builds every parameter of net in a fresh store and fills it
// from the checkpoint. A checkpoint of another model is a usage error
// listing the mismatched parameters.
func loadWeights(net *model.Network, res *config.Resolved, path string) (*nn.Store, error) {
	store, err := nn.NewStore(res.Dtype, res.Run.Seed)
	if err != nil {
		return nil, err
	}
	if _, err := net.Build(nn.NewCtx(G.NewGraph(), store, nn.CtxOptions{}), 1); err != nil {
		return nil, err
	}
	if _, _, err := model.LoadCheckpoint(path, store); err != nil {
		return nil, usagef("incompatible checkpoint: %v", err)
	}
	return store, nil
}

// checkpointModel is a checkpoint opened for use: its embedded experiment
// (with run-time overrides), the network it describes and its weights.
type checkpointModel struct {
	ckpt  *checkpointInfo
	cfg   *config.Config
	res   *config.Resolved
	net   *model.Network
	store *nn.Store
}

// openCheckpointModel reads path, loads its embedded experiment with sets
// and environ applied, rebuilds the network and loads the weights. A
// non-empty needStats is the reason the command needs the run's data
// statistics: without them it is a usage error.
func openCheckpointModel(path string, sets, environ []string, needStats string) (*checkpointModel, error) {
	ckpt, err := readCheckpoint(path)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(config.LoadOptions{Docs: []config.Doc{ckpt.doc()}, Sets: sets, Environ: environ})
	if err != nil {
		return nil, usageError{err}
	}
	if needStats != "" && ckpt.Stats == nil {
		return nil, usagef("checkpoint %s has no data statistics: it cannot %s as its run did", path, needStats)
	}
	res, err := config.Resolve(cfg)
	if err != nil {
		return nil, err
	}
	net, err := model.NewNetwork(res.Network)
	if err != nil {
		return nil, usagef("checkpoint %s: model: %v", path, err)
	}
	store, err := loadWeights(net, res, path)
	if err != nil {
		return nil, err
	}
	return &checkpointModel{ckpt: ckpt, cfg: cfg, res: res, net: net, store: store}, nil
}
