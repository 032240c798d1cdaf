#!/usr/bin/env bash
# Which units to remove? A resumable Hydra sweep followed by its report (re-run to finish an
# interrupted one), on one thread (OMP_NUM_THREADS=1):
#   unit_criteria   6 unit scores × k 50/70/90 % × 0 or 1 fine-tune epoch, 5 seeds
# explore_unit_criteria.py (beside this file) scores more criteria on the dense models of a
# finished sweep, without training: python studies/unit_criteria/explore_unit_criteria.py DIR
# Usage: bash studies/unit_criteria/run.sh [arm ...] [override ...]
#   (default: every arm; OUT=dir, default outputs/studies/unit_criteria; PY=python)
STUDY=$(cd "$(dirname "$0")" && pwd)
source "$STUDY/../sweep.sh"
select_arms unit_criteria
start_timings
for arm in "${ARMS[@]}"; do
  case $arm in
    unit_criteria) THREADS=1 sweep "$arm" "experiment=$arm" ;;
    *) unknown_arm "$arm" ;;
  esac
done
tables
