#!/usr/bin/env bash
# Lottery tickets: does the original init matter, and what does IMP buy level by level? Each arm
# a resumable Hydra sweep followed by its report (re-run to finish an interrupted one):
#   lottery_lenet300   lottery tickets and their two controls at six k, 5 seeds
#   imp_lenet300       IMP, 19 levels of 20 %, with both controls at every level, 3 seeds
# Usage: bash studies/lottery/run.sh [arm ...] [override ...]
#   (default: every arm; OUT=dir, default outputs/studies/lottery; PY=python)
STUDY=$(cd "$(dirname "$0")" && pwd)
source "$STUDY/../sweep.sh"
select_arms lottery_lenet300 imp_lenet300
start_timings
for arm in "${ARMS[@]}"; do
  case $arm in
    lottery_lenet300) X=compression sweep "$arm" "experiment=$arm" ;;
    imp_lenet300) sweep "$arm" "experiment=$arm" ;;
    *) unknown_arm "$arm" ;;
  esac
done
tables
