#!/usr/bin/env bash
# The runs behind docs/RESULTS.md's fifth round (LeNet-5-Caffe on MNIST, 3 seeds), each a
# resumable Hydra sweep followed by its report (re-run to finish an interrupted one), one after
# another with torch's default threads:
#   lenet5_han        gradual magnitude pruning to Han et al.'s per-layer sparsities (8.4 %
#                     density), and the dense reference trained as long
#   lenet5_channels   one-shot weights vs channels + 2 epochs of fine-tuning, k = 50 … 99 %
#   lenet5_dst        RigL and the static random ERK mask at 2 % density, 20 epochs
#   lenet5_snip       SNIP at 2 % density, the protocol of lenet5_dst
#   rigl_40ep         RigL at 2 % density trained 40 epochs
#   rigl_100ep        RigL at 2 % density trained 100 epochs, the published comparison's length
#   bench             scripts/bench_sparse.py --model lenet5: what compaction buys at inference
# Usage: bash scripts/run_results5.sh [arm ...]   (default: all; OUT=dir, PY=python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/round5}
ARMS=("$@")
[ ${#ARMS[@]} -gt 0 ] || ARMS=(lenet5_han lenet5_channels lenet5_dst lenet5_snip rigl_40ep rigl_100ep bench)

source scripts/sweep.sh
start_timings
for arm in "${ARMS[@]}"; do
  case $arm in
    lenet5_han | lenet5_channels | lenet5_dst) sweep "$arm" "experiment=$arm" ;;
    lenet5_snip)
      sweep "$arm" experiment=lenet5_dst schedule=init strategy=snip strategy.allocation=global \
        sparsity=0.98 ;;
    rigl_40ep) sweep "$arm" experiment=lenet5_dst schedule=rigl schedule.epochs=40 ;;
    rigl_100ep) sweep "$arm" experiment=lenet5_dst schedule=rigl schedule.epochs=100 ;;
    bench) "$PY" scripts/bench_sparse.py --model lenet5 --out "$OUT/bench" \
        | tee "$OUT/bench_sparse_lenet5.txt" ;;
    *) echo "unknown arm $arm" >&2; exit 2 ;;
  esac
done
echo "reports: $OUT/*/report.md"
