#!/usr/bin/env bash
# SNIP on LeNet-300-100 as snip-public does it (snip_reference.py, beside this file): 95 and
# 98 %, biases pruned (the released code) and kept (the paper's text), seeds 0-2; two runs at a
# time, one thread each (~9 min per run on the 2-core CPU). Finished runs are skipped; the
# table is printed at the end and written to $OUT/tables.md. No Hydra, no presets, one arm.
# Usage: bash studies/snip_reference/run.sh
#   (OUT=dir, default outputs/studies/snip_reference; PY=python)
STUDY=$(cd "$(dirname "$0")" && pwd)
source "$STUDY/../sweep.sh"
select_arms snip_reference
mkdir -p "$OUT"
jobs=()
for k in 0.98 0.95; do
  for bias in pruned kept; do
    for seed in 0 1 2; do
      jobs+=("$k $bias $seed")
    done
  done
done
run_one() {
  local k=$1 bias=$2 seed=$3 out=$4
  local file="$out/k${k}_biases-${bias}_seed${seed}.json"
  [[ -f $file ]] && return 0
  local flag=()
  [[ $bias == kept ]] && flag=(--keep-biases)
  OMP_NUM_THREADS=1 "$PY" studies/snip_reference/snip_reference.py --sparsity "$k" \
    --seed "$seed" "${flag[@]}" --out "$file"
}
export -f run_one
export PY
printf '%s\n' "${jobs[@]}" | xargs -P 2 -I{} bash -c "run_one {} $OUT"
tables
cat "$OUT/tables.md"
