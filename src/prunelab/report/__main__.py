"""``python -m prunelab.report SWEEP_DIR [--out DIR] [--x AXIS]``: a sweep's files → tables,
plots (``report.make.make_report``), with one line on stderr for a sweep it cannot read."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prunelab.errors import PrunelabError
from prunelab.report.make import make_report
from prunelab.report.names import X_AXES


def main(argv: list[str] | None = None, write: Callable[[str], Any] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prunelab.report",
        description="Turn a sweep's result.json and metrics.csv files into summary.csv, "
        "report.md and the plots. Every setting that differs between the jobs (other than "
        "strategy, sparsity and seed) makes groups that are reported side by side, never "
        "averaged together.",
    )
    parser.add_argument("sweep_dir", type=Path, help="e.g. outputs/challenge")
    parser.add_argument("--out", type=Path, default=None, help="default: SWEEP_DIR/report")
    parser.add_argument("--title", default=None, help="plot title suffix (default: dir name)")
    parser.add_argument(
        "--x",
        choices=X_AXES,
        default="sparsity",
        help="x axis of the accuracy plots: k (default) or the compression ratio 1/(1-s) of "
        "the actual global sparsity s, log scale",
    )
    args = parser.parse_args(argv)
    try:
        out = make_report(args.sweep_dir, args.out, args.title, args.x)
    except PrunelabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # an unwritable --out, a full disk: nothing of the report was left
        print(f"error: cannot write the report: {e}", file=sys.stderr)
        return 1
    write(f"report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":  # python -m prunelab.report
    sys.exit(main())
