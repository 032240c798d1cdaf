#!/usr/bin/env bash
# Weights or units: which to prune, at equal sparsity and at equal cost? Each arm a resumable
# Hydra sweep followed by its report (re-run to finish an interrupted one):
#   oneshot                 the challenge (10 dense epochs, the k grid, 3 seeds), pruned once, no
#                           fine-tuning: weight, neuron and their random controls
#   gradual                 cubic ramp 0 → k over 2 epochs, fine-tune 1 epoch (weight, neuron)
#   oneshot_5seeds          the challenge's one-shot at k ∈ {0, .5, .9, .95}, seeds 0-4
#   oneshot_5seeds_1thread  the same with one thread (OMP_NUM_THREADS=1): another numeric setting
#   lenet5_channels         LeNet-5-Caffe, one-shot weights vs channels + 2 epochs of
#                           fine-tuning, k = 50 … 99 %, 3 seeds
#   bench                   benchmarks/bench_sparse.py --model lenet5: what compaction buys
# The one-shot + fine-tune arm is the finetune study's; tables.py quotes it from there.
# Usage: bash studies/weight_vs_unit/run.sh [arm ...] [override ...]
#   (default: every arm; OUT=dir, default outputs/studies/weight_vs_unit; PY=python)
STUDY=$(cd "$(dirname "$0")" && pwd)
source "$STUDY/../sweep.sh"
select_arms oneshot gradual oneshot_5seeds oneshot_5seeds_1thread lenet5_channels bench
ONESHOT=(experiment=challenge strategy=weight,neuron sparsity=0,0.5,0.9,0.95 seed=0,1,2,3,4)
start_timings
for arm in "${ARMS[@]}"; do
  case $arm in
    oneshot) sweep "$arm" experiment=challenge strategy=weight,neuron,random_weight,random_neuron ;;
    gradual)
      sweep "$arm" experiment=challenge schedule=gradual schedule.ramp_epochs=2 \
        schedule.finetune_epochs=1 ;;
    oneshot_5seeds) X=compression sweep "$arm" "${ONESHOT[@]}" ;;
    oneshot_5seeds_1thread) THREADS=1 X=compression sweep "$arm" "${ONESHOT[@]}" ;;
    lenet5_channels) sweep "$arm" "experiment=$arm" ;;
    bench) "$PY" benchmarks/bench_sparse.py --model lenet5 --out "$OUT/bench" \
        | tee "$OUT/bench_sparse_lenet5.txt" ;;
    *) unknown_arm "$arm" ;;
  esac
done
tables finetune
