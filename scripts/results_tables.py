"""Split into studies/ by question; this stub goes in a later release (scripts/README.md)."""

import sys

sys.exit(
    "scripts/results_tables.py is split into studies/ now: studies/weight_vs_unit/tables.py, studies/finetune/tables.py, studies/dense_phase/tables.py"
)
