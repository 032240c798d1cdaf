"""Moved to benchmarks/bench_stack_conv.py; this stub goes in a later release (scripts/README.md)."""

import runpy
import sys
from pathlib import Path

NEW = Path(__file__).resolve().parents[1].joinpath("benchmarks", "bench_stack_conv.py")
print(
    "scripts/bench_stack_conv.py is benchmarks/bench_stack_conv.py now; running that (this stub goes in a later release)",
    file=sys.stderr,
)
sys.argv[0] = str(NEW)
runpy.run_path(str(NEW), run_name="__main__")
