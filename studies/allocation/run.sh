#!/usr/bin/env bash
# Where should the weight budget go? A resumable Hydra sweep followed by its report (re-run to
# finish an interrupted one), on one thread (OMP_NUM_THREADS=1):
#   allocation   uniform, global, ERK and LAMP budgets, 90-99 %, 0 or 1 epoch, 3 seeds
# Usage: bash studies/allocation/run.sh [arm ...] [override ...]
#   (default: every arm; OUT=dir, default outputs/studies/allocation; PY=python)
STUDY=$(cd "$(dirname "$0")" && pwd)
source "$STUDY/../sweep.sh"
select_arms allocation
start_timings
for arm in "${ARMS[@]}"; do
  case $arm in
    allocation) THREADS=1 sweep "$arm" "experiment=$arm" ;;
    *) unknown_arm "$arm" ;;
  esac
done
tables
