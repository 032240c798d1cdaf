"""The report of sensitivity scans (``schedule=sensitivity``): each layer's accuracy drop at
each k, the plot of it, and the budgets.

A scan job's ``result.json`` carries its table under ``sensitivity`` (``prunelab.scans``).
Scans of the same settings but the seed are one group: their drops are averaged over seeds
(mean ± std, ddof=1), and a group of other settings (another model, criterion, dense phase,
grid or ``max_drop``) is reported apart, never averaged with it. Per group: a table of the
validation drop per layer and k (the split the budget reads; the test split's in
``sensitivity.csv``, every row of every seed), ``Sensitivity.png`` (drop against k, one line
per layer, error bars across seeds, the ``max_drop`` line), each seed's budget as its job
wrote it, and the budget the mean drops give (what to use for a new seed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunelab.identity import identity_settings, show
from prunelab.report.axes import sparsity_axis
from prunelab.scans import SPLIT, TABLE_FILE, budget_record, is_scan_result

PLOT = "Sensitivity.png"
DROP_LABEL = "validation accuracy drop (points; symmetric log scale)"


def group_settings(result: Mapping[str, Any]) -> dict[str, Any]:
    """What makes scans comparable: every setting of their identity but the seed."""
    settings = identity_settings(result.get("config") or {})
    settings.pop("seed", None)
    return settings


def scan_groups(results: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """The scans among ``results`` grouped by ``group_settings``, in the order first met, each
    with its label: the settings that differ between the groups (empty for one group)."""
    scans = [r for r in results if is_scan_result(r)]
    keyed: dict[str, list[Mapping[str, Any]]] = {}
    for r in scans:
        keyed.setdefault(json.dumps(group_settings(r), sort_keys=True, default=str), []).append(r)
    settings = [group_settings(group[0]) for group in keyed.values()]
    keys = sorted({k for s in settings for k in s})
    varied = [k for k in keys if len({json.dumps(s.get(k), default=str) for s in settings}) > 1]
    return [(", ".join(f"{k}={show(s.get(k))}" for k in varied), group)
            for s, group in zip(settings, keyed.values(), strict=True)]  # fmt: skip


def scan_rows(results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Every (layer, k) row of every scan of one group, with its seed."""
    rows = [{**row, "seed": r.get("seed")} for r in results for row in r["sensitivity"]["rows"]]
    return pd.DataFrame(rows)


def drop_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1; 0 for one seed) and seeds of each split's drop per (layer, k)."""
    keys = ["layer", "name", "weights", "k"]
    grouped = rows.groupby(keys, sort=True)
    stats = grouped[[f"{s}_drop" for s in ("val", "test")]].agg(["mean", "std"])
    stats.columns = [f"{c}_{s}" for c, s in stats.columns]
    stats = stats.fillna(0.0)
    stats["seeds"] = grouped["seed"].nunique()
    return stats.reset_index()


def cell(mean: float, std: float, n: int) -> str:
    """A drop in points: ``+0.12 ± 0.03`` (one seed: ``+0.12``)."""
    return f"{mean:+.2f}" if n < 2 else f"{mean:+.2f} ± {std:.2f}"


def layer_label(row: Mapping[str, Any]) -> str:
    """``L1 layers.0 (784000 weights)``."""
    return f"L{int(row['layer'])} {row['name']} ({int(row['weights'])} weights)"


def drop_table(stats: pd.DataFrame, split: str = SPLIT) -> list[str]:
    """Markdown: one row per layer, one column per k, the drop in points (mean ± std)."""
    ks = sorted(stats["k"].unique())
    lines = ["| layer | weights | " + " | ".join(f"{100 * k:g} %" for k in ks) + " |",
             "|---|---:|" + "---:|" * len(ks)]  # fmt: skip
    for (layer, name, weights), part in stats.groupby(["layer", "name", "weights"], sort=True):
        by_k = part.set_index("k")
        mean, std, seeds = (by_k[c] for c in (f"{split}_drop_mean", f"{split}_drop_std", "seeds"))
        cells = [cell(mean[k], std[k], int(seeds[k])) if k in by_k.index else "–" for k in ks]
        lines.append(f"| L{layer} `{name}` | {weights} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def mean_budget(stats: pd.DataFrame, result: Mapping[str, Any]) -> dict[str, Any]:
    """The budget the drops' means over seeds give, at the group's ``max_drop``."""
    config = result["config"]
    rows = [{"layer": r.layer, "k": r.k, f"{SPLIT}_drop": getattr(r, f"{SPLIT}_drop_mean")}
            for r in stats.itertuples()]  # fmt: skip
    strategy = config["strategy"]
    return budget_record(rows, config["schedule"]["max_drop"], result["sensitivity"]["layers"],
                         strategy["allocation"], strategy["prune_output"])  # fmt: skip


def budget_lines(group: Sequence[Mapping[str, Any]], stats: pd.DataFrame) -> list[str]:
    """Each seed's budget as its job wrote it, then the budget of the mean drops."""
    first = group[0]
    max_drop = first["config"]["schedule"]["max_drop"]
    lines = [f"Budget: per layer, the largest k up to which every k of the grid drops the "
             f"{SPLIT} accuracy by at most {max_drop:g} points (`schedule.max_drop`), and the "
             "global sparsity it gives (weights of the scanned layers):", ""]  # fmt: skip
    for r in sorted(group, key=lambda r: r.get("seed", 0)):
        b = r["sensitivity"]["budget"]
        lines.append(f"- seed {r.get('seed')}: global {100 * b['sparsity']:.2f} %: "
                     f"`{b['override']}`")  # fmt: skip
    if len(group) > 1:
        b = mean_budget(stats, first)
        lines.append(f"- the mean drop over the {len(group)} seeds: global "
                     f"{100 * b['sparsity']:.2f} %: `{b['override']}`")  # fmt: skip
    return [*lines, ""]


def plot_scan(stats: pd.DataFrame, path: Path, title: str, max_drop: float) -> None:
    """The validation drop against k, one line per layer, error bars ± 1 std over seeds, and
    the budget's limit as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for _, part in stats.groupby("layer", sort=True):
        part = part.sort_values("k")
        ax.errorbar(part["k"], part[f"{SPLIT}_drop_mean"], yerr=part[f"{SPLIT}_drop_std"],
                    marker="o", ms=3, capsize=3, label=layer_label(part.iloc[0]))  # fmt: skip
    ax.axhline(max_drop, color="grey", ls="--", lw=1, label=f"max_drop = {max_drop:g} points")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    sparsity_axis(ax, "k: share of the one pruned layer's weights removed (%)", stats["k"])
    ax.set_ylabel(DROP_LABEL)
    ax.grid(alpha=0.3)
    n = int(stats["seeds"].max())
    ax.legend(fontsize=7, title=f"error bars: ± 1 std over {n} seed(s)", title_fontsize=7)
    ax.set_title(f"{title}: each layer pruned alone", fontsize=10)
    fig.savefig(path, dpi=130, bbox_inches="tight", format="png")
    plt.close(fig)


def plot_name(index: int, n_groups: int) -> str:
    """``Sensitivity.png``, or ``Sensitivity_2.png`` for the second of several groups."""
    return PLOT if n_groups == 1 else f"{PLOT[:-4]}_{index + 1}.png"


def sensitivity_report(
    results: Sequence[Mapping[str, Any]], out: Path, title: str
) -> tuple[list[str], list[str]]:
    """``sensitivity.csv`` (every row of every scan) and one plot per group in ``out`` (the
    report's private folder); the markdown section and the plots' names (none of either
    when no result is a scan)."""
    groups = scan_groups(results)
    if not groups:
        return [], []
    frames, lines, plots = [], ["## Sensitivity: each layer pruned alone", ""], []
    lines += [
        f"Accuracy drop from the dense model, in points, on the {SPLIT} split (the end of the "
        "training file, never trained on), mean ± std over seeds, when only that layer is "
        "pruned, at k of its weights (or units), by the strategy's criterion; every other "
        f"layer dense. The test split's drops, and every seed's rows: `{TABLE_FILE}`.",
        "",
    ]
    for i, (label, group) in enumerate(groups):
        rows = scan_rows(group)
        frames.append(rows.assign(group=label))
        stats = drop_stats(rows)
        name = plot_name(i, len(groups))
        plot_scan(stats, out / name, title + (f" · {label}" if label else ""),
                  group[0]["config"]["schedule"]["max_drop"])  # fmt: skip
        plots.append(name)
        dense = {s: [r["sensitivity"]["dense"][f"{s}_acc"] for r in group] for s in ("val", "test")}
        lines += [f"### {label}", ""] if label else []
        accuracies = ", ".join(f"{s} {100 * np.mean(v):.2f} %" for s, v in dense.items())
        samples = group[0]["sensitivity"].get("samples", {}).get(SPLIT)
        lines += [f"Dense model ({len(group)} seed{'s' * (len(group) > 1)}, strategy "
                  f"{group[0]['strategy']}, mean): {accuracies}; {SPLIT} split of {samples} "
                  "images.", ""]  # fmt: skip
        lines += drop_table(stats)
        lines += budget_lines(group, stats)
    (out / TABLE_FILE).write_text(pd.concat(frames, ignore_index=True).to_csv(index=False))
    return lines, plots
