#!/usr/bin/env bash
# Data-parallel (MPI) tests: builds the mpi-tagged test binary of pkg/train
# and runs it under mpirun with 2 ranks on loopback. Installs nothing: it
# needs Debian libopenmpi-dev + openmpi-bin (mpirun, pkg-config ompi-c),
# which .ci/run installs. Exits non-zero when any check fails.
#
#   1. two ranks with a local batch of B/2 reproduce one process with batch B;
#   2. a rank that fails with an error aborts the job: non-zero exit, the rank
#      named, no hang;
#   3. a rank killed with SIGKILL ends the job: non-zero exit, no hang.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

for cmd in mpirun pkg-config; do
  command -v "$cmd" >/dev/null || { echo "mpi-test: $cmd not found (apt-get install libopenmpi-dev openmpi-bin)" >&2; exit 1; }
done
pkg-config --exists ompi-c || { echo "mpi-test: pkg-config ompi-c not found (apt-get install libopenmpi-dev)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin="$work/train.test"
CGO_ENABLED=1 go test -tags mpi -c -o "$bin" ./pkg/train
CGO_ENABLED=1 go test -tags mpi -c -o "$work/dist.test" ./pkg/dist

# Loopback only, any user (CI runs as root), more ranks than cores allowed,
# one BLAS/Go thread budget per rank.
mpi=(mpirun --allow-run-as-root --oversubscribe -np 2
  --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo
  -x GOMAXPROCS=1 -x OPENBLAS_NUM_THREADS=1)
limit=180 # seconds: a hang is a failure

fail=0
echo "== mpi-test: collectives (2 ranks)"
if ! timeout "$limit" "${mpi[@]}" "$work/dist.test" -test.run 'MPI' -test.v >"$work/dist.log" 2>&1; then
  cat "$work/dist.log"; echo "mpi-test: FAIL collectives" >&2; fail=1
else
  grep -E '^(--- |ok|PASS)' "$work/dist.log" | sort -u
fi

echo "== mpi-test: 2 ranks with batch B/2 reproduce 1 process with batch B"
if ! timeout "$limit" "${mpi[@]}" "$bin" -test.run 'TestMPIDataParallelMatchesSingleProcess' -test.v >"$work/eq.log" 2>&1; then
  cat "$work/eq.log"; echo "mpi-test: FAIL equivalence" >&2; fail=1
elif [ "$(grep -c -- '--- PASS: TestMPIDataParallelMatchesSingleProcess' "$work/eq.log")" != 2 ]; then
  cat "$work/eq.log"; echo "mpi-test: FAIL equivalence did not pass on both ranks" >&2; fail=1
else
  grep -E 'max weight difference' "$work/eq.log" | sed 's/^ *//'
fi

for mode in error kill; do
  echo "== mpi-test: a rank that fails ($mode) ends the job"
  set +e
  timeout "$limit" "${mpi[@]}" -x LSFUSE_MPI_TEST_FAIL="$mode" "$bin" -test.run 'TestMPIRankFailure' >"$work/$mode.log" 2>&1
  rc=$?
  set -e
  if [ "$rc" = 124 ]; then
    cat "$work/$mode.log"; echo "mpi-test: FAIL the job hung after a rank failed ($mode)" >&2; fail=1
  elif [ "$rc" = 0 ]; then
    cat "$work/$mode.log"; echo "mpi-test: FAIL the job exited 0 after a rank failed ($mode)" >&2; fail=1
  else
    case $mode in
      error) want='rank 1 of 2 failed: .*injected failure' ;;
      kill) want='rank 1 .*(signal 9|Killed)' ;;
    esac
    if grep -Eq "$want" "$work/$mode.log"; then
      echo "exit $rc: $(grep -Eo "$want" "$work/$mode.log" | head -1)"
    else
      cat "$work/$mode.log"; echo "mpi-test: FAIL no message naming rank 1 ($mode)" >&2; fail=1
    fi
  fi
done

if [ "$fail" != 0 ]; then
  echo "mpi-test: FAILED" >&2
  exit 1
fi
echo "mpi-test: ok"
