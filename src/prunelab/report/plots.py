"""The report's plots: the original study's eight (train/test accuracy per epoch and accuracy
vs sparsity per strategy, and the strategies compared), for every strategy present, then the
equal-cost and accuracy-drop plots. Bands are ± 1 std over seeds.

A sweep that varied other settings (``read.varying_keys``) gets one line per (strategy,
group) on the comparison plots and one per-epoch figure per group, named with the group;
a sweep of one group keeps the original file names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunelab.report.stats import aggregate, compression_ratio
from prunelab.results import atomic_path

EQUAL_COST_PLOTS = [
    (
        "Accuracy_vs_Effective_Sparsity.png",
        "sparsity/effective",
        "effective sparsity (% of prunable weights masked or dead)",
    ),
    ("Accuracy_vs_FLOPs.png", "flops/best", "FLOPs per sample of the compact or sparse form"),
]
DROP_PLOT = "Accuracy_Drop_vs_Compression.png"
COMPARISON_PLOTS = {
    "train": "Training_Accuracy_Comparison_for_different_Pruning_Strategies.png",
    "test": "Testing_Accuracy_Comparison_for_different_Pruning_Strategies.png",
}
STRATEGY_LABEL = {
    "weight": "weight pruning",
    "neuron": "unit (neuron) pruning",
    "random_weight": "random weights (control)",
    "random_neuron": "random units (control)",
    "global_weight": "global weight magnitude",
    "erk_weight": "weight magnitude, ERK allocation",
    "lamp": "LAMP",
    "snip": "SNIP",
    "grasp": "GraSP",
    "synflow": "SynFlow",
    "taylor_weight": "Taylor (weights)",
    "taylor_neuron": "Taylor (units)",
    "activation_neuron": "mean activation (units)",
    "apoz_neuron": "APoZ (units)",
    "activation_out_neuron": "activation × outgoing norm (units)",
}
X_AXES = ("sparsity", "compression")
COMPRESSION_LABEL = "compression ratio (×, log scale)"


def strategy_label(strategy: str) -> str:
    return STRATEGY_LABEL.get(strategy, strategy)


def file_title(strategy: str) -> str:
    """``weight`` → ``Weight``, ``random_neuron`` → ``Random_Neuron``: the seed's file names."""
    return "_".join(part.capitalize() for part in strategy.split("_"))


def slug(group: str) -> str:
    """A group label as a file-name suffix: ``schedule.finetune_epochs=1`` → ``…_1``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", group).strip("_")


def epoch_plot_name(split: str, strategy: str, group: str = "") -> str:
    suffix = f"__{slug(group)}" if group else ""
    return f"{split.capitalize()}_Accuracy_{file_title(strategy)}_Pruning{suffix}.png"


def sparsity_plot_name(strategy: str) -> str:
    return f"Accuracy_vs_Sparsity_for_{file_title(strategy)}_Pruning.png"


def line_label(strategy: str, group: str) -> str:
    return f"{strategy_label(strategy)} · {group}" if group else strategy_label(strategy)


def k_label(strategies: list[str], overall: set[str]) -> str:
    """What k means on an axis: per pruned layer, and over all pruned layers together for a
    strategy whose allocation spreads k over the layers (``overall``: global, ERK, LAMP)."""
    per_layer = "% of weights or units removed per pruned layer"
    if any(s in overall for s in strategies):
        if all(s in overall for s in strategies):
            return "sparsity k (% of weights removed over all pruned layers together)"
        return f"sparsity k ({per_layer}; global: over all pruned layers together)"
    return f"sparsity k ({per_layer})"


def sparsity_axis(ax: Any, label: str, right: float = 0.99) -> None:
    """x = k on a -log10(1-k) scale, so 90, 95, 97, 99 % are spread out and readable."""

    def fwd(k: Any) -> Any:
        return -np.log10(1.0 - np.clip(k, 0.0, 0.999))

    def inv(x: Any) -> Any:
        return 1.0 - 10.0 ** (-np.asarray(x))

    ax.set_xscale("function", functions=(fwd, inv))
    ticks = [0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]
    ax.set_xticks(ticks, [f"{round(100 * t)}" for t in ticks])
    ax.set_xlim(0, max(0.99, min(right, 0.998)) + 1e-9)
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


def band(ax: Any, x: Any, mean: Any, std: Any, label: str, color: Any, **style: Any) -> None:
    ax.plot(x, 100 * mean, marker="o", ms=3, label=label, color=color, **style)
    ax.fill_between(x, 100 * (mean - std), 100 * (mean + std), alpha=0.2, color=color, lw=0)


def finish(fig: Any, ax: Any, path: Path, written: list[str], **labels: Any) -> None:
    """Label, grid, legend; write the PNG atomically; close the figure."""
    import matplotlib.pyplot as plt

    ax.set(**labels)
    ax.grid(alpha=0.3)
    if not ax.get_legend():
        ax.legend(fontsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png")
    plt.close(fig)
    written.append(path.name)


def arms(agg: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """``(strategy, group, its rows)`` in the report's order: weight first, groups sorted."""
    out = []
    for (strategy, _, group), rows in agg.groupby(["strategy", "group_index", "group"]):
        out.append((str(strategy), str(group), rows))
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


def x_axis(ax: Any, x: str, agg: pd.DataFrame, strategies: list[str]) -> None:
    """The x axis of the accuracy-vs-k plots: k, or the compression ratio (``--x``)."""
    if x == "compression":
        compression_axis(ax, agg["compression"])
    else:
        overall = (
            set(agg.loc[agg["allocation"] != "uniform", "strategy"])
            if "allocation" in agg
            else set()
        )
        sparsity_axis(ax, k_label(strategies, overall))


def plot_epochs(curves: pd.DataFrame, strategies: list[str], out: Path, title: str) -> list[str]:
    """Train and test accuracy per epoch, one line per k, per strategy and group; the last
    point is the pruned model."""
    import matplotlib.pyplot as plt

    written: list[str] = []
    if curves.empty:
        return written
    for split in ("train", "test"):
        for strategy in strategies:
            for group, c in curves[curves["strategy"] == strategy].groupby("group", sort=False):
                fig, ax = plt.subplots(figsize=(7, 4.5))
                ks = sorted(c["sparsity"].unique())
                cmap = plt.get_cmap("viridis")
                for i, k in enumerate(ks):
                    g = c[c["sparsity"] == k].groupby("epoch")[f"{split}/acc"]
                    color = cmap(i / max(1, len(ks) - 1))
                    band(ax, g.mean().index, g.mean(), g.std(ddof=1).fillna(0),
                         f"{100 * k:g} %", color)  # fmt: skip
                last = int(c["epoch"].max())
                ax.axvline(last - 0.5, color="grey", ls=":", lw=1)
                ax.annotate("pruned →", (last - 0.5, 0.02), xycoords=("data", "axes fraction"),
                            ha="right", fontsize=8, color="grey")  # fmt: skip
                what = "training (running, per epoch)" if split == "train" else "test"
                ax.legend(title="sparsity k", fontsize=7, ncol=2)
                where = f" ({group})" if group else ""
                finish(
                    fig, ax, out / epoch_plot_name(split, strategy, str(group)), written,
                    xlabel="epoch (last point: pruned model)",
                    ylabel=f"{what} accuracy (%)",
                    title=f"{split.capitalize()} accuracy, {strategy_label(strategy)}{where}"
                          f" — {title}",
                )  # fmt: skip
    return written


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
        x_axis(ax, x, agg, [strategy])
        finish(
            fig, ax, out / sparsity_plot_name(strategy), written,
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
        x_axis(ax, x, agg, strategies)
        what = "training" if split == "train" else "test"
        finish(
            fig, ax, out / COMPARISON_PLOTS[split], written,
            ylabel=f"{what} accuracy of the pruned model (%)", ylim=(0, 101),
            title=f"{what.capitalize()} accuracy: pruning strategies compared — {title}",
        )  # fmt: skip
    return written


def plot_equal_cost(
    agg: pd.DataFrame, strategies: list[str], out: Path, title: str, x: str = "sparsity"
) -> list[str]:
    """Test accuracy against what was really removed, not against the nominal k.

    Unit pruning at k also kills the next layer's input columns, so at equal k it removes
    far more weights than weight pruning. These two plots compare the strategies at equal
    *effective* sparsity (``x="compression"``: its compression ratio) and at equal FLOPs per
    sample of the best inference form.
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
            xlabel = "effective " + COMPRESSION_LABEL
            compression_axis(ax, compression_ratio(agg[f"{col}_mean"]), xlabel)
        elif col == "sparsity/effective":
            sparsity_axis(ax, xlabel, right=float(agg[f"{col}_mean"].max()))
        else:
            ax.set_xscale("log")
            ax.invert_xaxis()  # cheaper to the right, as sparsity grows on the other plots
        finish(
            fig, ax, out / name, written,
            xlabel=xlabel, ylabel="test accuracy of the pruned model (%)", ylim=(0, 101),
            title=f"Test accuracy at equal cost — {title}",
        )  # fmt: skip
    return written


def plot_drop(agg: pd.DataFrame, out: Path, title: str) -> list[str]:
    """ShrinkBench's headline plot: test accuracy − dense (same group and seed) vs
    compression ratio.

    The band is the std over seeds of the *paired* differences (``stats.dense_drop``), so it
    shows how much pruning varies, not how much the dense models do. Not drawn if no seed has
    a dense job.
    """
    import matplotlib.pyplot as plt

    if "test_acc_drop_mean" not in agg or agg["test_acc_drop_mean"].isna().all():
        return []
    written: list[str] = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (strategy, group, a) in enumerate(arms(agg)):
        a = a.dropna(subset=["test_acc_drop_mean"]).sort_values("compression")
        if a.empty:
            continue
        band(ax, a["compression"], a["test_acc_drop_mean"], a["test_acc_drop_std"],
             line_label(strategy, group), f"C{i % 10}")  # fmt: skip
    ax.axhline(0.0, color="grey", ls=":", lw=1)
    compression_axis(ax, agg["compression"])
    finish(
        fig, ax, out / DROP_PLOT, written,
        ylabel="test accuracy − dense model of the same seed (points)",
        title=f"Accuracy drop vs compression — {title}",
    )  # fmt: skip
    return written
