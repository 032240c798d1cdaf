"""One sweep → its report folder: ``summary.csv`` (one row per finished job, numbers copied
verbatim from its result.json, plus its group, ``test_acc_drop`` and ``compression``),
``report.md`` and the plots.

The report is written whole into a hidden folder beside ``out`` and only then moved into
``out``, file by file, ``report.md`` last: a report that fails half-way (a plot that cannot
be drawn, a full disk) leaves ``out`` as it was, with no ``summary.csv`` of a report that
never came, and no temp files.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prunelab.report.levels import levels_report
from prunelab.report.markdown import markdown
from prunelab.report.names import X_AXES
from prunelab.report.plots import plot_all
from prunelab.report.read import ReportError, Sweep, epoch_curves, read_sweep, summary_table
from prunelab.report.sensitivity import sensitivity_report
from prunelab.scans import is_scan_result

REPORT_FILE = "report.md"


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``out``; once the block has written the report
    there, move each file into ``out`` (``report.md``, which points at the others, last).
    The folder is removed either way, so a failure leaves nothing behind.

    Beside ``out``, not in the system's temp dir, so each move is a rename on one file
    system. Hidden, so a report written inside a sweep is never read as one of its jobs.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        yield stage
        out.mkdir(exist_ok=True)
        for path in sorted(stage.iterdir(), key=lambda p: p.name == REPORT_FILE):
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_report(sweep: Sweep, out: Path, title: str, x: str) -> None:
    """summary.csv, the plots, the IMP levels and sensitivity scans (if any) and report.md of
    ``sweep`` in ``out``, a private folder (``staged``): plain writes, as nothing reads it
    before it is whole. A scan's figures are its dense model's, not a pruned model's: scans
    are reported in their own section, never as rows of the summary."""
    pruned = [(job, r) for job, r in sweep.results if not is_scan_result(r)]
    ordinary = dataclasses.replace(sweep, results=pruned)
    summary = summary_table(ordinary)
    (out / "summary.csv").write_text(summary.to_csv(index=False))
    plots = []
    if len(summary):
        plots = plot_all(summary, epoch_curves(ordinary, summary), out, title, x)
    extra, level_plots = levels_report([r for _, r in pruned], out, title)
    scans, scan_plots = sensitivity_report([r for _, r in sweep.results], out, title)
    (out / REPORT_FILE).write_text(
        markdown(sweep, summary, plots + level_plots + scan_plots, [*extra, *scans])
    )


def make_report(
    root: Path, out: Path | None = None, title: str | None = None, x: str = "sparsity"
) -> Path:
    """Write summary.csv, report.md and the plots for the runs under ``root``; return ``out``.

    ``root``: a sweep, a folder of single runs, or of sweeps. ``x``: the plots' x axis,
    ``sparsity`` (k) or ``compression`` (ratio, log scale). Nothing of the report appears in
    ``out`` unless all of it does (``staged``).
    """
    if x not in X_AXES:
        raise ReportError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    root = Path(root)
    sweep = read_sweep(root)
    out = Path(out) if out else root / "report"
    with staged(out) as stage:
        write_report(sweep, stage, title or root.name, x)
    return out
