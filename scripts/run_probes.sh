#!/usr/bin/env bash
# The one-seed probes behind two of docs/RESULTS.md's design decisions (seed 0, the challenge's
# dense models, no fine-tune guard, so that every fine-tune shows what it did):
#   finetune_lr     3 fine-tune epochs at a constant 1e-4, a constant 1e-3, or a cosine
#                   restarted at 1e-3 (the default), after weight k = 25 / 95 % and unit k = 90 %
#   guard           1 fine-tune epoch restarted at 1e-3, 3e-4 or 1e-4 (cosine) after k = 0 and
#                   k = 90 % of either strategy: why a guard and not a gentler restart
# Resumable; each probe is one sweep dir with one group per setting in its report.
# Usage: bash scripts/run_probes.sh [probe ...]   (default: both; OUT=dir, PY=python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/probes}
PROBES=("$@")
[ ${#PROBES[@]} -gt 0 ] || PROBES=(finetune_lr guard)
COMMON=(experiment=challenge seed=0 finetune_guard=false)

mkdir -p "$OUT"
for probe in "${PROBES[@]}"; do
  case $probe in
    finetune_lr)
      # a constant 1e-4, a constant 1e-3, the default (no override); weight and unit pruning
      # at different k, so two sweeps per setting
      for rate in "optim.finetune_lr=1e-4 optim.finetune_lr_schedule=constant" \
                  "optim.finetune_lr=1e-3 optim.finetune_lr_schedule=constant" ""; do
        for cells in "strategy=weight sparsity=0.25,0.95" "strategy=neuron sparsity=0.9"; do
          # shellcheck disable=SC2086  # $cells and $rate are lists of overrides
          "$PY" -m prunelab.train -m "${COMMON[@]}" "hydra.sweep.dir=$OUT/$probe" \
            $cells schedule.finetune_epochs=3 $rate
        done
      done ;;
    guard)
      "$PY" -m prunelab.train -m "${COMMON[@]}" "hydra.sweep.dir=$OUT/$probe" \
        strategy=weight,neuron sparsity=0,0.9 schedule.finetune_epochs=1 \
        optim.finetune_lr=1e-3,3e-4,1e-4 ;;
    *) echo "unknown probe $probe" >&2; exit 2 ;;
  esac
  "$PY" -m prunelab.report "$OUT/$probe" --title "$probe"
done
