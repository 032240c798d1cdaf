"""The tables of docs/RESULTS.md's fourth round, from the sweeps of ``scripts/run_results4.sh``
on LeNet-300-100: sparse training from scratch (SET, RigL, the static random ERK mask) against
Dettmers & Zettlemoyer's numbers, IMP's levels against both controls, and the whole family
side by side at 90 / 95 / 98 % against its training cost in epochs (``family.png``).

Reads every ``result.json`` under ``<root>/<arm>`` (numbers verbatim from the runs) and prints
markdown; mean ± std (ddof=1) over seeds in %, paired differences with a two-sided paired
t-test (``results3_tables.paired``).

    python scripts/results4_tables.py outputs/round4 > outputs/round4/tables.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunelab.report.levels import level_rows, level_stats, levels_table
from prunelab.report.read import job_dirs
from prunelab.results import read_result

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results3_tables import header, load, paired, pm, row

DST_KS = (0.9, 0.917, 0.95, 0.98)
FAMILY_KS = (0.9, 0.95, 0.98)
DETTMERS = {0.98: 1.99, 0.917: 1.43}  # sparse momentum, LeNet-300-100, test error %
OFF_AXIS_BELOW = 90.0  # % test accuracy: a mean below it would squash the others' axis
DST_LABEL = {"set": "SET", "rigl": "RigL", "init": "static random ERK mask (control)"}


def dst_section(df: pd.DataFrame, long: pd.DataFrame | None = None) -> list[str]:
    """Test accuracy per sparse-training method and k, test error against the paper (and of
    RigL trained 100 epochs, ``long``), and the paired differences that say whether moving
    the weights, and how, helps."""
    lines = ["### Sparse training from scratch: test accuracy %", ""]
    lines += header("method", DST_KS)
    for sched, label in DST_LABEL.items():
        part = df[df["schedule"] == sched]
        lines.append(row(label, (pm(part[part["sparsity"] == k]["test_acc"]) for k in DST_KS)))
    lines += ["", "### Test error % at the published densities", ""]
    lines += ["| method | 2 % density (98 % removed) | 8.3 % density (91.7 % removed) |",
              "|---|---|---|"]  # fmt: skip
    lines.append(f"| sparse momentum (Dettmers & Zettlemoyer 2019) | {DETTMERS[0.98]} | "
                 f"{DETTMERS[0.917]} |")  # fmt: skip
    for sched, label in DST_LABEL.items():
        part = df[df["schedule"] == sched]
        cells = [pm(1 - part[part["sparsity"] == k]["test_acc"]) for k in (0.98, 0.917)]
        lines.append(row(label, cells))
    if long is not None and not long.empty:
        cells = [pm(1 - long[long["sparsity"] == k]["test_acc"]) for k in (0.98, 0.917)]
        lines.append(row("RigL, 100 epochs", cells))
    lines += ["", "### Paired differences (points, by seed)", ""]
    lines += header("difference", DST_KS)
    acc = df.set_index(["schedule", "sparsity", "seed"])["test_acc"].sort_index()
    for a, b in (("rigl", "set"), ("set", "init"), ("rigl", "init")):
        cells = []
        for k in DST_KS:
            try:
                cells.append(paired((acc[a, k] - acc[b, k]).dropna()))
            except KeyError:
                cells.append("–")
        lines.append(row(f"{DST_LABEL[a].split(' ')[0]} − {DST_LABEL[b].split(' ')[0]}", cells))
    return [*lines, ""]


def imp_results(folder: Path) -> list[dict[str, Any]]:
    return [r for job in job_dirs(folder) if (r := read_result(job)) is not None]


IMP_PAIRED_LEVELS = (3, 7, 11, 15, 19)  # 51, 21, 8.9, 3.9 and 1.8 % of the weights kept
POOLED_FROM = 12  # levels from 7.2 % of the weights kept on


def imp_section(results: list[dict[str, Any]]) -> list[str]:
    """Every level's mean ± std, then paired differences at a few levels: the ticket
    against both controls and against the dense net (level 0) of the same seed, in test
    accuracy and in early-stop epoch."""
    rows = level_rows(results)
    if rows.empty:
        return []
    lines = ["### IMP levels (ticket, random mask, fresh init)", "",
             *levels_table(level_stats(rows)), ""]  # fmt: skip
    levels = [lv for lv in IMP_PAIRED_LEVELS if lv in set(rows["level"])]
    if not levels:
        return lines
    by = rows.set_index(["level", "arm", "seed"]).sort_index()
    kept = {lv: 100 * rows[rows["level"] == lv]["kept_all"].mean() for lv in levels}
    lines += ["### IMP, paired by seed (points; epochs)", "",
              "| difference | " + " | ".join(f"level {lv} ({kept[lv]:.1f} % kept)"
                                          for lv in levels) + " |",
              "|---|" + "---|" * len(levels)]  # fmt: skip

    def diff(key: str, a: tuple[int | None, str], b: tuple[int | None, str], scale: float) -> str:
        cells = []
        for lv in levels:
            x = by.loc[(lv if a[0] is None else a[0], a[1])][key]
            y = by.loc[(lv if b[0] is None else b[0], b[1])][key]
            cells.append(paired((x - y).dropna() * scale))  # paired() reads fractions
        return " | ".join(cells)

    for label, key, a, b, scale in (
        ("ticket − random mask, test acc", "test_acc", (None, "ticket"), (None, "random"), 1),
        ("ticket − fresh init, test acc", "test_acc", (None, "ticket"), (None, "reinit"), 1),
        ("ticket − dense, test acc", "test_acc", (None, "ticket"), (0, "ticket"), 1),
        ("ticket − dense, early-stop epoch", "best_val_epoch", (None, "ticket"), (0, "ticket"),
         0.01),
        ("ticket − random mask, early-stop epoch", "best_val_epoch", (None, "ticket"),
         (None, "random"), 0.01),
        ("ticket − fresh init, early-stop epoch", "best_val_epoch", (None, "ticket"),
         (None, "reinit"), 0.01),
    ):  # fmt: skip
        lines.append(f"| {label} | {diff(key, a, b, scale)} |")
    deep = rows[rows["level"] >= POOLED_FROM].groupby(["arm", "seed"])["best_val_epoch"].mean()
    vs_random = paired((deep["ticket"] - deep["random"]).dropna() / 100)
    vs_reinit = paired((deep["ticket"] - deep["reinit"]).dropna() / 100)
    lines += ["", f"Early-stop epoch averaged over levels {POOLED_FROM}–{rows['level'].max()} "
              f"per seed, then paired by seed: ticket − random mask {vs_random}, ticket − fresh "
              f"init {vs_reinit} (epochs)."]  # fmt: skip
    return [*lines, ""]


def family_points(root: Path) -> pd.DataFrame:
    """One row per (method, k, seed): test accuracy, training epochs, the sparsity reached.
    IMP's ticket enters at the first level whose sparsity of all weights is ≥ k."""
    points = []
    for arm, method_of in (
        ("family_lenet300", lambda r: f"{r['schedule']} + fine-tune" if r["schedule"] == "oneshot"
         else "gradual"),
        ("dst_lenet300", lambda r: {"set": "SET", "rigl": "RigL", "init": "static random ERK"}
         [r["schedule"]]),
        ("snip_init_30ep", lambda r: "SNIP at init"),
        ("rigl_100ep", lambda r: "RigL, 100 epochs"),
    ):  # fmt: skip
        df = load(root / arm) if (root / arm).is_dir() else pd.DataFrame()
        for _, r in df.iterrows():
            if round(r["sparsity"], 3) in FAMILY_KS:
                total = r["epochs"] + r["finetune_epochs"] + r.get("ramp_epochs", 0)
                points.append({"method": method_of(r), "k": round(r["sparsity"], 3),
                               "seed": r["seed"], "test_acc": r["test_acc"],
                               "epochs": total, "reached": r["fig:sparsity/global"]})  # fmt: skip
    if (root / "imp_lenet300").is_dir():
        for r in imp_results(root / "imp_lenet300"):
            tickets = [x for x in r["levels"] if x["arm"] == "ticket"]
            epochs = 0
            for x in tickets:
                epochs += x["epochs"]
                x["cost"] = epochs
            for k in FAMILY_KS:
                first = next((x for x in tickets if 1 - x["kept_all"] >= k), None)
                if first is not None:
                    points.append({"method": "IMP ticket", "k": k, "seed": r["seed"],
                                   "test_acc": first["test_acc"], "epochs": first["cost"],
                                   "reached": 1 - first["kept_all"]})  # fmt: skip
    return pd.DataFrame(points)


def family_section(points: pd.DataFrame, out: Path) -> list[str]:
    if points.empty:
        return []
    lines = ["### The family side by side: test accuracy % (training epochs; sparsity reached)",
             ""]  # fmt: skip
    lines += header("method", FAMILY_KS)
    for method, part in points.groupby("method", sort=False):
        cells = []
        for k in FAMILY_KS:
            p = part[part["k"] == k]
            cells.append(f"{pm(p['test_acc'])} ({p['epochs'].mean():.0f} ep; "
                         f"{100 * p['reached'].mean():.1f} %)" if len(p) else "–")  # fmt: skip
        lines.append(row(str(method), cells))
    plot_family(points, out / "family.png")
    return [*lines, "", "![family](family.png)", ""]


def plot_family(points: pd.DataFrame, path: Path) -> None:
    """Test accuracy against training epochs, one panel per k, one point per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(1, len(FAMILY_KS), figsize=(15, 4.2))
    methods = list(dict.fromkeys(points["method"]))
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    for ax, k in zip(axes, FAMILY_KS, strict=True):
        means, off = [], []
        for method, part in points[points["k"] == k].groupby("method", sort=False):
            acc = 100 * part["test_acc"].to_numpy()
            if acc.mean() < OFF_AXIS_BELOW:  # a collapse: named in the title, not drawn
                off.append(f"{method} {acc.mean():.1f} %")
                continue
            means.append(acc.mean())
            ax.errorbar(part["epochs"].mean(), acc.mean(), yerr=np.std(acc, ddof=1) if
                        len(acc) > 1 else 0, marker="o", capsize=3, label=str(method),
                        color=colors[str(method)])  # fmt: skip
        ax.set_xscale("log")
        ax.set_xticks([25, 50, 100, 200])
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        title = f"{100 * k:g} % of the weights removed"
        ax.set(title=title + (f"\n(off the axis: {'; '.join(off)})" if off else ""),
               xlabel="training epochs (log)", ylabel="test accuracy (%)")  # fmt: skip
        ax.grid(alpha=0.3)
    handles = {h.get_label(): h for ax in axes for h in ax.get_legend_handles_labels()[0]}
    axes[0].legend(handles.values(), handles.keys(), fontsize=7)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the OUT folder of run_results4.sh")
    args = parser.parse_args(argv)
    lines = []
    if (args.root / "dst_lenet300").is_dir():
        long = args.root / "rigl_100ep"
        lines += dst_section(
            load(args.root / "dst_lenet300"), load(long) if long.is_dir() else None
        )
    if (args.root / "imp_lenet300").is_dir():
        lines += imp_section(imp_results(args.root / "imp_lenet300"))
    lines += family_section(family_points(args.root), args.root)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
