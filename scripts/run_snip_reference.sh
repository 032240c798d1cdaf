#!/usr/bin/env bash
# Moved to studies/snip_reference/run.sh; this stub goes in a later release (scripts/README.md).
echo "scripts/run_snip_reference.sh is studies/snip_reference/run.sh now; running that (this stub goes in a later release)" >&2
exec bash "$(dirname "$0")/../studies/snip_reference/run.sh" "$@"
