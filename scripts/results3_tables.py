"""Split into studies/ by question; this stub goes in a later release (scripts/README.md)."""

import sys

sys.exit(
    "scripts/results3_tables.py is split into studies/ now: studies/init/tables.py, studies/unit_criteria/tables.py, studies/allocation/tables.py"
)
