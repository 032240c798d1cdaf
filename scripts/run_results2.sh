#!/usr/bin/env bash
# The runs behind docs/RESULTS.md's second round (issue 14), each a resumable Hydra sweep of a
# preset in conf/experiment/ followed by its report (re-run to finish an interrupted one):
#   han_lenet300      Han et al. 2015's LeNet-300-100 at their per-layer sparsities, 3 seeds
#   lottery_lenet300  lottery tickets and their two controls at six k, 3 seeds
#   finetune_length   fine-tuning 0, 1, 2, 3, 5 epochs at k ∈ {0, .5, .9, .95}, both strategies
#   oneshot_robust    the one-shot preset's dense phase against the default's, 3 seeds
# Usage: bash scripts/run_results2.sh [arm ...]   (default: all four; OUT=dir, PY=python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/round2}
ARMS=("$@")
[ ${#ARMS[@]} -gt 0 ] || ARMS=(han_lenet300 lottery_lenet300 finetune_length oneshot_robust)

mkdir -p "$OUT"
echo "# $(date -u +%FT%TZ) on $(nproc --all) CPU cores, $(uname -m)" >> "$OUT/timings.txt"
for arm in "${ARMS[@]}"; do
  t0=$SECONDS
  "$PY" -m prunelab.train -m "experiment=$arm" "hydra.sweep.dir=$OUT/$arm"
  "$PY" -m prunelab.report "$OUT/$arm" --title "$arm" --x compression
  echo "arm $arm: $((SECONDS - t0)) s" | tee -a "$OUT/timings.txt"
done
"$PY" scripts/results2_tables.py "$OUT" > "$OUT/tables.md"
echo "tables: $OUT/tables.md"
