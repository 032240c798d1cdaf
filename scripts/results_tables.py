"""The tables of docs/RESULTS.md, from the reports of ``scripts/run_results.sh``'s three arms.

Reads ``<results>/<arm>/report/summary.csv`` (arm = oneshot, finetune, gradual; numbers copied
verbatim from each job's result.json by ``prunelab.report``) and prints markdown:

1. test accuracy vs k for both strategies in each arm, mean ± std over seeds;
2. magnitude vs random pruning at the same k (oneshot arm), with the difference;
3. equal cost, per arm: unit pruning at each k against weight pruning at the *same effective
   sparsity* (weights actually removed, dead next-layer inputs counted) and FLOPs per sample;
4. each issue-5 target with its measured figure.

    python scripts/results_tables.py outputs/results > outputs/results/tables.md
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ARMS = {"oneshot": "one-shot", "finetune": "one-shot + fine-tune", "gradual": "gradual"}
# The arms run again from the dense phase used before 2026-11-26 (cosine 1e-3, no averaging).
COSINE_ARMS = {f"{arm}_cosine": arm for arm in ("finetune", "gradual")}
LABEL = {"weight": "weight", "neuron": "unit", "random_weight": "random weight",
         "random_neuron": "random unit"}  # fmt: skip


def load(root: Path) -> dict[str, pd.DataFrame]:
    """Each arm's summary.csv that exists, with flops/best (the cheaper inference form)."""
    arms = {}
    for arm in [*ARMS, *COSINE_ARMS]:
        path = root / arm / "report" / "summary.csv"
        if path.is_file():
            df = pd.read_csv(path)
            df["flops/best"] = df[["flops/compact", "flops/sparse"]].min(axis=1)
            arms[arm] = df
    if not arms:
        sys.exit(f"error: no <arm>/report/summary.csv under {root}; run scripts/run_results.sh")
    return arms


def stats(df: pd.DataFrame, strategy: str, col: str = "test_acc") -> pd.DataFrame:
    """Mean, std (ddof=1) and count of ``col`` per k for ``strategy``."""
    g = df[df["strategy"] == strategy].groupby("sparsity")[col]
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.size()})


def pm(row: pd.Series | None, scale: float = 100.0) -> str:
    if row is None or (isinstance(row, pd.Series) and math.isnan(row["mean"])):
        return "—"
    if row["n"] < 2:
        return f"{scale * row['mean']:.2f}"
    return f"{scale * row['mean']:.2f} ± {scale * row['std']:.2f}"


def cell(table: pd.DataFrame, k: float) -> pd.Series | None:
    return table.loc[k] if k in table.index else None


def dense_phase_table(arms: dict[str, pd.DataFrame]) -> list[str]:
    """Each helped arm from the default dense phase and from the former one, at the k both
    ran, with the mean over those cells."""
    lines = ["| arm | strategy | k % | default dense phase | cosine 1e-3, no averaging |",
             "|---|---|---:|---:|---:|"]  # fmt: skip
    for cosine, arm in COSINE_ARMS.items():
        if cosine not in arms or arm not in arms:
            continue
        means = {}
        for s in ("weight", "neuron"):
            new, old = stats(arms[arm], s), stats(arms[cosine], s)
            for k in old.index:
                lines.append(f"| {ARMS[arm]} | {LABEL[s]} | {100 * k:g} | {pm(cell(new, k))} | "
                             f"{pm(cell(old, k))} |")  # fmt: skip
                means.setdefault("new", []).append(new.loc[k, "mean"] if k in new.index else np.nan)
                means.setdefault("old", []).append(old.loc[k, "mean"])
        new_mean, old_mean = 100 * np.nanmean(means["new"]), 100 * np.mean(means["old"])
        lines.append(f"| {ARMS[arm]} | mean of the cells | | {new_mean:.2f} | {old_mean:.2f} |")
    return lines


def accuracy_tables(arms: dict[str, pd.DataFrame]) -> list[str]:
    cols = [(arm, s) for s in ("weight", "neuron") for arm in arms if arm in ARMS]
    tables = {c: stats(arms[c[0]], c[1]) for c in cols}
    ks = sorted({k for t in tables.values() for k in t.index})
    head = [f"{LABEL[s]}, {ARMS[a]}" for a, s in cols]
    lines = ["| k % | " + " | ".join(head) + " |", "|---:|" + "---:|" * len(cols)]
    for k in ks:
        lines.append(f"| {100 * k:g} | " + " | ".join(pm(cell(tables[c], k)) for c in cols) + " |")
    return lines


def random_table(df: pd.DataFrame) -> list[str]:
    lines = ["| k % | weight | random weight | Δ | unit | random unit | Δ |",
             "|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    pairs = [("weight", "random_weight"), ("neuron", "random_neuron")]
    tables = {s: stats(df, s) for pair in pairs for s in pair}
    for k in sorted(tables["weight"].index):
        cells = []
        for mag, rnd in pairs:
            a, b = cell(tables[mag], k), cell(tables[rnd], k)
            delta = "—" if a is None or b is None else f"{100 * (a['mean'] - b['mean']):+.2f}"
            cells += [pm(a), pm(b), delta]
        lines.append(f"| {100 * k:g} | " + " | ".join(cells) + " |")
    return lines


def interp_on_log_scale(x: float, xs: np.ndarray, ys: np.ndarray) -> float:
    """Linear interpolation in -log10(1 - sparsity), the scale the curves are smooth on."""
    t = -np.log10(1 - np.clip(xs, 0, 0.9999))
    return float(np.interp(-np.log10(1 - min(x, 0.9999)), t, ys))


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
        row = cell(stats(arms[arm], strategy), k)
        if row is None:
            return
        ok = "met" if row["mean"] >= goal else "**missed**"
        checks.append(f"| {name} | ≥ {100 * goal:g} | {pm(row)} | {ok} |")

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, nargs="?", default=Path("outputs/results"))
    args = parser.parse_args()
    arms = load(args.results)
    out = ["## Test accuracy (%) vs sparsity, mean ± std over seeds", "", *accuracy_tables(arms)]
    if "oneshot" in arms:
        df = arms["oneshot"]
        out += ["", "## Magnitude vs random (one-shot, no fine-tuning)", "", *random_table(df)]
    for arm, df in arms.items():
        if arm in ARMS:
            out += ["", f"## Equal cost ({ARMS[arm]})", "", *equal_cost_table(df)]
    if any(arm in arms for arm in COSINE_ARMS):
        out += ["", "## The helped arms from either dense phase", "", *dense_phase_table(arms)]
    out += ["", "## Targets", "", *targets(arms)]
    seeds = sorted({int(s) for df in arms.values() for s in df["seed"].unique()})
    hours = {a: df["wall_time_s"].sum() / 60 for a, df in arms.items()}
    out += ["", f"Seeds: {seeds}. Sum of job wall times (min): "
            + ", ".join(f"{a} {m:.1f}" for a, m in hours.items()) + "."]  # fmt: skip
    print("\n".join(out))


if __name__ == "__main__":
    main()
