#!/usr/bin/env bash
# The dense-phase recipes compared on the challenge (10 dense epochs, weight and unit pruning at
# the ten k, one-shot, no fine-tuning, seeds 0-2), all in one sweep dir so that the report shows
# each recipe as a group of its own, side by side (docs/RESULTS.md, "Which dense phase").
#   cosine 1e-3            Adam, a cosine from 1e-3 to 0 (the default until 2026-11-26)
#   constant 2e-3, avg 0.6 Adam at 2e-3, the dense model the mean of the last 6 epochs' weights
#   constant 1e-3, avg 0.6 the same at 1e-3
#   constant 2e-3, avg 0.3 the mean of the last 3 epochs only
# Resumable: re-run to finish an interrupted one. Usage: bash scripts/run_recipes.sh [overrides]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/recipes}
mkdir -p "$OUT"
echo "# $(date -u +%FT%TZ) on $(nproc) CPU cores, $(uname -m); overrides: $*" >> "$OUT/timings.txt"
recipe() {
  local t0=$SECONDS
  "$PY" -m prunelab.train -m experiment=challenge "hydra.sweep.dir=$OUT" "$@"
  echo "recipe $*: $((SECONDS - t0)) s" | tee -a "$OUT/timings.txt"
}
recipe optim.lr=1e-3 optim.lr_schedule=cosine optim.average_fraction=0 "$@"
recipe optim.lr=2e-3 optim.lr_schedule=constant optim.average_fraction=0.6 "$@"
recipe optim.lr=1e-3 optim.lr_schedule=constant optim.average_fraction=0.6 "$@"
recipe optim.lr=2e-3 optim.lr_schedule=constant optim.average_fraction=0.3 "$@"
"$PY" -m prunelab.report "$OUT" --title "dense-phase recipes"
