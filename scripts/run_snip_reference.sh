#!/usr/bin/env bash
# SNIP on LeNet-300-100 as snip-public does it (scripts/snip_reference.py): 95 and 98 %,
# biases pruned (the released code) and kept (the paper's text), seeds 0-2; two runs at a
# time, one thread each (~9 min per run on the 2-core CPU). Finished runs are skipped.
#   bash scripts/run_snip_reference.sh [out dir]   (PY=python; prints the table at the end)
set -euo pipefail
out=${1:-outputs/snip_reference}
mkdir -p "$out"
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
  OMP_NUM_THREADS=1 "${PY:-python}" scripts/snip_reference.py --sparsity "$k" --seed "$seed" \
    "${flag[@]}" --out "$file"
}
export -f run_one
printf '%s\n' "${jobs[@]}" | xargs -P 2 -I{} bash -c "run_one {} $out"
"${PY:-python}" scripts/snip_reference.py --table "$out"
