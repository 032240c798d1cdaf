"""The report: a sweep's files → ``summary.csv``, ``report.md`` and plots.

One module per step, each readable top to bottom: ``read`` (which jobs finished, their
numbers, and the settings the sweep varied, which become groups), ``stats`` (paired drops,
means ± std over seeds), ``plots``, ``markdown``, ``make`` (all of them for one sweep) and
``__main__`` (``python -m prunelab.report``, ``prunelab-report``).
"""

from prunelab.report.make import make_report
from prunelab.report.names import COMPARISON_PLOTS, DROP_PLOT, EQUAL_COST_PLOTS
from prunelab.report.read import ReportError

__all__ = ["COMPARISON_PLOTS", "DROP_PLOT", "EQUAL_COST_PLOTS", "ReportError", "make_report"]
