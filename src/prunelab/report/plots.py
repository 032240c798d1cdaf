"""The report's plots: the original study's eight (train/test accuracy per epoch and accuracy
vs sparsity per strategy, and the strategies compared), for every strategy present, then the
equal-cost and accuracy-drop plots. Bands are ± 1 std over seeds, and every figure says so.

A sweep that varied other settings (``read.varying_keys``) gets one line per (strategy,
group) on the comparison plots and one per-epoch figure per group, named with the group;
a sweep of one group keeps the original file names. A group label too long for a file name
(a folder of runs that differ in a dozen settings) is cut and ends in a hash of the whole
label (``bounded_name``).

What each figure draws is computed by small functions (``epoch_lines``, ``k_limits``,
``axis_ticks``, ``log_ticks``, ``drop_axis``) that the tests call directly.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunelab.report.stats import aggregate, compression_ratio

EQUAL_COST_PLOTS = [
    (
        "Accuracy_vs_Effective_Sparsity.png",
        "sparsity/effective",
        "effective sparsity (% of prunable weights masked or dead)",
    ),
    (
        "Accuracy_vs_FLOPs.png",
        "flops/best",
        "FLOPs per sample of the compact or sparse form (log scale; cheaper to the left)",
    ),
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
    "set": "SET (sparse training, random growth)",
    "rigl": "RigL (sparse training, gradient growth)",
    "imp": "IMP (iterative magnitude pruning, rewound)",
}
# The field's spelling of each method's name, in labels and file names alike.
FIELD_SPELLING = {
    "snip": "SNIP", "grasp": "GraSP", "synflow": "SynFlow", "lamp": "LAMP", "erk": "ERK",
    "rigl": "RigL", "set": "SET", "imp": "IMP", "apoz": "APoZ",
}  # fmt: skip
X_AXES = ("sparsity", "compression")
COMPRESSION_LABEL = "compression ratio 1/(1 − s), s = share of weights masked (×, log scale)"
EFFECTIVE_COMPRESSION_LABEL = (
    "effective compression ratio 1/(1 − s), s = share of weights masked or dead (×, log scale)"
)
SHARED_LABEL = "dense phase (the same for every k)"
FINAL_LABEL = "final evaluation, after pruning (at the last epoch)"
# Lightning's per-epoch train accuracy is a running mean over the epoch's batches; the final
# one is measured on a fixed training subset after pruning.
TRAIN_Y = "training accuracy (%): running, per epoch"
TRAIN_FINAL_LABEL = "final evaluation, after pruning, on a fixed training subset"
# Longest file name the report writes: readable, and far below the file systems' 255 bytes.
MAX_NAME_BYTES = 120
# k up to 99.99 % keeps -log10(1 - k) finite.
MAX_K = 0.9999
K_TICKS = (0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999)
# Closest two tick labels of a k axis, as a share of its width: closer ones would overlap.
MIN_TICK_GAP = 0.04


# ------------------------------------------------------------------------- names


def spell(word: str) -> str:
    """One word of a method's name as the field writes it (``rigl`` → ``RigL``), else as is."""
    return FIELD_SPELLING.get(word.lower(), word)


def strategy_label(strategy: str) -> str:
    """A strategy's name in every label of the report (a plug-in's: its name as typed)."""
    return STRATEGY_LABEL.get(strategy, strategy)


def sentence_start(text: str) -> str:
    """``text`` with its first letter upper case and the rest kept (``str.capitalize`` would
    turn SNIP into Snip)."""
    return text[:1].upper() + text[1:]


def file_title(strategy: str) -> str:
    """``weight`` → ``Weight``, ``random_neuron`` → ``Random_Neuron``, ``snip`` → ``SNIP``:
    the seed's file names, with the field's spelling of a method."""
    return "_".join(FIELD_SPELLING.get(p.lower(), p.capitalize()) for p in strategy.split("_"))


def slug(group: str) -> str:
    """A group label as a file-name suffix: ``schedule.finetune_epochs=1`` → ``…_1``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", group).strip("_")


def bounded_name(stem: str, group: str = "", ext: str = ".png") -> str:
    """``stem__<group slug>.ext``, as long as it fits ``MAX_NAME_BYTES``; else the readable
    start of it and ``_<8 hex>``, a hash of the stem and the whole group label, so two groups
    never share a file and the same group keeps its name from one report to the next."""
    readable = f"{stem}__{slug(group)}" if group else stem
    if len((readable + ext).encode()) <= MAX_NAME_BYTES:
        return readable + ext
    digest = hashlib.sha1(f"{stem}\n{group}".encode()).hexdigest()[:8]
    room = MAX_NAME_BYTES - len(f"_{digest}{ext}".encode())
    head = readable.encode()[:room].decode(errors="ignore").rstrip("_")
    return f"{head}_{digest}{ext}"


def epoch_plot_name(split: str, strategy: str, group: str = "") -> str:
    return bounded_name(f"{split.capitalize()}_Accuracy_{file_title(strategy)}_Pruning", group)


def sparsity_plot_name(strategy: str) -> str:
    return bounded_name(f"Accuracy_vs_Sparsity_for_{file_title(strategy)}_Pruning")


def line_label(strategy: str, group: str) -> str:
    """A line's legend entry: the strategy, then its group's name (``read.group_name``)."""
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


def band_note(seeds: Any) -> str:
    """The legend entry of the shaded bands, from the number of seeds behind each point."""
    n = pd.Series(seeds, dtype=float).dropna()
    lo, hi = (int(n.min()), int(n.max())) if len(n) else (1, 1)
    if hi <= 1:
        return "one seed per point: no band"
    if lo == hi:
        return f"band: ± 1 std over {hi} seeds"
    return f"band: ± 1 std over seeds ({lo}–{hi} per point)"


# ------------------------------------------------------------------------- axes


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


@dataclass(frozen=True)
class Series:
    """One drawn line: x, and the mean and std over seeds at each x (fractions)."""

    x: list[float]
    mean: np.ndarray
    std: np.ndarray


@dataclass
class EpochLines:
    """What a per-epoch figure draws for one (strategy, group): the epochs every k shares
    (the dense phase, drawn once), each k after them, and each k's final evaluation."""

    shared: Series | None = None
    by_k: dict[float, Series] = field(default_factory=dict)
    final: dict[float, Series] = field(default_factory=dict)
    seeds: int = 1


def over_seeds(rows: pd.DataFrame, col: str) -> Series:
    """Mean and std (ddof=1; 0 for one seed) over seeds of ``col`` at each epoch."""
    g = rows.groupby("epoch")[col]
    mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
    return Series([float(e) for e in mean.index], mean.to_numpy(), std.to_numpy())


def shared_epochs(per_epoch: pd.DataFrame) -> int:
    """How many leading epochs the jobs of each seed went through identically, whatever
    their k (train and test accuracy equal): the dense phase a one-shot sweep's jobs share
    (through the dense cache) before pruning makes them differ. An epoch counts only where
    some seed shows it for two k or more; so 0 for a single k, and for schedules that prune
    from the first step (at init, sparse training)."""
    cols = [c for c in ("train/acc", "test/acc") if c in per_epoch]
    n_ks = per_epoch["sparsity"].nunique()
    count = 0
    for _, rows in per_epoch.groupby("epoch", sort=True):
        by_seed = rows.groupby("seed")
        spread = by_seed[cols].max() - by_seed[cols].min()
        seen_twice = (by_seed["sparsity"].nunique() > 1).any()
        if rows["sparsity"].nunique() < n_ks or not seen_twice or (spread > 1e-9).any(axis=None):
            break
        count += 1
    return count


def epoch_lines(curves: pd.DataFrame, split: str) -> EpochLines:
    """The lines of one (strategy, group)'s per-epoch figure of ``split`` (train or test):
    ``curves`` as ``read.epoch_curves`` gives them, for that strategy and group."""
    col = f"{split}/acc"
    per_epoch = curves[~curves["final"].astype(bool)]
    n = shared_epochs(per_epoch)
    epochs = sorted(per_epoch["epoch"].unique())
    lines = EpochLines(seeds=int(curves["seed"].nunique()))
    if n:
        shared = per_epoch[per_epoch["epoch"].isin(epochs[:n])]
        lines.shared = over_seeds(shared.drop_duplicates(["seed", "epoch"]), col)
    for k, rows in curves.groupby("sparsity", sort=True):
        # from the last shared epoch on, so each k's line starts where the dense one ends
        tail = rows[~rows["final"].astype(bool) & (rows["epoch"] >= (epochs[n - 1] if n else 0))]
        if len(tail["epoch"].unique()) > (1 if n else 0):
            lines.by_k[float(k)] = over_seeds(tail, col)
        lines.final[float(k)] = over_seeds(rows[rows["final"].astype(bool)], col)
    return lines


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
