#!/usr/bin/env bash
# gpu-check.sh — the CUDA backend's GPU check (issue 7), in two halves.
#
#   scripts/gpu-check.sh build   here (no GPU, Go installed): builds the lsfuse binary and
#                                the pkg/cuda GPU test binary with CGO_ENABLED=0 (no CUDA
#                                toolkit needed) into bin/gpu/ (git-ignored), gzipped, plus
#                                a copy of ../shared/bench/ref_torch.py.
#   scripts/gpu-check.sh dry     here, before spending device time: builds (as build) and the
#                                stand-in CUDA driver (internal/fakecuda: the kernels on a CPU
#                                emulator, needs g++ and NVRTC), then runs the run half on it at
#                                a small size. Checks the script and the binaries, not a GPU's
#                                numbers or speed (PyTorch's stage fails: no CUDA there).
#   scripts/gpu-check.sh run     on the GPU machine (no Go there): builds nothing; runs the
#                                GPU tests (kernels, the executor, the trainer on the GPU),
#                                `lsfuse bench --device cuda`, PyTorch's reference at the
#                                same size, and a short quickstart training on CUDA and on
#                                the CPU (test accuracies compared), and prints one summary.
#
# Through the device tool: run build here, then
#   run(command="bash scripts/gpu-check.sh run", carry=["bin/gpu"], timeout_s=540)
# The run half stays under about 9 minutes (each stage has its own timeout: 90,
# 60, 100, 45, 40, 60, 75 and 60 s; the fourth is the timing with fp16 GEMM
# inputs, the last four are the lsfuse CLI, PyTorch and the two quickstart
# trainings). Logs are copied to $OUT when it is set. Environment:
# BATCH (256), T (32), STEPS (20), QS_EPOCHS (10, the quickstart trainings).
# The quickstart reads configs/quickstart.yaml and testdata/avdigits from the
# checkout when present, else the copies the build half put in bin/gpu.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/bin/gpu"
BATCH=${BATCH:-256} T=${T:-32} STEPS=${STEPS:-20} QS_EPOCHS=${QS_EPOCHS:-10}

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
	cp "$here/configs/bench-small.yaml" "$here/configs/quickstart.yaml" "$bin/"
	# The quickstart's data (configs/quickstart.yaml reads ../testdata/avdigits).
	tar -czf "$bin/avdigits.tar.gz" -C "$here" testdata/avdigits
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

# quickstart_config prints the quickstart config to train: the checkout's
# (the device tool copies tracked files, testdata included), else bin/gpu's
# copy with its data unpacked next to it, keeping the config's relative path.
quickstart_config() {
	if [ -f "$here/configs/quickstart.yaml" ] && [ -f "$here/testdata/avdigits/manifest.csv" ]; then
		echo "$here/configs/quickstart.yaml"
	elif [ -f "$bin/quickstart.yaml" ] && [ -f "$bin/avdigits.tar.gz" ]; then
		mkdir -p "$work/configs" && cp "$bin/quickstart.yaml" "$work/configs/" &&
			tar -xzf "$bin/avdigits.tar.gz" -C "$work" && echo "$work/configs/quickstart.yaml"
	fi
}

# quickstart_verdict compares the quickstart's test accuracies (best.ckpt)
# on CUDA and on the CPU in log: the CUDA run must have run on the GPU
# ("[cuda] device: cuda:") and reach the CPU's accuracy within 0.1 (the runs
# differ by float32 rounding, which training amplifies).
quickstart_verdict() {
	acc() { grep "^\[$1\] test " "$2" | sed -n 's/.*accuracy \([0-9.]*\).*/\1/p' | tail -1; }
	gpu=$(acc cuda "$1") cpu=$(acc cpu "$1")
	if ! grep -q '^\[cuda\] device: cuda:' "$1"; then
		echo "quickstart verdict: FAIL (the cuda run did not report a CUDA device)"
	elif [ -z "$gpu" ] || [ -z "$cpu" ]; then
		echo "quickstart verdict: FAIL (test accuracy cuda='$gpu' cpu='$cpu')"
	elif awk -v g="$gpu" -v c="$cpu" 'BEGIN { exit !(g >= c - 0.1) }'; then
		echo "quickstart verdict: ok (test accuracy cuda $gpu, cpu $cpu)"
	else
		echo "quickstart verdict: FAIL (test accuracy cuda $gpu, more than 0.1 below cpu $cpu)"
	fi
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

		echo "== 1. GPU kernel tests (pkg/cuda, -tags cudagpu), NVRTC 13 compile report, library symbols"
		gpu_tests "gpu tests" 90 -test.run 'GPU|NVRTC|RealLibrariesBind' -test.skip 'GPUMachine|GPUTrainer'

		echo "== 2. graph executor and trainer: bench-small on the GPU against the CPU"
		gpu_tests "machine parity" 60 -test.run 'GPUMachineBenchSmall|GPUMachineMixedPrecision|GPUTrainer'

		echo "== 3. graph executor timing (B=$BATCH T=$T, $STEPS steps + profile)"
		gpu_tests "machine timing" 100 -test.run 'GPUMachineTiming'

		echo "== 3b. the same with fp16 GEMM inputs (train.mixed_precision fp16; kernels cached by stage 1)"
		(export MIXED=fp16; gpu_tests "machine timing fp16" 45 -test.run 'GPUMachineTiming')

		cfg="$here/configs/bench-small.yaml"; [ -f "$cfg" ] || cfg="$bin/bench-small.yaml"
		echo "== 4. lsfuse bench --device cuda (B=$BATCH T=$T: Machine + AdamStep)"
		timeout 40 "$work/lsfuse" bench -c "$cfg" --device cuda --mode train --batch "$BATCH" --spike-steps "$T" --steps "$STEPS" --warmup 3 2>&1
		echo "lsfuse cuda exit=$?"

		echo "== 5. PyTorch reference on CUDA (B=$BATCH T=$T)"
		if [ -f "$bin/ref_torch.py" ]; then
			timeout 60 python3 "$bin/ref_torch.py" --device cuda --batch "$BATCH" --spike-steps "$T" --steps "$STEPS" 2>&1 | tail -5
			echo "ref_torch exit=${PIPESTATUS[0]}"
		else
			echo "ref_torch.py was not carried (bin/gpu/ref_torch.py)"
		fi

		echo "== 6. lsfuse train quickstart, $QS_EPOCHS epochs, --device cuda then --device cpu"
		qs=$(quickstart_config)
		if [ -z "$qs" ]; then
			echo "quickstart: no configs/quickstart.yaml with testdata/avdigits (checkout or bin/gpu)"
		else
			for dev in cuda cpu; do
				limit=75; [ "$dev" = cpu ] && limit=60
				timeout "$limit" "$work/lsfuse" train -c "$qs" --device "$dev" --epochs "$QS_EPOCHS" --run-dir "$work/runs-$dev" 2>&1 |
					grep -E '^(device:|run |epoch [0-9]+/[0-9]+:|trained|test |lsfuse: )' | sed "s/^/[$dev] /"
				echo "quickstart $dev exit=${PIPESTATUS[0]}"
			done
		fi
	} 2>&1 | tee "$log"
	quickstart_verdict "$log" | tee -a "$log"
	echo "== summary"
	grep -E '^(--- FAIL|--- PASS)|lsfuse-bench:|lsfuse-cuda-machine:|lsfuse: |host steps:|exit=|median|ms|^\[(cuda|cpu)\] (device|test)|quickstart verdict' "$log" | tail -70
	[ -n "${OUT:-}" ] && cp "$log" "$OUT/" 2>/dev/null
	for stage in "gpu tests" "machine parity" "machine timing" "machine timing fp16" "lsfuse cuda" "quickstart cuda"; do
		grep -q "$stage exit=0" "$log" || status=1
	done
	grep -q "quickstart verdict: ok" "$log" || status=1
	exit $status
}

# dry runs the run half on the stand-in driver, at a small size.
dry() {
	(build) >/dev/null || exit 1
	libs=$(cd "$here" && go run ./internal/fakecuda/build -out "$bin/fakecuda") || exit 1
	echo "== dry run on the stand-in CUDA driver in $libs (not a GPU: its numbers and times mean nothing)"
	LSFUSE_CUDA_LIBS="$libs" BATCH=${DRY_BATCH:-8} T=${DRY_T:-4} STEPS=2 QS_EPOCHS=1 run
}

case "${1:-}" in
build) build ;;
run) run ;;
dry) dry ;;
*) echo "usage: $0 build|run|dry" >&2; exit 2 ;;
esac
