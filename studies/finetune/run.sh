#!/usr/bin/env bash
# Fine-tuning after pruning: how long, at which rate, and why the guard? Each arm a resumable
# Hydra sweep followed by its report (re-run to finish an interrupted one):
#   finetune            the challenge pruned once, then fine-tuned 3 epochs (masks fixed), weight
#                       and neuron, 3 seeds (weight_vs_unit's tables set it beside one-shot)
#   finetune_length     fine-tuning 0, 1, 2, 3, 5 epochs at k ∈ {0, .5, .9, .95}, 3 seeds
#   finetune_unguarded  the dense model fine-tuned 1, 2, 3, 5 epochs without the guard
#   finetune_lr         probe, seed 0, no guard: 3 fine-tune epochs at a constant 1e-4, a
#                       constant 1e-3, or a cosine restarted at 1e-3 (the default), after
#                       weight k = 25 / 95 % and unit k = 90 %
#   guard               probe, seed 0, no guard: 1 fine-tune epoch restarted at 1e-3, 3e-4 or
#                       1e-4 (cosine) after k = 0 and 90 % of either strategy: why a guard and
#                       not a gentler restart
# Usage: bash studies/finetune/run.sh [arm ...] [override ...]
#   (default: every arm; OUT=dir, default outputs/studies/finetune; PY=python)
STUDY=$(cd "$(dirname "$0")" && pwd)
source "$STUDY/../sweep.sh"
select_arms finetune finetune_length finetune_unguarded finetune_lr guard
PROBE=(experiment=challenge seed=0 finetune_guard=false)
start_timings
for arm in "${ARMS[@]}"; do
  case $arm in
    finetune) sweep "$arm" experiment=challenge schedule.finetune_epochs=3 ;;
    finetune_length) X=compression sweep "$arm" "experiment=$arm" ;;
    finetune_unguarded)
      X=compression sweep "$arm" experiment=finetune_length strategy=weight sparsity=0 \
        schedule.finetune_epochs=1,2,3,5 finetune_guard=false ;;
    finetune_lr)
      # a constant 1e-4, a constant 1e-3, the default (no override); weight and unit pruning
      # at different k, so two sweeps per setting
      for rate in "optim.finetune_lr=1e-4 optim.finetune_lr_schedule=constant" \
                  "optim.finetune_lr=1e-3 optim.finetune_lr_schedule=constant" ""; do
        for cells in "strategy=weight sparsity=0.25,0.95" "strategy=neuron sparsity=0.9"; do
          # shellcheck disable=SC2086  # $cells and $rate are lists of overrides
          train "$arm" "${PROBE[@]}" $cells schedule.finetune_epochs=3 $rate
        done
      done
      report "$arm" ;;
    guard)
      train "$arm" "${PROBE[@]}" strategy=weight,neuron sparsity=0,0.9 \
        schedule.finetune_epochs=1 optim.finetune_lr=1e-3,3e-4,1e-4
      report "$arm" ;;
    *) unknown_arm "$arm" ;;
  esac
done
tables
