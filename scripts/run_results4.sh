#!/usr/bin/env bash
# Split into studies/ by question; this stub goes in a later release (scripts/README.md).
echo "scripts/run_results4.sh is split into studies/ now: bash studies/sparse_training/run.sh dst_lenet300 family_lenet300 rigl_100ep; bash studies/lottery/run.sh imp_lenet300; bash studies/init/run.sh snip_init_30ep" >&2
exit 2
