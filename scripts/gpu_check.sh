#!/usr/bin/env bash
# Moved to tools/gpu_check.sh; this stub goes in a later release (scripts/README.md).
echo "scripts/gpu_check.sh is tools/gpu_check.sh now; running that (this stub goes in a later release)" >&2
exec bash "$(dirname "$0")/../tools/gpu_check.sh" "$@"
