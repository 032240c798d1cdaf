"""The x axes of the report's figures: sparsity k on a scale that spreads the high values
apart (``k_to_x``), the compression ratio and counts on log scales, ticks that do not
collide. Small functions the tests call directly (``k_limits``, ``axis_ticks``, ``log_ticks``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from prunelab.report.names import COMPRESSION_LABEL, k_label

# k up to 99.99 % keeps -log10(1 - k) finite.
MAX_K = 0.9999
K_TICKS = (0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999)
# Closest two tick labels of a k axis, as a share of its width: closer ones would overlap.
MIN_TICK_GAP = 0.04


def k_to_x(k: Any) -> Any:
    """k → -log10(1 − k): spreads 90, 95, 97, 99 % apart, as ShrinkBench's log axis does."""
    return -np.log10(1.0 - np.minimum(np.asarray(k, dtype=float), MAX_K))


def x_to_k(x: Any) -> Any:
    return 1.0 - 10.0 ** (-np.asarray(x, dtype=float))


def k_limits(ks: Any) -> tuple[float, float]:
    """The x limits that fit ``ks`` with a small margin on the -log10(1 − k) scale, so a sweep
    of 50–90 % fills the plot instead of a third of a 0–99 % axis."""
    xs = k_to_x(np.asarray(ks, dtype=float))
    lo, hi = float(xs.min()), float(xs.max())
    pad = 0.06 * (hi - lo) if hi > lo else 0.1
    return float(x_to_k(lo - pad)), float(x_to_k(hi + pad))


def spaced(ticks: list[float], limits: tuple[float, float]) -> list[float]:
    """``ticks`` less any closer than ``MIN_TICK_GAP`` of the axis to the one kept before it
    (k = 0, 10, 20 % crowd together at the left of a -log10(1 − k) axis)."""
    lo, hi = (float(v) for v in k_to_x(np.asarray(limits)))
    kept: list[float] = []
    for t in ticks:
        if not kept or float(k_to_x(t) - k_to_x(kept[-1])) >= MIN_TICK_GAP * (hi - lo):
            kept.append(t)
    return kept


def axis_ticks(ks: Any, swept: bool) -> list[float]:
    """Where a k axis is labelled: at each swept k (up to ten of them), else at the round k
    within its limits; at the values themselves when fewer than two round ones fit."""
    values = sorted({round(float(k), 6) for k in np.asarray(ks, dtype=float)})
    limits = k_limits(values)
    if swept and len(values) <= 10:
        return spaced(values, limits)
    inside = [t for t in K_TICKS if limits[0] <= t <= limits[1]]
    return spaced(inside if len(inside) >= 2 else values, limits)


def k_text(k: float) -> str:
    return f"{100 * k:.4g}"


def sparsity_axis(ax: Any, label: str, ks: Any, swept: bool = True) -> None:
    """x = k on a -log10(1 − k) scale, fitted to ``ks`` and labelled in %; ``swept``: ``ks``
    are the k a sweep chose, so each gets its tick."""

    ax.set_xscale("function", functions=(k_to_x, x_to_k))
    ticks = axis_ticks(ks, swept)
    ax.set_xticks(ticks, [k_text(t) for t in ticks])
    ax.set_xlim(*k_limits(ks))
    ax.set_xlabel(label)


def log_ticks(lo: float, hi: float) -> list[float]:
    """Round ticks between ``lo`` and ``hi`` (> 0) for a log axis: 1-2-5 per decade, finer
    until at least three fit (a narrow range otherwise shows one label or none)."""
    first, last = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    ticks: list[float] = []
    for mantissas in ((1, 2, 5), (1, 2, 3, 5, 7), tuple(range(1, 10))):
        ticks = [float(m * 10.0**e) for e in range(first, last + 1) for m in mantissas]
        ticks = [t for t in ticks if lo <= t <= hi]
        if len(ticks) >= 3:
            break
    return ticks


def count_text(v: float) -> str:
    """``50000`` → ``50k``, ``1.5e6`` → ``1.5M``: a FLOPs tick."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:g}{unit}"
    return f"{v:g}"


def log_axis(ax: Any, xs: Any, label: str, text: Any) -> None:
    """x on a log scale, left to right as the numbers grow, fitted to ``xs`` and labelled at
    ``log_ticks`` with ``text``."""
    from matplotlib.ticker import NullFormatter

    finite = np.asarray(xs, dtype=float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (1.0, 10.0)
    lo, hi = lo / 1.3, hi * 1.3
    ax.set_xscale("log")
    ticks = log_ticks(lo, hi)
    ax.set_xticks(ticks, [text(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())  # log axes label minor ticks on short ranges
    ax.set_xlim(lo, hi)
    ax.set_xlabel(label)


def compression_axis(ax: Any, xs: Any, label: str = COMPRESSION_LABEL) -> None:
    """x = compression ratio on a log scale, ticks at 1, 2, 5, 10, … × up to the largest x."""
    from matplotlib.ticker import NullFormatter

    finite = np.asarray(xs, dtype=float)
    finite = finite[np.isfinite(finite)]
    right = max(2.0, float(finite.max())) if finite.size else 2.0
    ax.set_xscale("log")
    ticks = [m * 10**e for e in range(6) for m in (1, 2, 5) if m * 10**e <= right * 1.2]
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())  # log axes label minor ticks on short ranges
    ax.set_xlim(0.9, right * 1.2)
    ax.set_xlabel(label)


def x_axis(ax: Any, x: str, agg: pd.DataFrame, strategies: list[str], ks: Any) -> None:
    """The x axis of the accuracy-vs-k plots: k fitted to the swept ``ks``, or the
    compression ratio (``--x``)."""
    if x == "compression":
        compression_axis(ax, agg["compression"])
        return
    overall = (
        set(agg.loc[agg["allocation"] != "uniform", "strategy"]) if "allocation" in agg else set()
    )
    sparsity_axis(ax, k_label(strategies, overall), ks)
