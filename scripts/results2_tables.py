"""Split into studies/ by question; this stub goes in a later release (scripts/README.md)."""

import sys

sys.exit(
    "scripts/results2_tables.py is split into studies/ now: studies/papers/tables.py, studies/lottery/tables.py, studies/finetune/tables.py, studies/weight_vs_unit/tables.py"
)
