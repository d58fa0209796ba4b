package cuda

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/lsfuse/lsfuse/internal/csrc"
)

//go:embed kernels/*.cu
var kernelFS embed.FS

// Source returns the CUDA C source of every kernel, the files of
// kernels/ concatenated in name order: one NVRTC program, one module.
func Source() (string, error) {
	names, err := fs.Glob(kernelFS, "kernels/*.cu")
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		src, err := kernelFS.ReadFile(n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "// ---- %s ----\n", n)
		b.Write(src)
		b.WriteString("\n")
	}
	return b.String(), nil
}

// KernelParams maps every kernel in kernels/*.cu to its parameter kinds,
// one letter per parameter: 'p' a float pointer (Buffer), 'q' an int
// pointer (Buffer of int32), 'h' a pointer to 16-bit values (unsigned
// short*: a Buffer of packed binary16 or bfloat16 GEMM operands, 2 bytes
// per value), 'i' an int, 'f' a float. Launch checks its
// arguments against this before calling the driver; a CPU test checks it
// against the sources.
var KernelParams = map[string]string{
	"lsf_add": "pppi", "lsf_sub": "pppi", "lsf_mul": "pppi", "lsf_add_row": "pppii", "lsf_mul_row": "pppii", "lsf_div_row": "pppii",
	"lsf_scale": "pfpi", "lsf_neg": "ppi", "lsf_square": "ppi", "lsf_log": "ppi",
	"lsf_exp": "ppi", "lsf_div": "pppi", "lsf_fill": "pfi", "lsf_accum": "ppi",
	"lsf_pack_f16": "phi", "lsf_pack_bf16": "phi",
	"lsf_relu": "ppi", "lsf_relu_grad": "pppi", "lsf_tanh": "ppi", "lsf_tanh_grad": "pppi",
	"lsf_sigmoid": "ppi", "lsf_sigmoid_grad": "pppi", "lsf_silu": "ppi", "lsf_silu_grad": "pppi",
	"lsf_lecun_tanh": "ppi", "lsf_lecun_tanh_grad": "pppi", "lsf_gelu": "ppi", "lsf_gelu_grad": "pppi",
	"lsf_heaviside": "ppi", "lsf_spike_grad": "pppiiff", "lsf_lif_seq_forward": "ppppppiiiiiiff", "lsf_lif_seq_backward": "pppppppiiiiiiffiff",
	"lsf_sum_rows": "ppii", "lsf_sum_mid": "ppiiif", "lsf_sum_all": "ppi", "lsf_sum_sq": "ppif", "lsf_broadcast_mid": "ppiiif",
	"lsf_channel_sum": "ppiii", "lsf_add_channel": "ppiii", "lsf_gather_cols": "pqpiii",
	"lsf_substitute": "ppppiiii", "lsf_mask_rows": "pppiiii", "lsf_missing_grad": "pppiiii",
	"lsf_weighted": "pppiiif", "lsf_weighted_logit_grad": "ppppiiif", "lsf_weighted_sum_l": "pppiii", "lsf_spread_l": "pppiii",
	"lsf_slice_get": "ppiiiii", "lsf_slice_put": "ppiiiii", "lsf_swap12": "ppiiii", "lsf_mix_rows": "pqqppiiii",
	"lsf_gather_rows": "pqpii", "lsf_scatter_add_rows": "pqpii",
	"lsf_ltc_synapses": "ppppppiii", "lsf_ltc_synapses_grad_v": "pppppppiii", "lsf_ltc_synapses_grad_p": "pppppppiii",
	"lsf_softplus": "ppi", "lsf_softplus_grad": "pppi",
	"lsf_masked_max_l": "pppiii", "lsf_masked_max_l_grad": "ppppiii",
	"lsf_layernorm": "ppppppiif", "lsf_layernorm_grad_x": "ppppppii", "lsf_layernorm_grad_wb": "ppppppii",
	"lsf_softmax": "pppiii", "lsf_softmax_grad": "pppii", "lsf_xent": "pqppiii", "lsf_xent_grad": "pqpiiif",
	"lsf_maxpool1d": "ppqiiiiii", "lsf_maxpool1d_grad": "pqpiii", "lsf_maxpool2d": "ppqiiiiiiiiiii",
	"lsf_im2col2d": "ppiiiiiiiiiii", "lsf_col2im2d": "ppiiiiiiiiiii",
	"lsf_im2col3d": "ppiiiiiiiiiiiiiiiiiii", "lsf_col2im3d": "ppiiiiiiiiiiiiiiiiiii",
	"lsf_channel_stats": "pppiii", "lsf_bn_grad_sums": "ppppppiiif", "lsf_bn_grad_x": "ppppppppiiifi", "lsf_channel_affine": "ppppppiiif", "lsf_bn_running": "ppppiff",
	"lsf_adam":        "ppppiffffff",
	"lsf_spike_stats": "ppii", "lsf_cfc_bias_act": "ppiiiii", "lsf_cfc_act_grad": "pppiiii", "lsf_cfc_heads": "ppppppiiiifi", "lsf_cfc_heads_grad": "pppppppiiiifii",
}

// kernelDecl matches `extern "C" __global__ void name(params)`.
var kernelDecl = regexp.MustCompile(`extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)`)

// ParseKernels lists the kernels defined in src with their parameter
// kinds (as in KernelParams), and checks that braces, parentheses and
// brackets balance outside comments. It is what the CPU tests use to keep
// KernelParams and the sources in step.
func ParseKernels(src string) (map[string]string, error) {
	if err := checkBalanced(src); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, m := range kernelDecl.FindAllStringSubmatch(csrc.StripComments(src), -1) {
		name := m[1]
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("kernel %s defined twice", name)
		}
		var kinds strings.Builder
		for _, p := range strings.Split(m[2], ",") {
			p = strings.TrimSpace(p)
			switch {
			case p == "":
			case strings.Contains(p, "float*"):
				kinds.WriteByte('p')
			case strings.Contains(p, "int*"):
				kinds.WriteByte('q')
			case strings.Contains(p, "unsigned short*"):
				kinds.WriteByte('h')
			case strings.HasPrefix(p, "int "):
				kinds.WriteByte('i')
			case strings.HasPrefix(p, "float "):
				kinds.WriteByte('f')
			default:
				return nil, fmt.Errorf("kernel %s: unsupported parameter %q", name, p)
			}
		}
		out[name] = kinds.String()
	}
	return out, nil
}

// checkBalanced reports the first unbalanced (, [ or { with its line.
func checkBalanced(src string) error {
	code := csrc.StripComments(src)
	pairs := map[byte]byte{')': '(', ']': '[', '}': '{'}
	var stack []byte
	var lines []int
	line := 1
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch c {
		case '\n':
			line++
		case '(', '[', '{':
			stack = append(stack, c)
			lines = append(lines, line)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return fmt.Errorf("kernel source line %d: unmatched %q", line, c)
			}
			stack, lines = stack[:len(stack)-1], lines[:len(lines)-1]
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("kernel source line %d: %q never closed", lines[len(lines)-1], stack[len(stack)-1])
	}
	return nil
}

// checkArgs verifies launch arguments against KernelParams.
func checkArgs(name string, args []any) error {
	kinds, ok := KernelParams[name]
	if !ok {
		return fmt.Errorf("cuda: unknown kernel %s", name)
	}
	if len(args) != len(kinds) {
		return fmt.Errorf("cuda: %s takes %d arguments, got %d", name, len(kinds), len(args))
	}
	if len(args) > maxKernelArgs {
		return fmt.Errorf("cuda: %s has %d parameters, more than the launcher's %d", name, len(args), maxKernelArgs)
	}
	for i, a := range args {
		var ok bool
		switch kinds[i] {
		case 'p', 'q', 'h':
			_, ok = a.(Buffer)
		case 'i':
			switch a.(type) {
			case int, int32:
				ok = true
			}
		case 'f':
			switch a.(type) {
			case float32, float64:
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("cuda: %s argument %d is %T, want kind %q", name, i, a, kinds[i])
		}
	}
	return nil
}

// maxKernelArgs bounds the number of parameters of a kernel (checked by
// checkArgs; the launch parameter block has this many slots).
const maxKernelArgs = 24

// packArgs lays launch arguments (checked by checkArgs) out as one
// 8-byte slot each, as cuLaunchKernel reads them through its parameter
// pointers: a Buffer's device address, an int as int32, a float as
// float32 (little-endian: the value sits in the slot's first bytes).
func packArgs(args []any) []uint64 {
	vals := make([]uint64, len(args))
	packArgsInto(vals, args)
	return vals
}

// packArgsInto is packArgs into vals (len(vals) == len(args)).
func packArgsInto(vals []uint64, args []any) {
	for i, a := range args {
		switch v := a.(type) {
		case Buffer:
			vals[i] = uint64(v.Ptr)
		case int:
			vals[i] = uint64(uint32(int32(v)))
		case int32:
			vals[i] = uint64(uint32(v))
		case float32:
			vals[i] = uint64(math.Float32bits(v))
		case float64:
			vals[i] = uint64(math.Float32bits(float32(v)))
		}
	}
}

// CacheKey is the on-disk cache key of the compiled module: SHA-256 of
// the source, the architecture (sm_90) and the NVRTC version, so a new
// source, device or compiler recompiles.
func CacheKey(src, arch, nvrtcVersion string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", arch, nvrtcVersion)
	h.Write([]byte(src))
	return hex.EncodeToString(h.Sum(nil))[:32]
}
