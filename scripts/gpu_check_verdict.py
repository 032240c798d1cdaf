"""Moved to tools/gpu_check_verdict.py; this stub goes in a later release (scripts/README.md)."""

import runpy
import sys
from pathlib import Path

NEW = Path(__file__).resolve().parents[1].joinpath("tools", "gpu_check_verdict.py")
print(
    "scripts/gpu_check_verdict.py is tools/gpu_check_verdict.py now; running that (this stub goes in a later release)",
    file=sys.stderr,
)
sys.argv[0] = str(NEW)
runpy.run_path(str(NEW), run_name="__main__")
