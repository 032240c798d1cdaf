"""The tables of sparse training from the start: on LeNet-300-100, SET, RigL and the static
random ERK mask against Dettmers & Zettlemoyer's numbers, and the whole family side by side at
90 / 95 / 98 % against its training cost in epochs (fourth round, ``family.png``); on
LeNet-5-Caffe, RigL, the static mask and SNIP at the published 2 % density (fifth round).

Reads every ``result.json`` under ``<root>/<arm>``: this study's dst_lenet300, rigl_100ep,
family_lenet300, lenet5_dst and lenet5_rigl_40ep (``rigl_40ep`` in the fifth round's folder),
and the arms of other studies it compares with: snip_init_30ep and lenet5_snip (the init
study), imp_lenet300 (the lottery study), whose folders are searched too. Prints markdown;
mean ± std (ddof=1) over seeds in %, paired differences with a two-sided paired t-test.
``family.png`` goes into the first root.

    python studies/sparse_training/tables.py     # outputs/studies/{sparse_training,init,lottery}
    python studies/sparse_training/tables.py outputs/round4 outputs/round5
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from prunelab.report.studytables import (
    arm_dir,
    header,
    load,
    paired,
    pm,
    results_of,
    row,
    tables_main,
)

ROOTS = (Path("outputs/studies/sparse_training"), Path("outputs/studies/init"),
         Path("outputs/studies/lottery"))  # fmt: skip
DST_KS = (0.9, 0.917, 0.95, 0.98)
FAMILY_KS = (0.9, 0.95, 0.98)
DETTMERS = {0.98: 1.99, 0.917: 1.43}  # sparse momentum, LeNet-300-100, test error %
OFF_AXIS_BELOW = 90.0  # % test accuracy: a mean below it would squash the others' axis
DST_LABEL = {"set": "SET", "rigl": "RigL", "init": "static random ERK mask (control)"}
SPARSE_K = 0.98  # the sparsity of the published comparison: 2 % of the weights kept
# test error % at 2 % density (TimDettmers/sparse_learning's comparison table)
PUBLISHED = {
    "SNIP (Lee et al. 2019)": "0.8",
    "sparse momentum (Dettmers & Zettlemoyer 2019)": "0.76 ± 0.02",
}


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


def family_points(roots: list[Path]) -> pd.DataFrame:
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
        df = load(arm_dir(roots, arm))
        for _, r in df.iterrows():
            if round(r["sparsity"], 3) in FAMILY_KS:
                total = r["epochs"] + r["finetune_epochs"] + r.get("ramp_epochs", 0)
                points.append({"method": method_of(r), "k": round(r["sparsity"], 3),
                               "seed": r["seed"], "test_acc": r["test_acc"],
                               "epochs": total, "reached": r["fig:sparsity/global"]})  # fmt: skip
    imp = arm_dir(roots, "imp_lenet300")
    if imp is not None:
        for r in results_of(imp):
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


def per_seed(errors: pd.Series) -> str:
    """Each seed's test error %, in seed order (what a mean ± std of three hides)."""
    return ", ".join(f"{100 * e:.2f}" for e in errors.sort_index())


def lenet5_section(
    dst: pd.DataFrame, snip: pd.DataFrame, long: pd.DataFrame, longer: pd.DataFrame
) -> list[str]:
    """Test error at 2 % density of each method trained sparse from the start (and of RigL
    trained 40 and 100 epochs, ``long`` and ``longer``), beside the published figures, and the
    paired differences that say which start or which moves pay."""
    lines = ["### Sparse from the start: test error % at 2 % density", ""]
    lines += ["| method | test error % | per seed 0, 1, 2 |", "|---|---|---|"]
    lines += [row(label, [cell, ""]) for label, cell in PUBLISHED.items()]
    arms = [
        ("rigl", "RigL (prunelab, 20 epochs)", dst[dst["schedule"] == "rigl"]),
        ("init", "static random ERK mask (prunelab, 20 epochs)", dst[dst["schedule"] == "init"]),
        ("snip", "SNIP (prunelab, 20 epochs)", snip),
        ("rigl40", "RigL (prunelab, 40 epochs)", long),
        ("rigl100", "RigL (prunelab, 100 epochs)", longer),
    ]
    errors = {}
    for key, label, part in arms:
        if part.empty:
            continue
        err = 1 - part[part["sparsity"] == SPARSE_K].set_index("seed")["test_acc"]
        errors[key] = err.sort_index()
        lines.append(row(label, [pm(errors[key]), per_seed(errors[key])]))
    lines += ["", "Paired by seed (points of test error):", ""]
    for a, b in (("rigl", "init"), ("snip", "init"), ("rigl", "snip"), ("rigl40", "rigl"),
                 ("rigl100", "rigl40")):  # fmt: skip
        if a in errors and b in errors:
            lines.append(f"- {a} − {b}: {paired(errors[a] - errors[b])}")
    return [*lines, ""]


def tables(roots: list[Path]) -> list[str]:
    lines: list[str] = []
    dst = arm_dir(roots, "dst_lenet300")
    if dst is not None:
        lines += dst_section(load(dst), load(arm_dir(roots, "rigl_100ep")))
    if dst is not None or arm_dir(roots, "family_lenet300") is not None:
        # LeNet-300-100's family: not drawn from a folder of LeNet-5's arms alone
        lines += family_section(family_points(roots), roots[0])
    lenet5 = load(arm_dir(roots, "lenet5_dst"))
    if not lenet5.empty:
        snip = load(arm_dir(roots, "lenet5_snip"))
        long = load(arm_dir(roots, "lenet5_rigl_40ep", "rigl_40ep"))
        lines += lenet5_section(lenet5, snip, long, load(arm_dir(roots, "lenet5_rigl_100ep")))
    return lines


def main(argv: list[str] | None = None) -> int:
    return tables_main(argv, __doc__.splitlines()[0], ROOTS, tables)


if __name__ == "__main__":
    sys.exit(main())
