"""The tables of weights against units: the challenge's three arms (one-shot with random
controls, one-shot + fine-tune, gradual), equal cost and the acceptance targets (first round),
the one-shot headline on 5 seeds in two thread settings (second round), and LeNet-5-Caffe's
weights against channels at equal effective sparsity (fifth round).

Reads ``<root>/<arm>/report/summary.csv`` of oneshot, finetune, gradual (the fine-tuned arm is
the finetune study's: its folder is searched too) and every ``result.json`` of
oneshot_5seeds, oneshot_5seeds_1thread and lenet5_channels; prints markdown, mean ± std
(ddof=1) over seeds in %.

    python studies/weight_vs_unit/tables.py                    # outputs/studies/weight_vs_unit
    python studies/weight_vs_unit/tables.py outputs/results outputs/round2 outputs/round5
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from prunelab.report.studytables import (
    arm_dir,
    by_threads,
    header,
    interp_on_log_scale,
    load,
    markdown_table,
    paired,
    pm,
    pm_stats,
    read_summary,
    row,
    seeds_of,
    stats,
    stats_cell,
    tables_main,
)

ROOTS = (Path("outputs/studies/weight_vs_unit"), Path("outputs/studies/finetune"))
ARMS = {"oneshot": "one-shot", "finetune": "one-shot + fine-tune", "gradual": "gradual"}
LABEL = {"weight": "weight", "neuron": "unit", "random_weight": "random weight",
         "random_neuron": "random unit"}  # fmt: skip
CHANNEL_KS = (0.5, 0.7, 0.8, 0.9, 0.95)


def summaries(roots: Sequence[Path]) -> dict[str, pd.DataFrame]:
    """The first round's arms whose report exists, in the order of ``ARMS``."""
    arms = {}
    for arm in ARMS:
        folder = arm_dir(roots, arm)
        df = read_summary(folder) if folder is not None else None
        if df is not None:
            arms[arm] = df
    return arms


def accuracy_tables(arms: dict[str, pd.DataFrame]) -> list[str]:
    cols = [(arm, s) for s in ("weight", "neuron") for arm in arms if arm in ARMS]
    tables = {c: stats(arms[c[0]], c[1]) for c in cols}
    ks = sorted({k for t in tables.values() for k in t.index})
    head = [f"{LABEL[s]}, {ARMS[a]}" for a, s in cols]
    lines = ["| k % | " + " | ".join(head) + " |", "|---:|" + "---:|" * len(cols)]
    for k in ks:
        cells = (pm_stats(stats_cell(tables[c], k)) for c in cols)
        lines.append(f"| {100 * k:g} | " + " | ".join(cells) + " |")
    return lines


def random_table(df: pd.DataFrame) -> list[str]:
    lines = ["| k % | weight | random weight | Δ | unit | random unit | Δ |",
             "|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    pairs = [("weight", "random_weight"), ("neuron", "random_neuron")]
    tables = {s: stats(df, s) for pair in pairs for s in pair}
    for k in sorted(tables["weight"].index):
        cells = []
        for mag, rnd in pairs:
            a, b = stats_cell(tables[mag], k), stats_cell(tables[rnd], k)
            delta = "—" if a is None or b is None else f"{100 * (a['mean'] - b['mean']):+.2f}"
            cells += [pm_stats(a), pm_stats(b), delta]
        lines.append(f"| {100 * k:g} | " + " | ".join(cells) + " |")
    return lines


def equal_cost_table(df: pd.DataFrame) -> list[str]:
    """Unit pruning at k vs weight pruning at the same effective sparsity (interpolated)."""
    w = df[df["strategy"] == "weight"].groupby("sparsity")[["sparsity/effective", "test_acc",
                                                            "flops/best"]].mean()  # fmt: skip
    u = df[df["strategy"] == "neuron"].groupby("sparsity")[["sparsity/effective", "test_acc",
                                                            "flops/best"]].mean()  # fmt: skip
    dense_flops = float(df["flops/dense"].iloc[0])
    xs, ys = w["sparsity/effective"].to_numpy(), w["test_acc"].to_numpy()
    lines = [
        "| unit k % | effective sparsity % | FLOPs/sample (× dense) | unit test % "
        "| weight test % at that effective sparsity |",
        "|---:|---:|---:|---:|---:|",
    ]
    for k, r in u.iterrows():
        if k == 0:
            continue
        eff = r["sparsity/effective"]
        weight = f"{100 * interp_on_log_scale(eff, xs, ys):.2f}"
        if eff > xs.max():
            weight = f"≤ {100 * ys[xs.argmax()]:.2f} (beyond the k grid)"
        lines.append(
            f"| {100 * k:g} | {100 * eff:.1f} | {r['flops/best'] / dense_flops:.3f} | "
            f"{100 * r['test_acc']:.2f} | {weight} |"
        )
    return lines


def targets(arms: dict[str, pd.DataFrame]) -> list[str]:
    """Issue 5's acceptance targets, each with the measured mean ± std."""
    checks = []

    def add(name: str, arm: str, strategy: str, k: float, goal: float) -> None:
        if arm not in arms:
            return
        found = stats_cell(stats(arms[arm], strategy), k)
        if found is None:
            return
        ok = "met" if found["mean"] >= goal else "**missed**"
        checks.append(f"| {name} | ≥ {100 * goal:g} | {pm_stats(found)} | {ok} |")

    add("dense baseline (k = 0)", "oneshot", "weight", 0.0, 0.982)
    add("weight k = 90 %, one-shot, no fine-tune", "oneshot", "weight", 0.9, 0.96)
    add("weight k = 95 %, fine-tuned", "finetune", "weight", 0.95, 0.975)
    add("unit k = 90 %, fine-tuned", "finetune", "neuron", 0.9, 0.97)
    if "oneshot" in arms:
        df = arms["oneshot"]
        for mag, rnd in (("weight", "random_weight"), ("neuron", "random_neuron")):
            a, b = stats(df, mag), stats(df, rnd)
            ks = [k for k in a.index if k >= 0.5 and k in b.index]
            if ks:
                wins = sum(a.loc[k, "mean"] > b.loc[k, "mean"] for k in ks)
                ok = "met" if wins == len(ks) else "**missed**"
                checks.append(f"| {LABEL[mag]} beats {LABEL[rnd]}, every k ≥ 50 % | all | "
                              f"{wins} of {len(ks)} k | {ok} |")  # fmt: skip
    return ["| target | goal % | measured % | |", "|---|---:|---:|---|", *checks]


def first_round(arms: dict[str, pd.DataFrame]) -> list[str]:
    """The challenge's arms: accuracy, magnitude vs random, equal cost, the targets."""
    out = ["## Test accuracy (%) vs sparsity, mean ± std over seeds", "", *accuracy_tables(arms)]
    if "oneshot" in arms:
        df = arms["oneshot"]
        out += ["", "## Magnitude vs random (one-shot, no fine-tuning)", "", *random_table(df)]
    for arm, df in arms.items():
        out += ["", f"## Equal cost ({ARMS[arm]})", "", *equal_cost_table(df)]
    out += ["", "## Targets", "", *targets(arms)]
    seeds = sorted({int(s) for df in arms.values() for s in df["seed"].unique()})
    minutes = {a: df["wall_time_s"].sum() / 60 for a, df in arms.items()}
    out += ["", f"Seeds: {seeds}. Sum of job wall times (min): "
            + ", ".join(f"{a} {m:.1f}" for a, m in minutes.items()) + "."]  # fmt: skip
    return out


def oneshot_5seeds(runs: dict[str, pd.DataFrame]) -> str:
    """The challenge's one-shot numbers on 5 seeds, per thread count, and the headline
    claim (weight pruning at k = 90 % keeps ≥ 96 %) per setting and per seed."""
    rows = []
    for label, df in runs.items():
        w0 = df[(df["strategy"] == "weight") & (df["sparsity"] == 0)]["test_acc"]
        cells = [pm(w0, lone_std=False, missing="—")]
        for strategy, k in (("weight", 0.9), ("weight", 0.95), ("neuron", 0.5)):
            acc = df[(df["strategy"] == strategy) & (df["sparsity"] == k)]["test_acc"]
            cells.append(pm(acc, lone_std=False, missing="—"))
        w90 = df[(df["strategy"] == "weight") & (df["sparsity"] == 0.9)]
        held = f"{int((w90['test_acc'] >= 0.96).sum())} of {len(w90)}"
        rows.append([f"{label} (seeds {seeds_of(df)})", *cells, held])
    head = ["numeric setting", "dense", "weight k = 90 %", "weight k = 95 %", "unit k = 50 %",
            "seeds with weight k = 90 % ≥ 96 %"]  # fmt: skip
    return markdown_table(head, rows)


def weight_at(weights: pd.DataFrame, effective: float) -> float:
    """One seed's weight-pruning test accuracy at this effective sparsity, interpolated on its
    curve on the first round's scale (``interp_on_log_scale``); NaN beyond the curve's last
    point."""
    curve = weights.sort_values("sparsity_effective")
    x, y = curve["sparsity_effective"].to_numpy(), curve["test_acc"].to_numpy()
    return interp_on_log_scale(effective, x, y) if effective <= x[-1] else float("nan")


def channels_section(df: pd.DataFrame) -> list[str]:
    """LeNet-5's channel pruning at k against weight pruning at the same effective sparsity,
    seed by seed (each seed's weight curve interpolated), with the compact net's FLOPs."""
    lines = ["### Weights or channels at equal cost (one-shot + 2 epochs of fine-tuning)", ""]
    lines += [
        "| channel k % | effective sparsity % | FLOPs (compact / dense) | channel test % "
        "| weight test % at that effective sparsity | weight − channel (points) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    weights, channels = df[df["strategy"] == "weight"], df[df["strategy"] == "neuron"]
    for k in CHANNEL_KS:
        unit = channels[channels["sparsity"] == k].set_index("seed")
        if unit.empty:
            continue
        at = pd.Series(
            {
                seed: weight_at(weights[weights["seed"] == seed], r.sparsity_effective)
                for seed, r in unit.iterrows()
            }
        )
        flops = (unit["flops_compact"] / unit["flops_dense"]).mean()
        diff = (at - unit["test_acc"]).dropna()
        cells = [pm(unit["sparsity_effective"]), f"{flops:.3f}", pm(unit["test_acc"]),
                 pm(at.dropna()), paired(diff) if len(diff) > 1 else "–"]  # fmt: skip
        lines.append(row(f"{100 * k:g}", cells))
    lines += ["", "### Test accuracy % by k (one-shot + 2 epochs of fine-tuning)", ""]
    ks = sorted(df["sparsity"].unique())
    lines += header("strategy", ks)
    for strategy, label in (("weight", "weights (magnitude)"), ("neuron", "channels (L2 norm)")):
        part = df[df["strategy"] == strategy]
        lines.append(row(label, (pm(part[part["sparsity"] == k]["test_acc"]) for k in ks)))
    return [*lines, ""]


def tables(roots: list[Path]) -> list[str]:
    lines: list[str] = []
    arms = summaries(roots)
    if arms:
        lines += first_round(arms)
    runs = by_threads(roots, ("oneshot_5seeds", "oneshot_5seeds_1thread"))
    if runs:
        lines.append(f"## One-shot on 5 seeds\n\n{oneshot_5seeds(runs)}\n")
    channels = load(arm_dir(roots, "lenet5_channels"))
    if not channels.empty:
        lines += channels_section(channels)
    return lines


def main(argv: list[str] | None = None) -> int:
    return tables_main(argv, __doc__.splitlines()[0], ROOTS, tables)


if __name__ == "__main__":
    sys.exit(main())
