#!/usr/bin/env bash
# The runs behind docs/RESULTS.md's second round, each a resumable Hydra sweep followed by its
# report (re-run to finish an interrupted one):
#   han_lenet300              Han et al. 2015's LeNet-300-100 at their per-layer sparsities, 5 seeds
#   han_lenet300_1thread      the same with one thread (OMP_NUM_THREADS=1): another numeric setting
#   lottery_lenet300          lottery tickets and their two controls at six k, 5 seeds
#   finetune_length           fine-tuning 0, 1, 2, 3, 5 epochs at k ∈ {0, .5, .9, .95}, 3 seeds
#   finetune_unguarded        the dense model fine-tuned 1, 2, 3, 5 epochs without the guard
#   oneshot_5seeds            the challenge's one-shot at k ∈ {0, .5, .9, .95}, seeds 0-4
#   oneshot_5seeds_1thread    the same with one thread
# Usage: bash scripts/run_results2.sh [arm ...]   (default: all; OUT=dir, PY=python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/round2}
ARMS=("$@")
[ ${#ARMS[@]} -gt 0 ] || ARMS=(han_lenet300 han_lenet300_1thread lottery_lenet300 finetune_length
                               finetune_unguarded oneshot_5seeds oneshot_5seeds_1thread)
ONESHOT=(experiment=challenge strategy=weight,neuron sparsity=0,0.5,0.9,0.95 seed=0,1,2,3,4)

sweep() {  # sweep ARM THREADS OVERRIDES...: one resumable sweep into $OUT/ARM, then its report
  local arm=$1 threads=$2; shift 2
  local env=() t0=$SECONDS
  [ "$threads" = default ] || env=(env "OMP_NUM_THREADS=$threads")
  "${env[@]}" "$PY" -m prunelab.train -m "$@" "hydra.sweep.dir=$OUT/$arm"
  "$PY" -m prunelab.report "$OUT/$arm" --title "$arm" --x compression
  echo "arm $arm: $((SECONDS - t0)) s" | tee -a "$OUT/timings.txt"
}

mkdir -p "$OUT"
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) on $(nproc --all) CPU cores" >> "$OUT/timings.txt"
for arm in "${ARMS[@]}"; do
  case $arm in
    han_lenet300 | lottery_lenet300 | finetune_length) sweep "$arm" default "experiment=$arm" ;;
    han_lenet300_1thread) sweep "$arm" 1 experiment=han_lenet300 ;;
    finetune_unguarded)
      sweep "$arm" default experiment=finetune_length strategy=weight sparsity=0 \
        schedule.finetune_epochs=1,2,3,5 finetune_guard=false ;;
    oneshot_5seeds) sweep "$arm" default "${ONESHOT[@]}" ;;
    oneshot_5seeds_1thread) sweep "$arm" 1 "${ONESHOT[@]}" ;;
    *) echo "unknown arm $arm" >&2; exit 2 ;;
  esac
done
"$PY" scripts/results2_tables.py "$OUT" > "$OUT/tables.md"
echo "tables: $OUT/tables.md"
