"""Moved to studies/unit_criteria/explore_unit_criteria.py; this stub goes in a later release (scripts/README.md)."""

import runpy
import sys
from pathlib import Path

NEW = (
    Path(__file__)
    .resolve()
    .parents[1]
    .joinpath("studies", "unit_criteria", "explore_unit_criteria.py")
)
print(
    "scripts/explore_unit_criteria.py is studies/unit_criteria/explore_unit_criteria.py now; running that (this stub goes in a later release)",
    file=sys.stderr,
)
sys.argv[0] = str(NEW)
runpy.run_path(str(NEW), run_name="__main__")
