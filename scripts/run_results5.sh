#!/usr/bin/env bash
# Split into studies/ by question; this stub goes in a later release (scripts/README.md).
echo "scripts/run_results5.sh is split into studies/ now: bash studies/papers/run.sh lenet5_han; bash studies/weight_vs_unit/run.sh lenet5_channels bench; bash studies/sparse_training/run.sh lenet5_dst lenet5_rigl_40ep lenet5_rigl_100ep; bash studies/init/run.sh lenet5_snip" >&2
exit 2
