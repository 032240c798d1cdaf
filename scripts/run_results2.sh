#!/usr/bin/env bash
# Split into studies/ by question; this stub goes in a later release (scripts/README.md).
echo "scripts/run_results2.sh is split into studies/ now: bash studies/papers/run.sh han_lenet300 han_lenet300_1thread; bash studies/lottery/run.sh lottery_lenet300; bash studies/finetune/run.sh finetune_length finetune_unguarded; bash studies/weight_vs_unit/run.sh oneshot_5seeds oneshot_5seeds_1thread" >&2
exit 2
