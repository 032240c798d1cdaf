"""The report's plots: the original study's eight (train/test accuracy per epoch and accuracy
vs sparsity per strategy, and the strategies compared), for every strategy present, then the
equal-cost and accuracy-drop plots. Bands are ± 1 std over seeds, and every figure says so.

A sweep that varied other settings (``read.varying_keys``) gets one line per (strategy,
group) on the comparison plots and one per-epoch figure per group, named with the group;
a sweep of one group keeps the original file names. A group label too long for a file name
(a folder of runs that differ in a dozen settings) is cut and ends in a hash of the whole
label (``bounded_name``).

What each figure draws is computed by small functions (``curves.epoch_lines``,
``axes.k_limits``, ``axes.axis_ticks``, ``axes.log_ticks``, ``drop_axis``) that the tests
call directly; what the figures are called and say is ``names``'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunelab.report.axes import compression_axis, count_text, log_axis, sparsity_axis, x_axis
from prunelab.report.curves import EpochLines, epoch_lines
from prunelab.report.names import (
    COMPARISON_PLOTS,
    COMPRESSION_LABEL,
    DROP_PLOT,
    EFFECTIVE_COMPRESSION_LABEL,
    EQUAL_COST_PLOTS,
    FINAL_LABEL,
    SHARED_LABEL,
    TRAIN_FINAL_LABEL,
    TRAIN_Y,
    band_note,
    epoch_plot_name,
    line_label,
    sparsity_plot_name,
    strategy_label,
)
from prunelab.report.stats import aggregate, compression_ratio

# ------------------------------------------------------------------------- drawing


def band(ax: Any, x: Any, mean: Any, std: Any, label: str, color: Any, **style: Any) -> None:
    ax.plot(x, 100 * np.asarray(mean), marker="o", ms=3, label=label, color=color, **style)
    lo, hi = 100 * np.asarray(mean - std), 100 * np.asarray(mean + std)
    ax.fill_between(x, lo, hi, alpha=0.2, color=color, lw=0)


def finish(
    fig: Any, ax: Any, path: Path, written: list[str], seeds: Any = (1,),
    legend_title: str | None = None, extra: tuple[Any, ...] = (), **labels: Any,
) -> None:  # fmt: skip
    """Label, grid, a legend that ends with what the bands are (``band_note`` of ``seeds``)
    after any ``extra`` (handle, text) entries; write the PNG; close the figure.

    Written straight to ``path``: ``make.make_report`` writes into a folder of its own and
    publishes it whole, so no one sees a half-written report.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ax.set(**labels)
    ax.grid(alpha=0.3)
    handles, texts = ax.get_legend_handles_labels()
    for handle, text in extra:
        handles.append(handle)
        texts.append(text)
    handles.append(Patch(facecolor="grey", alpha=0.3, lw=0))
    texts.append(band_note(seeds))
    ncol = 2 if len(handles) > 8 else 1
    ax.legend(handles, texts, fontsize=7, title=legend_title, title_fontsize=7, ncol=ncol)
    fig.savefig(path, dpi=130, bbox_inches="tight", format="png")
    plt.close(fig)
    written.append(path.name)


def arms(agg: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """``(strategy, group name, its rows)`` in the report's order: weight first, groups
    sorted."""
    out = []
    for (strategy, _, group), rows in agg.groupby(["strategy", "group_index", "group"]):
        name = str(rows["group_name"].iloc[0]) if "group_name" in rows else str(group)
        out.append((str(strategy), name, rows))
    return sorted(out, key=lambda a: (a[0] != "weight", a[0], int(a[2]["group_index"].iloc[0])))


def plot_all(
    summary: pd.DataFrame, curves: pd.DataFrame, out: Path, title: str, x: str = "sparsity"
) -> list[str]:
    """Every plot of the report; returns the file names written.

    ``x="compression"`` puts the accuracy-vs-k and effective-sparsity plots on the
    compression ratio (``compression_ratio`` of the actual sparsity), same file names.
    """
    import matplotlib

    matplotlib.use("Agg")

    agg = aggregate(summary)
    strategies = sorted(summary["strategy"].unique(), key=lambda s: (s != "weight", s))
    written: list[str] = []
    written += plot_epochs(curves, strategies, out, title)
    written += plot_sparsity(agg, strategies, out, title, x)
    written += plot_comparisons(agg, strategies, out, title, x)
    written += plot_equal_cost(agg, strategies, out, title, x)
    written += plot_drop(agg, out, title)
    return written


# ------------------------------------------------------------------------- per epoch


def draw_epoch_lines(ax: Any, lines: EpochLines, star_label: str) -> list[tuple[Any, str]]:
    """Draw ``lines``: the shared phase in black, each k in its colour, each final evaluation
    a star at its epoch; returns the legend entry that explains the stars (``star_label``)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    cmap = plt.get_cmap("viridis")
    ks = sorted(lines.final)
    if lines.shared is not None:
        s = lines.shared
        band(ax, s.x, s.mean, s.std, SHARED_LABEL, "black")
    for i, k in enumerate(ks):
        color = cmap(i / max(1, len(ks) - 1))
        label = f"{100 * k:g} %"
        if k in lines.by_k:
            s = lines.by_k[k]
            band(ax, s.x, s.mean, s.std, label, color)
            label = f"_{label}"  # the k is in the legend once, with its line
        f = lines.final[k]
        ax.plot(f.x, 100 * f.mean, marker="*", ms=11, ls="none", color=color, label=label)
        if lines.seeds > 1:
            ax.vlines(f.x, 100 * (f.mean - f.std), 100 * (f.mean + f.std), color=color, lw=1)
    star = Line2D([], [], marker="*", ms=9, ls="none", color="grey")
    return [(star, star_label)]


def epoch_axis(ax: Any, curves: pd.DataFrame) -> None:
    """Whole epochs from the first to the last (each one labelled up to 20); the final
    evaluation shares the last."""
    from matplotlib.ticker import MaxNLocator

    last = int(curves["epoch"].max())
    if last <= 20:
        ax.set_xticks(range(1, last + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, last + 0.5)


def plot_epochs(curves: pd.DataFrame, strategies: list[str], out: Path, title: str) -> list[str]:
    """Train and test accuracy per epoch per strategy and group: the dense phase every k
    shares once, each k after it, and a star for the pruned model's final evaluation."""
    import matplotlib.pyplot as plt

    written: list[str] = []
    if curves.empty:
        return written
    for split in ("train", "test"):
        for strategy in strategies:
            for group, c in curves[curves["strategy"] == strategy].groupby("group", sort=False):
                fig, ax = plt.subplots(figsize=(7, 4.5))
                lines = epoch_lines(c, split)
                extra = draw_epoch_lines(
                    ax, lines, TRAIN_FINAL_LABEL if split == "train" else FINAL_LABEL
                )
                epoch_axis(ax, c)
                name = str(c["group_name"].iloc[0]) if "group_name" in c else str(group)
                where = f" ({name})" if name else ""
                what = TRAIN_Y if split == "train" else "test accuracy (%)"
                finish(
                    fig, ax, out / epoch_plot_name(split, strategy, str(group)), written,
                    seeds=[lines.seeds], legend_title="sparsity k", extra=tuple(extra),
                    xlabel="epoch", ylabel=what,
                    title=f"{split.capitalize()} accuracy, {strategy_label(strategy)}{where}"
                          f" — {title}",
                )  # fmt: skip
    return written


# ------------------------------------------------------------------------- vs k


def plot_sparsity(
    agg: pd.DataFrame, strategies: list[str], out: Path, title: str, x: str
) -> list[str]:
    """Per strategy: train and test accuracy of the pruned model against k, a line pair per
    group."""
    import matplotlib.pyplot as plt

    written: list[str] = []
    for strategy in strategies:
        rows = [(g, a) for s, g, a in arms(agg) if s == strategy]
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for j, (group, a) in enumerate(rows):
            a = a.sort_values(x)
            for split, style in (("train", ":"), ("test", "-")):
                label = f"{split} · {group}" if group else split
                color = f"C{j}" if len(rows) > 1 else ("C0" if split == "train" else "C1")
                band(ax, a[x], a[f"{split}_acc_mean"], a[f"{split}_acc_std"], label, color,
                     ls=style)  # fmt: skip
        mine = agg[agg["strategy"] == strategy]
        x_axis(ax, x, mine, [strategy], mine["sparsity"])
        finish(
            fig, ax, out / sparsity_plot_name(strategy), written, seeds=mine["n_seeds"],
            ylabel="accuracy of the pruned model (%)", ylim=(0, 101),
            title=f"Accuracy vs {x}, {strategy_label(strategy)} — {title}",
        )  # fmt: skip
    return written


def plot_comparisons(
    agg: pd.DataFrame, strategies: list[str], out: Path, title: str, x: str
) -> list[str]:
    """Train, then test accuracy against k: one line per (strategy, group)."""
    import matplotlib.pyplot as plt

    written: list[str] = []
    for split in ("train", "test"):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, (strategy, group, a) in enumerate(arms(agg)):
            a = a.sort_values(x)
            band(ax, a[x], a[f"{split}_acc_mean"], a[f"{split}_acc_std"],
                 line_label(strategy, group), f"C{i % 10}")  # fmt: skip
        x_axis(ax, x, agg, strategies, agg["sparsity"])
        what = "training" if split == "train" else "test"
        finish(
            fig, ax, out / COMPARISON_PLOTS[split], written, seeds=agg["n_seeds"],
            ylabel=f"{what} accuracy of the pruned model (%)", ylim=(0, 101),
            title=f"{what.capitalize()} accuracy: pruning strategies compared — {title}",
        )  # fmt: skip
    return written


# ------------------------------------------------------------------------- equal cost


def plot_equal_cost(
    agg: pd.DataFrame, strategies: list[str], out: Path, title: str, x: str = "sparsity"
) -> list[str]:
    """Test accuracy against what was really removed, not against the nominal k.

    Unit pruning at k also kills the next layer's input columns, so at equal k it removes
    far more weights than weight pruning. These two plots compare the strategies at equal
    *effective* sparsity (``x="compression"``: its compression ratio) and at equal FLOPs per
    sample of the best inference form (log scale, fewer to the left: the numbers grow to the
    right, as on any axis).
    """
    import matplotlib.pyplot as plt

    written: list[str] = []
    for name, col, xlabel in EQUAL_COST_PLOTS:
        if f"{col}_mean" not in agg:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, (strategy, group, a) in enumerate(arms(agg)):
            a = a.sort_values(f"{col}_mean")
            xs = a[f"{col}_mean"]
            if col == "sparsity/effective" and x == "compression":
                xs = compression_ratio(xs)
            band(ax, xs, a["test_acc_mean"], a["test_acc_std"], line_label(strategy, group),
                 f"C{i % 10}")  # fmt: skip
        if col == "sparsity/effective" and x == "compression":
            xlabel = EFFECTIVE_COMPRESSION_LABEL
            compression_axis(ax, compression_ratio(agg[f"{col}_mean"]), xlabel)
        elif col == "sparsity/effective":
            sparsity_axis(ax, xlabel, agg[f"{col}_mean"].dropna(), swept=False)
        else:
            log_axis(ax, agg[f"{col}_mean"], xlabel, count_text)
        finish(
            fig, ax, out / name, written, seeds=agg["n_seeds"],
            xlabel=xlabel, ylabel="test accuracy of the pruned model (%)", ylim=(0, 101),
            title=f"Test accuracy at equal cost — {title}",
        )  # fmt: skip
    return written


# ------------------------------------------------------------------------- drop


def drop_axis(agg: pd.DataFrame) -> tuple[pd.Series, str]:
    """The drop plot's x per row and its label: the *effective* compression (weights masked
    or dead) where every row has it, since unit pruning's masked share understates what it
    removes; else the compression of the masked weights, and the label says so."""
    eff = agg.get("sparsity/effective_mean")
    if eff is not None and eff.notna().all():
        return pd.Series(compression_ratio(eff), index=agg.index), EFFECTIVE_COMPRESSION_LABEL
    label = COMPRESSION_LABEL + "; nominal for unit pruning: its dead weights count as kept"
    return agg["compression"], label


def plot_drop(agg: pd.DataFrame, out: Path, title: str) -> list[str]:
    """ShrinkBench's headline plot: test accuracy − dense (same group and seed) vs
    compression ratio (``drop_axis``).

    The band is the std over seeds of the *paired* differences (``stats.dense_drop``), so it
    shows how much pruning varies, not how much the dense models do. Not drawn if no seed has
    a dense job.
    """
    import matplotlib.pyplot as plt

    if "test_acc_drop_mean" not in agg or agg["test_acc_drop_mean"].isna().all():
        return []
    written: list[str] = []
    xs, xlabel = drop_axis(agg)
    agg = agg.assign(drop_x=xs)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (strategy, group, a) in enumerate(arms(agg)):
        a = a.dropna(subset=["test_acc_drop_mean"]).sort_values("drop_x")
        if a.empty:
            continue
        band(ax, a["drop_x"], a["test_acc_drop_mean"], a["test_acc_drop_std"],
             line_label(strategy, group), f"C{i % 10}")  # fmt: skip
    ax.axhline(0.0, color="grey", ls=":", lw=1)
    compression_axis(ax, xs, xlabel)
    finish(
        fig, ax, out / DROP_PLOT, written, seeds=agg["test_acc_drop_n"].replace(0, np.nan),
        ylabel="test accuracy − dense model of the same seed (points)",
        title=f"Accuracy drop vs compression — {title}",
    )  # fmt: skip
    return written
