#!/usr/bin/env bash
# Sparse from the start: does moving the weights (SET, RigL) pay, and how does the whole family
# compare at its training cost? Each arm a resumable Hydra sweep followed by its report (re-run
# to finish an interrupted one), one after another with torch's default threads, 3 seeds:
#   dst_lenet300        SET, RigL and the static random ERK mask, 90/91.7/95/98 %, 30 epochs
#   family_lenet300     one-shot global magnitude + fine-tune, and gradual, 90/95/98 %
#   rigl_100ep          RigL at the published densities (98 and 91.7 %) trained 100 epochs
#   lenet5_dst          LeNet-5-Caffe: RigL and the static random ERK mask at 2 % density, 20
#                       epochs
#   lenet5_rigl_40ep    LeNet-5-Caffe: RigL at 2 % density trained 40 epochs
#   lenet5_rigl_100ep   LeNet-5-Caffe: RigL at 2 % density trained 100 epochs, the published
#                       comparison's length
# tables.py sets them beside the init study's snip_init_30ep and lenet5_snip and the lottery
# study's imp_lenet300.
# Usage: bash studies/sparse_training/run.sh [arm ...] [override ...]
#   (default: every arm; OUT=dir, default outputs/studies/sparse_training; PY=python)
STUDY=$(cd "$(dirname "$0")" && pwd)
source "$STUDY/../sweep.sh"
select_arms dst_lenet300 family_lenet300 rigl_100ep lenet5_dst lenet5_rigl_40ep lenet5_rigl_100ep
start_timings
for arm in "${ARMS[@]}"; do
  case $arm in
    dst_lenet300 | family_lenet300 | lenet5_dst) sweep "$arm" "experiment=$arm" ;;
    rigl_100ep)
      sweep "$arm" experiment=dst_lenet300 schedule=rigl sparsity=0.917,0.98 schedule.epochs=100 ;;
    lenet5_rigl_40ep) sweep "$arm" experiment=lenet5_dst schedule=rigl schedule.epochs=40 ;;
    lenet5_rigl_100ep) sweep "$arm" experiment=lenet5_dst schedule=rigl schedule.epochs=100 ;;
    *) unknown_arm "$arm" ;;
  esac
done
tables init lottery
