#!/usr/bin/env bash
# Split into studies/ by question; this stub goes in a later release (scripts/README.md).
echo "scripts/run_results3.sh is split into studies/ now: bash studies/init/run.sh init_lenet300 init_lenet300_random snip_lenet300_30ep; bash studies/unit_criteria/run.sh; bash studies/allocation/run.sh" >&2
exit 2
