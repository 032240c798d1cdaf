"""Moved to studies/snip_reference/snip_reference.py; this stub goes in a later release (scripts/README.md)."""

import runpy
import sys
from pathlib import Path

NEW = Path(__file__).resolve().parents[1].joinpath("studies", "snip_reference", "snip_reference.py")
print(
    "scripts/snip_reference.py is studies/snip_reference/snip_reference.py now; running that (this stub goes in a later release)",
    file=sys.stderr,
)
sys.argv[0] = str(NEW)
runpy.run_path(str(NEW), run_name="__main__")
