#!/usr/bin/env bash
# Does a sensitivity scan's per-layer budget beat uniform pruning at the same global sparsity?
# Each arm a resumable Hydra sweep followed by its report (re-run to finish an interrupted one):
#   scan_mlp        experiment=sensitivity: each hidden layer of the challenge MLP alone at the
#                   challenge's 9 k, from the challenge's dense model, seeds 0-2
#   scan_lenet5     the same for LeNet-5-Caffe's conv1, conv2 and fc1 (lenet5_channels' dense model)
#   budget_mlp      per seed and max_drop (tables.py's MAX_DROPS): the budget of that seed's scan,
#                   and uniform (strategy=weight) and global magnitude (global_weight) at its
#                   global sparsity g; one-shot from the same dense model, no fine-tuning
#   budget_lenet5   the same on LeNet-5
#   budget_mlp_ft   budget_mlp with one epoch of fine-tuning after the prune
# The budget arms read the scans: run the scans first (`tables.py --budgets` prints the budgets).
# Usage: bash studies/sensitivity/run.sh [arm ...] [override ...]
#   (default: every arm; OUT=dir, default outputs/studies/sensitivity; PY=python)
STUDY=$(cd "$(dirname "$0")" && pwd)
source "$STUDY/../sweep.sh"
select_arms scan_mlp scan_lenet5 budget_mlp budget_lenet5 budget_mlp_ft

budget_arm() {  # budget_arm ARM SCAN PRESET [OVERRIDE...]: each budget of the scan's seeds
  # and its controls at the same global sparsity, every run given the OVERRIDEs
  local arm=$1 scan=$2 preset=$3 lines seed drop g rest words
  shift 3
  lines=$("$PY" "$STUDY/tables.py" --budgets "$OUT/$scan")
  while read -r seed drop g rest; do
    [ -n "$seed" ] || continue
    read -r -a words <<< "$rest"
    echo "$arm: seed $seed, max_drop $drop points: ${words[*]}"
    train "$arm" "experiment=$preset" "seed=$seed" "${words[@]}" "$@" < /dev/null
    train "$arm" "experiment=$preset" "seed=$seed" strategy=weight,global_weight "sparsity=$g" "$@" \
      < /dev/null
  done <<< "$lines"
  [ ! -d "$OUT/$arm" ] || report "$arm"
}

start_timings
for arm in "${ARMS[@]}"; do
  case $arm in
    scan_mlp) sweep "$arm" experiment=sensitivity ;;
    scan_lenet5) sweep "$arm" "experiment=$arm" ;;
    budget_mlp) budget_arm "$arm" scan_mlp budget_mlp ;;
    budget_lenet5) budget_arm "$arm" scan_lenet5 budget_lenet5 ;;
    budget_mlp_ft) budget_arm "$arm" scan_mlp budget_mlp schedule.finetune_epochs=1 ;;
    *) unknown_arm "$arm" ;;
  esac
done
tables
