#!/usr/bin/env bash
# Moved to tools/slurm_cluster.sh; this stub goes in a later release (scripts/README.md).
echo "scripts/slurm_cluster.sh is tools/slurm_cluster.sh now; running that (this stub goes in a later release)" >&2
exec bash "$(dirname "$0")/../tools/slurm_cluster.sh" "$@"
