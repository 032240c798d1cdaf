#!/usr/bin/env bash
# Split into studies/ by question; this stub goes in a later release (scripts/README.md).
echo "scripts/run_results.sh is split into studies/ now: bash studies/weight_vs_unit/run.sh oneshot gradual; bash studies/finetune/run.sh finetune; bash studies/dense_phase/run.sh finetune_cosine gradual_cosine" >&2
exit 2
