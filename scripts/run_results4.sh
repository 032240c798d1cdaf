#!/usr/bin/env bash
# The runs behind docs/RESULTS.md's fourth round (sparse training from scratch, lottery levels,
# the whole family side by side), each a resumable Hydra sweep followed by its report (re-run
# to finish an interrupted one), one after another with torch's default threads:
#   dst_lenet300        SET, RigL and the static random ERK mask, 90/91.7/95/98 %, 30 epochs
#   imp_lenet300        IMP, 19 levels of 20 %, with both controls at every level
#   family_lenet300     one-shot global magnitude + fine-tune, and gradual, 90/95/98 %
#   snip_init_30ep      SNIP at init, 90/95/98 %, 30 epochs (the protocol of dst_lenet300)
#   rigl_100ep          RigL at the published densities (98 and 91.7 %) trained 100 epochs
# All on LeNet-300-100, 3 seeds. Usage: bash scripts/run_results4.sh [arm ...]
# (default: all; OUT=dir, PY=python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/round4}
ARMS=("$@")
[ ${#ARMS[@]} -gt 0 ] || ARMS=(dst_lenet300 imp_lenet300 family_lenet300 snip_init_30ep rigl_100ep)

source scripts/sweep.sh
start_timings
for arm in "${ARMS[@]}"; do
  case $arm in
    dst_lenet300 | imp_lenet300 | family_lenet300) sweep "$arm" "experiment=$arm" ;;
    snip_init_30ep)
      sweep "$arm" experiment=init_lenet300 strategy=snip strategy.shuffle=false \
        sparsity=0.9,0.95,0.98 schedule.epochs=30 ;;
    rigl_100ep)
      sweep "$arm" experiment=dst_lenet300 schedule=rigl sparsity=0.917,0.98 schedule.epochs=100 ;;
    *) echo "unknown arm $arm" >&2; exit 2 ;;
  esac
done
"$PY" scripts/results4_tables.py "$OUT" > "$OUT/tables.md"
echo "tables: $OUT/tables.md"
