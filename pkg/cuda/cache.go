package cuda

import (
	"fmt"
	"os"
	"path/filepath"
)

// EnvCache names the environment variable that overrides the folder of
// compiled kernel modules (default: the user cache folder, lsfuse/cuda).
const EnvCache = "LSFUSE_CUDA_CACHE"

// CacheDir is the folder of compiled modules: $LSFUSE_CUDA_CACHE, else
// os.UserCacheDir()/lsfuse/cuda, else the temporary folder's
// lsfuse-cuda.
func CacheDir(getenv func(string) string) string {
	if d := getenv(EnvCache); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "lsfuse", "cuda")
	}
	return filepath.Join(os.TempDir(), "lsfuse-cuda")
}

// cachedModule returns the module cached under key in dir, or compiles
// it with build and stores it (written to a temporary file, then renamed:
// concurrent runs never read half a file). A cache that cannot be written
// is not an error: the module is returned anyway.
func cachedModule(dir, key string, build func() ([]byte, error)) ([]byte, bool, error) {
	path := filepath.Join(dir, key+".cubin")
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return b, true, nil
	}
	b, err := build()
	if err != nil {
		return nil, false, err
	}
	if len(b) == 0 {
		return nil, false, fmt.Errorf("cuda: compiler returned an empty module")
	}
	if os.MkdirAll(dir, 0o755) == nil {
		if f, err := os.CreateTemp(dir, key+".*.tmp"); err == nil {
			_, werr := f.Write(b)
			cerr := f.Close()
			if werr == nil && cerr == nil {
				_ = os.Rename(f.Name(), path)
			} else {
				_ = os.Remove(f.Name())
			}
		}
	}
	return b, false, nil
}
