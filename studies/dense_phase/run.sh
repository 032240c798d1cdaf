#!/usr/bin/env bash
# Which dense phase? Each arm a resumable Hydra sweep followed by its report (re-run to finish an
# interrupted one):
#   recipes          the dense-phase recipes compared on the challenge (10 dense epochs, weight
#                    and unit pruning at the ten k, one-shot, no fine-tuning, seeds 0-2), all in
#                    one sweep so that the report shows each recipe as a group of its own:
#                      cosine 1e-3            Adam, a cosine from 1e-3 to 0 (the default until
#                                             2026-11-26)
#                      constant 2e-3, avg 0.6 Adam at 2e-3, the dense model the mean of the last
#                                             6 epochs' weights
#                      constant 1e-3, avg 0.6 the same at 1e-3
#                      constant 2e-3, avg 0.3 the mean of the last 3 epochs only
#   finetune_cosine  one-shot + 3 epochs of fine-tuning from the former dense phase (cosine 1e-3,
#                    no averaging) at five k: is the helped arm better off with it?
#   gradual_cosine   the gradual arm (ramp 2 epochs, fine-tune 1) from the former dense phase
# tables.py sets the last two beside the finetune and weight_vs_unit studies' arms.
# Usage: bash studies/dense_phase/run.sh [arm ...] [override ...]
#   (default: every arm; OUT=dir, default outputs/studies/dense_phase; PY=python)
STUDY=$(cd "$(dirname "$0")" && pwd)
source "$STUDY/../sweep.sh"
select_arms recipes finetune_cosine gradual_cosine
COSINE=(optim.lr=1e-3 optim.lr_schedule=cosine optim.average_fraction=0 sparsity=0,0.5,0.9,0.95,0.97)
start_timings
for arm in "${ARMS[@]}"; do
  case $arm in
    recipes)
      train "$arm" experiment=challenge optim.lr=1e-3 optim.lr_schedule=cosine \
        optim.average_fraction=0
      train "$arm" experiment=challenge optim.lr=2e-3 optim.lr_schedule=constant \
        optim.average_fraction=0.6
      train "$arm" experiment=challenge optim.lr=1e-3 optim.lr_schedule=constant \
        optim.average_fraction=0.6
      train "$arm" experiment=challenge optim.lr=2e-3 optim.lr_schedule=constant \
        optim.average_fraction=0.3
      report "$arm" "dense-phase recipes" ;;
    finetune_cosine) sweep "$arm" experiment=challenge schedule.finetune_epochs=3 "${COSINE[@]}" ;;
    gradual_cosine)
      sweep "$arm" experiment=challenge schedule=gradual schedule.ramp_epochs=2 \
        schedule.finetune_epochs=1 "${COSINE[@]}" ;;
    *) unknown_arm "$arm" ;;
  esac
done
tables finetune weight_vs_unit
