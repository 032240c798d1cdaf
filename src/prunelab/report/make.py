"""One sweep → its report folder: ``summary.csv`` (one row per finished job, numbers copied
verbatim from its result.json, plus its group, ``test_acc_drop`` and ``compression``),
``report.md`` and the plots."""

from __future__ import annotations

from pathlib import Path

from prunelab.report.levels import levels_report
from prunelab.report.markdown import markdown
from prunelab.report.plots import X_AXES, plot_all
from prunelab.report.read import ReportError, epoch_curves, read_sweep, summary_table
from prunelab.results import write_text_atomic


def make_report(
    root: Path, out: Path | None = None, title: str | None = None, x: str = "sparsity"
) -> Path:
    """Write summary.csv, report.md and the plots for the sweep at ``root``; return ``out``.

    ``x``: the plots' x axis, ``sparsity`` (k) or ``compression`` (ratio, log scale).
    """
    if x not in X_AXES:
        raise ReportError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    root = Path(root)
    sweep = read_sweep(root)
    out = Path(out) if out else root / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary = summary_table(sweep)
    write_text_atomic(out / "summary.csv", summary.to_csv(index=False))
    plots = []
    if len(summary):
        plots = plot_all(summary, epoch_curves(sweep, summary), out, title or root.name, x)
    extra, level_plots = levels_report([r for _, r in sweep.results], out, title or root.name)
    write_text_atomic(out / "report.md", markdown(sweep, summary, plots + level_plots, extra))
    return out
