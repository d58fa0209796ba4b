#!/usr/bin/env bash
# gpu-check.sh — the CUDA backend's GPU check (issue 7), in two halves.
#
#   scripts/gpu-check.sh build   here (no GPU, Go installed): builds the lsfuse binary and
#                                the pkg/cuda GPU test binary with CGO_ENABLED=0 (no CUDA
#                                toolkit needed) into bin/gpu/ (git-ignored), gzipped, plus
#                                a copy of ../shared/bench/ref_torch.py.
#   scripts/gpu-check.sh run     on the GPU machine (no Go there): builds nothing; runs the
#                                GPU tests, `lsfuse bench --device cuda` and PyTorch's
#                                reference at the same size, and prints one summary.
#
# Through the device tool: run build here, then
#   run(command="bash scripts/gpu-check.sh run", carry=["bin/gpu"], timeout_s=540)
# The run half stays under 9 minutes (each stage has its own timeout: 100, 90,
# 150, 30 and 110 s; the last two are the lsfuse CLI and PyTorch). Logs are copied
# to $OUT when it is set. Environment: BATCH (256), T (32), STEPS (20).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/bin/gpu"
BATCH=${BATCH:-256} T=${T:-32} STEPS=${STEPS:-20}

build() {
	set -e
	mkdir -p "$bin"
	cd "$here"
	CGO_ENABLED=0 go build -tags lsfuse_cuda -trimpath -ldflags="-s -w" -o "$bin/lsfuse" ./cmd/lsfuse
	CGO_ENABLED=0 go test -c -tags cudagpu -trimpath -ldflags="-s -w" -o "$bin/cuda.test" ./pkg/cuda
	gzip -f "$bin/lsfuse" "$bin/cuda.test"
	ref=""
	for f in "$here/../shared/bench/ref_torch.py" "$here/shared/bench/ref_torch.py"; do
		[ -f "$f" ] && ref=$f && break
	done
	if [ -n "$ref" ]; then cp "$ref" "$bin/ref_torch.py"; else echo "warning: ref_torch.py not found" >&2; fi
	cp "$here/configs/bench-small.yaml" "$bin/bench-small.yaml"
	ls -la "$bin"
	echo "built; now: run(command=\"bash scripts/gpu-check.sh run\", carry=[\"bin/gpu\"], timeout_s=540)"
}

# cuda_libs lists pip nvidia/*/lib and torch/lib folders for LSFUSE_CUDA_LIBS (cuBLAS and
# NVRTC ship there with PyTorch when no toolkit is installed).
cuda_libs() {
	python3 - <<'PY' 2>/dev/null
import glob, os, site, sys
roots = set(site.getsitepackages() + [site.getusersitepackages()] + [p for p in sys.path if p.endswith("-packages")])
dirs = []
for r in sorted(roots):
    dirs += sorted(glob.glob(os.path.join(r, "nvidia", "*", "lib")))
    dirs += glob.glob(os.path.join(r, "torch", "lib"))
print(":".join(d for d in dirs if os.path.isdir(d)))
PY
}

run() {
	export BATCH T STEPS # read by the timing test
	work=$(mktemp -d)
	log="$work/gpu-check.log"
	status=0
	{
		echo "== gpu-check $(date -u +%FT%TZ) batch=$BATCH T=$T steps=$STEPS"
		nvidia-smi -L 2>&1 || echo "nvidia-smi not available"
		nvidia-smi --query-gpu=driver_version,memory.total --format=csv,noheader 2>&1 || true
		libs=$(cuda_libs)
		export LSFUSE_CUDA_LIBS="${LSFUSE_CUDA_LIBS:+$LSFUSE_CUDA_LIBS:}$libs"
		export LSFUSE_CUDA_CACHE="$work/cache"
		echo "LSFUSE_CUDA_LIBS=$LSFUSE_CUDA_LIBS"
		for f in lsfuse cuda.test; do
			if [ ! -f "$bin/$f.gz" ]; then echo "missing $bin/$f.gz: run 'scripts/gpu-check.sh build' first and carry bin/gpu"; exit 2; fi
			gunzip -c "$bin/$f.gz" >"$work/$f" && chmod +x "$work/$f"
		done

		# gpu_tests NAME TIMEOUT ARGS...: runs the pkg/cuda GPU test binary.
		gpu_tests() {
			name=$1 limit=$2
			shift 2
			(
				cd "$here/pkg/cuda" 2>/dev/null || cd "$work"
				timeout "$limit" "$work/cuda.test" -test.v -test.timeout "$((limit - 10))s" "$@" 2>&1 | grep -v '^=== RUN'
				exit "${PIPESTATUS[0]}"
			)
			echo "$name exit=$?"
		}

		echo "== 1. GPU kernel tests (pkg/cuda, -tags cudagpu)"
		gpu_tests "gpu tests" 100 -test.run 'GPU' -test.skip 'GPUMachine'

		echo "== 2. graph executor: bench-small B=32 T=8 on the GPU against vm.Machine"
		gpu_tests "machine parity" 90 -test.run 'GPUMachineBenchSmall'

		echo "== 3. graph executor timing (B=$BATCH T=$T, $STEPS steps + profile)"
		gpu_tests "machine timing" 150 -test.run 'GPUMachineTiming'

		cfg="$here/configs/bench-small.yaml"; [ -f "$cfg" ] || cfg="$bin/bench-small.yaml"
		echo "== 4. lsfuse bench --device cuda (B=$BATCH T=$T; exits 2 until the trainer uses cuda.Machine)"
		timeout 30 "$work/lsfuse" bench -c "$cfg" --device cuda --mode train --batch "$BATCH" --spike-steps "$T" --steps "$STEPS" --warmup 3 2>&1
		echo "lsfuse cuda exit=$?"

		echo "== 5. PyTorch reference on CUDA (B=$BATCH T=$T)"
		if [ -f "$bin/ref_torch.py" ]; then
			timeout 110 python3 "$bin/ref_torch.py" --device cuda --batch "$BATCH" --spike-steps "$T" --steps "$STEPS" 2>&1 | tail -5
			echo "ref_torch exit=${PIPESTATUS[0]}"
		else
			echo "ref_torch.py was not carried (bin/gpu/ref_torch.py)"
		fi
	} 2>&1 | tee "$log"
	echo "== summary"
	grep -E '^(--- FAIL|--- PASS)|lsfuse-bench:|lsfuse-cuda-machine:|lsfuse: |exit=|median|ms' "$log" | tail -60
	[ -n "${OUT:-}" ] && cp "$log" "$OUT/" 2>/dev/null
	for stage in "gpu tests" "machine parity" "machine timing"; do
		grep -q "$stage exit=0" "$log" || status=1
	done
	exit $status
}

case "${1:-}" in
build) build ;;
run) run ;;
*) echo "usage: $0 build|run" >&2; exit 2 ;;
esac
