#!/usr/bin/env bash
# The runs behind docs/RESULTS.md's third round (the field's methods), each a resumable Hydra
# sweep followed by its report (re-run to finish an interrupted one), all on one thread
# (OMP_NUM_THREADS=1; two arms then share a 2-core machine):
#   init_lenet300          SNIP, GraSP, SynFlow and global magnitude at init, each with its
#                          layerwise shuffle, 90-99 %, 3 seeds: one stack of 96 (init_lenet300/methods)
#   init_lenet300_random   random masks (k in every layer) on the same protocol (init_lenet300/random)
#   snip_lenet300_30ep     SNIP at 95 and 98 % trained 30 epochs, 3 seeds (the paper's numbers)
#   unit_criteria          6 unit scores × k 50/70/90 % × 0 or 1 fine-tune epoch, 5 seeds
#   allocation             uniform, global, ERK and LAMP budgets, 90-99 %, 0 or 1 epoch, 3 seeds
# Usage: bash scripts/run_results3.sh [arm ...]   (default: all; OUT=dir, PY=python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/round3}
ARMS=("$@")
[ ${#ARMS[@]} -gt 0 ] || ARMS=(init_lenet300 init_lenet300_random snip_lenet300_30ep
                               unit_criteria allocation)

sweep() {  # sweep DIR OVERRIDES...: one resumable one-thread sweep into $OUT/DIR
  local dir=$1 t0=$SECONDS; shift
  OMP_NUM_THREADS=1 "$PY" -m prunelab.train -m "$@" "hydra.sweep.dir=$OUT/$dir"
  echo "$dir: $((SECONDS - t0)) s" | tee -a "$OUT/timings.txt"
}

mkdir -p "$OUT"
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) on $(nproc --all) CPU cores" >> "$OUT/timings.txt"
for arm in "${ARMS[@]}"; do
  case $arm in
    init_lenet300) sweep init_lenet300/methods experiment=init_lenet300 ;;
    init_lenet300_random)
      sweep init_lenet300/random experiment=init_lenet300 strategy=random_weight \
        strategy.shuffle=false ;;
    snip_lenet300_30ep)
      sweep "$arm" experiment=init_lenet300 strategy=snip strategy.shuffle=false \
        sparsity=0.95,0.98 schedule.epochs=30 ;;
    unit_criteria | allocation) sweep "$arm" "experiment=$arm" ;;
    *) echo "unknown arm $arm" >&2; exit 2 ;;
  esac
done
for report in init_lenet300 snip_lenet300_30ep unit_criteria allocation; do
  [ -d "$OUT/$report" ] && "$PY" -m prunelab.report "$OUT/$report" --title "$report"
done
"$PY" scripts/results3_tables.py "$OUT" > "$OUT/tables.md"
echo "tables: $OUT/tables.md"
