"""The report of IMP jobs (``schedule=imp``): their levels, one line per arm.

An IMP job's ``result.json`` carries ``levels``, one row per level and arm (ticket, random
mask, fresh init; ``prunelab.levels``). Here they become ``levels.csv`` (every row of every
seed), a table of mean ± std over seeds per level, and ``IMP_Levels.png``: test accuracy at
the end of training and at the early-stop epoch (best validation accuracy), and that epoch,
against the share of weights kept on a log axis, as Frankle & Carbin's Figures 3 and 4 draw
them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

LEVELS_PLOT = "IMP_Levels.png"
ARM_LABEL = {
    "ticket": "ticket (rewound)",
    "random": "random mask, same per-layer counts (control)",
    "reinit": "ticket's mask, fresh init (control)",
}


def level_rows(results: list[dict[str, Any]]) -> pd.DataFrame:
    """Every level row of every IMP result, with its seed; empty if none has levels."""
    rows = [{**row, "seed": r.get("seed")} for r in results for row in r.get("levels") or []]
    return pd.DataFrame(rows)


def level_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (level, arm), with the number of seeds."""
    keys = ["test_acc", "test_acc_at_best_val", "best_val_epoch"]
    grouped = rows.groupby(["level", "arm"], sort=True)
    agg = grouped[keys].agg(["mean", "std"])
    agg.columns = [f"{k}_{s}" for k, s in agg.columns]
    agg["kept_all"] = grouped["kept_all"].mean()
    agg["seeds"] = grouped["seed"].nunique()
    return agg.reset_index()


def levels_table(stats: pd.DataFrame) -> list[str]:
    """Markdown: one row per level, test accuracy (end; early stop) and early-stop epoch per
    arm, mean ± std over seeds."""
    arms = [a for a in ARM_LABEL if a in set(stats["arm"])]
    head = ["level", "weights kept %"] + [
        f"{a}: test % (end / early stop), stop epoch" for a in arms
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for level, part in stats.groupby("level", sort=True):
        cells = [str(level), f"{100 * part['kept_all'].iloc[0]:.2f}"]
        for arm in arms:
            r = part[part["arm"] == arm]
            if r.empty:
                cells.append("")
                continue
            r = r.iloc[0].fillna(0.0)  # one seed: no std
            cells.append(
                f"{100 * r.test_acc_mean:.2f} ± {100 * r.test_acc_std:.2f} / "
                f"{100 * r.test_acc_at_best_val_mean:.2f}, "
                f"{r.best_val_epoch_mean:.1f} ± {r.best_val_epoch_std:.1f}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot_levels(stats: pd.DataFrame, path: Path, title: str) -> None:
    """Accuracy and early-stop epoch against the weights kept (log axis), one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = [
        ("test_acc", "test accuracy at the end (%)", 100),
        ("test_acc_at_best_val", "test accuracy at early stop (%)", 100),
        ("best_val_epoch", "early-stop epoch (best validation)", 1),
    ]
    for ax, (key, label, scale) in zip(axes, panels, strict=True):
        for arm, part in stats.groupby("arm", sort=False):
            part = part.sort_values("kept_all", ascending=False)
            x = 100 * part["kept_all"]
            mean, std = scale * part[f"{key}_mean"], scale * part[f"{key}_std"].fillna(0)
            ax.plot(x, mean, marker="o", ms=3, label=ARM_LABEL.get(str(arm), str(arm)))
            ax.fill_between(x, mean - std, mean + std, alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set(xlabel="weights kept (%, log scale; fewer to the right)", ylabel=label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}: iterative magnitude pruning, mean ± std over seeds")
    fig.savefig(path, dpi=130, bbox_inches="tight", format="png")
    plt.close(fig)


def levels_report(
    results: list[dict[str, Any]], out: Path, title: str
) -> tuple[list[str], list[str]]:
    """``levels.csv`` and the plot in ``out`` (the report's private folder, published whole by
    ``make.staged``); the markdown section and the plot's name (none of either when no
    result has levels)."""
    rows = level_rows(results)
    if rows.empty:
        return [], []
    (out / "levels.csv").write_text(rows.to_csv(index=False))
    stats = level_stats(rows)
    plot_levels(stats, out / LEVELS_PLOT, title)
    lines = [
        "## Iterative magnitude pruning: every level",
        "",
        "Test accuracy (%) at the end of each level's training and at its early-stop epoch "
        "(the epoch of best validation accuracy), and that epoch, mean ± std over "
        f"{int(stats['seeds'].max())} seed(s); weights kept counts every layer. Every row of "
        "every seed is in `levels.csv`.",
        "",
        *levels_table(stats),
        "",
    ]
    return lines, [LEVELS_PLOT]
