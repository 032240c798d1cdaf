#!/usr/bin/env bash
# The runs behind docs/RESULTS.md: the challenge protocol (10 dense epochs, 3 seeds, the k grid)
# in three arms with the same post-training budget of 3 epochs, plus random-pruning controls.
#   oneshot   prune once, no fine-tuning   weight, neuron, random_weight, random_neuron
#   finetune  prune once, fine-tune 3 epochs (masks fixed)            weight, neuron
#   gradual   cubic ramp 0 → k over 2 epochs, fine-tune 1 epoch        weight, neuron
# and the last two again from the dense phase used before 2026-11-26 (Adam, a cosine from
# 1e-3, no averaging) at five k, to check whether they are better off with it (they are not:
# docs/RESULTS.md, "Which dense phase").
# Each arm is a resumable Hydra sweep (re-run to finish an interrupted one) followed by its
# report; all arms share the dense models (dense cache), so only the post-training epochs cost.
# Usage: bash scripts/run_results.sh [extra overrides, e.g. trainer=gpu]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/results}

arm() {
  local name=$1; shift
  local t0=$SECONDS
  "$PY" -m prunelab.train -m experiment=challenge "hydra.sweep.dir=$OUT/$name" "$@"
  "$PY" -m prunelab.report "$OUT/$name" --title "$name"
  echo "arm $name: $((SECONDS - t0)) s" | tee -a "$OUT/timings.txt"
}

mkdir -p "$OUT"
echo "# $(date -u +%FT%TZ) on $(nproc) CPU cores, $(uname -m); overrides: $*" >> "$OUT/timings.txt"
arm oneshot strategy=weight,neuron,random_weight,random_neuron "$@"
arm finetune schedule.finetune_epochs=3 "$@"
arm gradual schedule=gradual schedule.ramp_epochs=2 schedule.finetune_epochs=1 "$@"
COSINE=(optim.lr=1e-3 optim.lr_schedule=cosine optim.average_fraction=0 sparsity=0,0.5,0.9,0.95,0.97)
arm finetune_cosine schedule.finetune_epochs=3 "${COSINE[@]}" "$@"
arm gradual_cosine schedule=gradual schedule.ramp_epochs=2 schedule.finetune_epochs=1 \
  "${COSINE[@]}" "$@"
"$PY" scripts/results_tables.py "$OUT" > "$OUT/tables.md"
echo "tables: $OUT/tables.md"
