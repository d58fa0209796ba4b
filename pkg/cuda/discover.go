package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// EnvLibs names the environment variable holding extra library folders
// (separated by the OS list separator, ':' on Linux), searched before
// every other place.
const EnvLibs = "LSFUSE_CUDA_LIBS"

// Library is one of the shared libraries the backend loads.
type Library int

const (
	// Driver is the CUDA driver API, libcuda.so.1 (installed with the
	// NVIDIA driver, never with the toolkit).
	Driver Library = iota
	// CuBLAS is libcublas.so.N (toolkit or pip nvidia-cublas).
	CuBLAS
	// NVRTC is the run-time compiler libnvrtc.so.N (toolkit or pip
	// nvidia-cuda-nvrtc).
	NVRTC
)

// String is the library's short name.
func (l Library) String() string {
	switch l {
	case Driver:
		return "driver"
	case CuBLAS:
		return "cublas"
	case NVRTC:
		return "nvrtc"
	}
	return fmt.Sprintf("library(%d)", int(l))
}

// base is the soname without version: libcuda.so, libcublas.so, ...
func (l Library) base() string {
	switch l {
	case Driver:
		return "libcuda.so"
	case CuBLAS:
		return "libcublas.so"
	case NVRTC:
		return "libnvrtc.so"
	}
	return ""
}

// sonames lists the names to try by bare soname (through the dynamic
// linker's cache), newest first.
func (l Library) sonames() []string {
	if l == Driver {
		return []string{"libcuda.so.1"}
	}
	var out []string
	for v := 13; v >= 11; v-- {
		out = append(out, l.base()+"."+strconv.Itoa(v))
	}
	return append(out, l.base())
}

// SearchDirs returns the folders searched for the CUDA libraries, in
// order: the folders of LSFUSE_CUDA_LIBS, pip nvidia/*/lib folders under
// the Python site-packages found from getenv (VIRTUAL_ENV, CONDA_PREFIX,
// HOME) and the usual system prefixes, /usr/local/cuda/lib64 (and
// $CUDA_HOME/lib64, $CUDA_PATH/lib64), then the system library folders.
// root prefixes every absolute path ("" for the real file system; tests
// pass a temporary folder). Only existing folders are returned, each once.
func SearchDirs(root string, getenv func(string) string) []string {
	var cands []string
	for _, d := range filepath.SplitList(getenv(EnvLibs)) {
		if d != "" {
			cands = append(cands, d)
		}
	}
	var pyPrefixes []string
	for _, v := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if p := getenv(v); p != "" {
			pyPrefixes = append(pyPrefixes, p)
		}
	}
	if h := getenv("HOME"); h != "" {
		pyPrefixes = append(pyPrefixes, filepath.Join(h, ".local"))
	}
	pyPrefixes = append(pyPrefixes, "/usr/local", "/usr", "/opt/conda")
	for _, p := range pyPrefixes {
		for _, pat := range []string{"lib/python3*/site-packages/nvidia/*/lib", "lib/python3*/dist-packages/nvidia/*/lib", "lib/python3/dist-packages/nvidia/*/lib"} {
			m, _ := filepath.Glob(filepath.Join(root, p, pat))
			sort.Strings(m)
			for _, d := range m {
				cands = append(cands, strings.TrimPrefix(d, root))
			}
		}
	}
	for _, v := range []string{"CUDA_HOME", "CUDA_PATH"} {
		if p := getenv(v); p != "" {
			cands = append(cands, filepath.Join(p, "lib64"))
		}
	}
	cands = append(cands, "/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
		"/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu", "/lib64", "/usr/lib/wsl/lib")
	seen := map[string]bool{}
	var out []string
	for _, d := range cands {
		d = filepath.Clean(d)
		if seen[d] {
			continue
		}
		seen[d] = true
		if st, err := os.Stat(filepath.Join(root, d)); err == nil && st.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

// Candidates lists the paths to try for lib, best first: in each folder
// of dirs (in order), files named lib's soname with the highest major
// version first (libcublas.so.13 before libcublas.so.12; the unversioned
// name last), then the bare sonames for the dynamic linker. root is as in
// SearchDirs; returned paths are without it.
func Candidates(lib Library, root string, dirs []string) []string {
	var out []string
	for _, d := range dirs {
		m, _ := filepath.Glob(filepath.Join(root, d, lib.base()+"*"))
		type cand struct {
			path  string
			major int
		}
		var cs []cand
		for _, p := range m {
			name := filepath.Base(p)
			rest := strings.TrimPrefix(name, lib.base())
			major := -1
			if rest != "" {
				if !strings.HasPrefix(rest, ".") {
					continue // libcublasLt.so...
				}
				v, err := strconv.Atoi(strings.SplitN(rest[1:], ".", 2)[0])
				if err != nil {
					continue
				}
				if lib == Driver && v != 1 {
					continue
				}
				major = v
			}
			cs = append(cs, cand{strings.TrimPrefix(p, root), major})
		}
		sort.SliceStable(cs, func(i, j int) bool {
			if cs[i].major != cs[j].major {
				return cs[i].major > cs[j].major
			}
			return len(cs[i].path) < len(cs[j].path) // libx.so.12 before libx.so.12.4.5
		})
		for _, c := range cs {
			out = append(out, c.path)
		}
	}
	return append(out, lib.sonames()...)
}

// MissingError says which part of the CUDA stack is absent: What is
// "driver", "library" or "device".
type MissingError struct {
	// What is "driver" (libcuda or cuInit failed), "library" (cuBLAS or
	// NVRTC not loadable) or "device" (no usable GPU).
	What string
	// Name is the library (cublas, nvrtc, driver) or device detail.
	Name string
	// Tried lists the paths tried, best first (libraries only).
	Tried []string
	// Err is the last underlying error.
	Err error
}

// Error says what is missing, what was tried and how to fix it.
func (e *MissingError) Error() string {
	var b strings.Builder
	switch e.What {
	case "driver":
		b.WriteString("CUDA driver not found: cannot load libcuda.so.1")
		if e.Name != "" && e.Name != "driver" {
			b.Reset()
			fmt.Fprintf(&b, "CUDA driver unusable: %s", e.Name)
		}
	case "library":
		fmt.Fprintf(&b, "CUDA library %s not found", e.Name)
	case "device":
		fmt.Fprintf(&b, "no CUDA device: %s", e.Name)
	default:
		fmt.Fprintf(&b, "CUDA %s missing: %s", e.What, e.Name)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, " (%v)", e.Err)
	}
	if len(e.Tried) > 0 {
		fmt.Fprintf(&b, "; tried %s", strings.Join(e.Tried, ", "))
	}
	switch e.What {
	case "driver":
		b.WriteString("; install the NVIDIA driver or use --device cpu")
	case "library":
		fmt.Fprintf(&b, "; install the CUDA toolkit or pip nvidia-%s wheels, or point %s at the folder holding %s; or use --device cpu", e.Name, EnvLibs, libByName(e.Name).base()+".N")
	case "device":
		b.WriteString("; use --device cpu")
	}
	return b.String()
}

// Unwrap returns the underlying loader or driver error.
func (e *MissingError) Unwrap() error { return e.Err }

func libByName(n string) Library {
	switch n {
	case "cublas":
		return CuBLAS
	case "nvrtc":
		return NVRTC
	}
	return Driver
}

// IsMissing reports whether err says part of the CUDA stack is absent,
// and which ("driver", "library", "device").
func IsMissing(err error) (string, bool) {
	var m *MissingError
	if errors.As(err, &m) {
		return m.What, true
	}
	return "", false
}
