#!/usr/bin/env bash
# Moved to studies/finetune/run.sh (arms finetune_lr guard); this stub goes in a later release (scripts/README.md).
echo "scripts/run_probes.sh is studies/finetune/run.sh finetune_lr guard now; running that (this stub goes in a later release)" >&2
exec bash "$(dirname "$0")/../studies/finetune/run.sh" finetune_lr guard "$@"
