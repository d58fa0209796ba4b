#!/usr/bin/env bash
# Data-parallel throughput on this machine: trains the bench-small model and
# a larger variant on random data with 1 and 2 MPI ranks (loopback) and
# prints, per run, the training samples/s of the timed epoch and the
# gradient all-reduce time per optimiser step (in training, waiting for the
# slower rank included, and alone, ranks in step). Needs libopenmpi-dev +
# openmpi-bin; installs nothing. Results: docs/DISTRIBUTED.md.
#
#   scripts/mpi-bench.sh            # 20 global batches of 32 per epoch
#   BATCHES=40 scripts/mpi-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
command -v mpirun >/dev/null || { echo "mpi-bench: mpirun not found (apt-get install libopenmpi-dev openmpi-bin)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin="$work/train.test"
CGO_ENABLED=1 go test -tags mpi -c -o "$bin" ./pkg/train

batches=${BATCHES:-20}
cores=$(nproc)
large='model.fusion_dim=256'
for m in vision text; do
  large="$large;model.modalities.$m.input_dim=256;model.modalities.$m.encoder_dim=256"
  large="$large;model.modalities.$m.spiking_units=256;model.modalities.$m.liquid_units=256;model.modalities.$m.backbone_units=256"
done

run() { # ranks gomaxprocs set...
  local np=$1 procs=$2 sets=${3:-}
  mpirun --allow-run-as-root --oversubscribe -np "$np" \
    --mca btl self,vader,tcp --bind-to none \
    -x GOMAXPROCS="$procs" -x OPENBLAS_NUM_THREADS=1 \
    -x LSFUSE_MPI_BENCH=configs/bench-small.yaml -x LSFUSE_MPI_BENCH_SET="$sets" \
    -x LSFUSE_MPI_BENCH_BATCHES="$batches" \
    "$bin" -test.run '^TestMPIBench$' 2>&1 | grep '^mpi-bench:' || { echo "mpi-bench: run failed (np=$np)" >&2; return 1; }
}

echo "# $(date -u +%F) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for sets in "" "$large"; do
  run 1 "$cores" "$sets"
  run 1 1 "$sets"
  run 2 $(( cores / 2 > 0 ? cores / 2 : 1 )) "$sets"
done
