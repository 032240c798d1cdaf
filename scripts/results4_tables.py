"""Split into studies/ by question; this stub goes in a later release (scripts/README.md)."""

import sys

sys.exit(
    "scripts/results4_tables.py is split into studies/ now: studies/sparse_training/tables.py, studies/lottery/tables.py"
)
