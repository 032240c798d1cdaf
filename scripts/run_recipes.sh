#!/usr/bin/env bash
# Moved to studies/dense_phase/run.sh (arms recipes); this stub goes in a later release (scripts/README.md).
echo "scripts/run_recipes.sh is studies/dense_phase/run.sh recipes now; running that (this stub goes in a later release)" >&2
exec bash "$(dirname "$0")/../studies/dense_phase/run.sh" recipes "$@"
