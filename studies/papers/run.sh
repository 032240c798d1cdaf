#!/usr/bin/env bash
# Does prunelab reproduce the papers' own numbers? Each arm a resumable Hydra sweep followed by
# its report (re-run to finish an interrupted one):
#   han_lenet300          Han et al. 2015's LeNet-300-100 at their per-layer sparsities, 5 seeds
#   han_lenet300_1thread  the same with one thread (OMP_NUM_THREADS=1): another numeric setting
#   lenet5_han            LeNet-5-Caffe, gradual magnitude pruning to Han et al.'s per-layer
#                         sparsities (8.4 % density) and the dense reference trained as long
# Usage: bash studies/papers/run.sh [arm ...] [override ...]
#   (default: every arm; OUT=dir, default outputs/studies/papers; PY=python)
STUDY=$(cd "$(dirname "$0")" && pwd)
source "$STUDY/../sweep.sh"
select_arms han_lenet300 han_lenet300_1thread lenet5_han
start_timings
for arm in "${ARMS[@]}"; do
  case $arm in
    han_lenet300) X=compression sweep "$arm" "experiment=$arm" ;;
    han_lenet300_1thread) THREADS=1 X=compression sweep "$arm" experiment=han_lenet300 ;;
    lenet5_han) sweep "$arm" "experiment=$arm" ;;
    *) unknown_arm "$arm" ;;
  esac
done
tables
