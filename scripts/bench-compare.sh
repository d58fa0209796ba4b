#!/usr/bin/env bash
# Side-by-side timing of lsfuse and the PyTorch reference (../shared/bench/ref_torch.py)
# on bench-small: train and infer × batch {32,128} × T {8,32}. The two programs
# alternate, ROUNDS times per case, on the same machine; each run reports its own
# median ms/step and we print the median of those medians and the ratio
# lsfuse/PyTorch (< 1: lsfuse is faster). Needs Debian's python3-torch.
#
#   scripts/bench-compare.sh [ROUNDS]        (default 3)
#   LSFUSE=bin/lsfuse REF=../shared/bench/ref_torch.py scripts/bench-compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
LSFUSE=${LSFUSE:-bin/lsfuse}
REF=${REF:-../shared/bench/ref_torch.py}
PY=${PY:-/usr/bin/python3}
STEPS=${STEPS:-30}
THREADS=${THREADS:-2}
if [ ! -x "$LSFUSE" ]; then
  CGO_ENABLED=0 go build -o "$LSFUSE" ./cmd/lsfuse
fi
"$PY" -c 'import torch' 2>/dev/null || { echo "bench-compare needs PyTorch: apt-get install python3-torch" >&2; exit 2; }
[ -f "$REF" ] || { echo "bench-compare: reference script $REF not found" >&2; exit 2; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit} if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | tail -1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "lsfuse: $("$LSFUSE" version)"
echo "torch: $("$PY" -c 'import torch; print(torch.__version__)'), threads=$THREADS, $ROUNDS alternating rounds, $STEPS timed steps per run"
printf '\n| mode | B | T | lsfuse ms/step | PyTorch ms/step | ratio | lsfuse peak RSS MiB | PyTorch peak RSS MiB | lsfuse allocs/step |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for mode in train infer; do
  for B in 32 128; do
    for T in 8 32; do
      l=(); p=(); lr=(); pr=(); la=()
      for _ in $(seq "$ROUNDS"); do
        out=$("$LSFUSE" bench --config configs/bench-small.yaml --mode "$mode" --batch "$B" --spike-steps "$T" --steps "$STEPS" --threads "$THREADS" 2>&1)
        l+=("$(echo "$out" | grep '^lsfuse-bench:' | field median_ms_per_step)")
        lr+=("$(echo "$out" | grep '^lsfuse-bench:' | field peak_rss_mb)")
        la+=("$(echo "$out" | grep '^lsfuse-bench:' | field allocs_per_step)")
        out=$("$PY" "$REF" --mode "$mode" --batch "$B" --spike-steps "$T" --threads "$THREADS" --steps "$STEPS" 2>&1)
        p+=("$(echo "$out" | grep '^ref_torch:' | field median_ms_per_step)")
        pr+=("$(echo "$out" | grep '^timing:' | field peak_rss_mib)")
      done
      lm=$(printf '%s\n' "${l[@]}" | median); pm=$(printf '%s\n' "${p[@]}" | median)
      lrm=$(printf '%s\n' "${lr[@]}" | median); prm=$(printf '%s\n' "${pr[@]}" | median)
      lam=$(printf '%s\n' "${la[@]}" | median)
      ratio=$(awk -v a="$lm" -v b="$pm" 'BEGIN {printf "%.2f", a/b}')
      printf '| %s | %d | %d | %.1f | %.1f | %s | %.0f | %.0f | %.0f |\n' "$mode" "$B" "$T" "$lm" "$pm" "$ratio" "$lrm" "$prm" "$lam"
    done
  done
done
