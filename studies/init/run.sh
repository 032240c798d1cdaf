#!/usr/bin/env bash
# Pruning at initialisation: do SNIP, GraSP and SynFlow find more than a per-layer budget? Each
# arm a resumable Hydra sweep followed by its report (re-run to finish an interrupted one):
#   init_lenet300         SNIP, GraSP, SynFlow and global magnitude at init, each with its
#                         layerwise shuffle, 90-99 %, 3 seeds: one stack of 96, one thread
#                         (init_lenet300/methods)
#   init_lenet300_random  random masks (k in every layer) on the same protocol, one thread
#                         (init_lenet300/random)
#   snip_lenet300_30ep    SNIP at 95 and 98 % trained 30 epochs, 3 seeds, one thread (the
#                         paper's numbers)
#   snip_init_30ep        SNIP at init, 90/95/98 %, 30 epochs (the protocol of dst_lenet300)
#   lenet5_snip           LeNet-5-Caffe, SNIP at 2 % density, the protocol of lenet5_dst (the
#                         sparse_training study's preset)
# The last two enter the sparse_training study's tables.
# Usage: bash studies/init/run.sh [arm ...] [override ...]
#   (default: every arm; OUT=dir, default outputs/studies/init; PY=python)
STUDY=$(cd "$(dirname "$0")" && pwd)
ALSO_CONF=(sparse_training)
source "$STUDY/../sweep.sh"
select_arms init_lenet300 init_lenet300_random snip_lenet300_30ep snip_init_30ep lenet5_snip
start_timings
for arm in "${ARMS[@]}"; do
  case $arm in
    init_lenet300)
      THREADS=1 train init_lenet300/methods experiment=init_lenet300
      report init_lenet300 ;;
    init_lenet300_random)
      THREADS=1 train init_lenet300/random experiment=init_lenet300 strategy=random_weight \
        strategy.shuffle=false
      report init_lenet300 ;;
    snip_lenet300_30ep)
      THREADS=1 sweep "$arm" experiment=init_lenet300 strategy=snip strategy.shuffle=false \
        sparsity=0.95,0.98 schedule.epochs=30 ;;
    snip_init_30ep)
      sweep "$arm" experiment=init_lenet300 strategy=snip strategy.shuffle=false \
        sparsity=0.9,0.95,0.98 schedule.epochs=30 ;;
    lenet5_snip)
      sweep "$arm" experiment=lenet5_dst schedule=init strategy=snip strategy.allocation=global \
        sparsity=0.98 ;;
    *) unknown_arm "$arm" ;;
  esac
done
tables
