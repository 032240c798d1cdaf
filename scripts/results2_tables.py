"""The tables of docs/RESULTS.md's second round that compare against papers or pair runs of
different sweeps, from the sweeps of ``scripts/run_results2.sh``: Han et al.'s LeNet-300-100
(in two numeric settings), lottery tickets, what fine-tuning does to the dense model with and
without the guard, and the one-shot headline on 5 seeds (in two numeric settings). The
fine-tune-length table itself is the report's (``outputs/round2/finetune_length/report``).

Reads every ``result.json`` under ``<root>/<arm>`` (numbers verbatim from the runs) and prints
markdown: mean ± std (ddof=1) over seeds, in %, with the number of seeds.

    python scripts/results2_tables.py outputs/round2 > outputs/round2/tables.md
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from prunelab.report.read import job_dirs
from prunelab.results import read_result

HAN_PAPER = {"dense error %": 1.64, "pruned error %": 1.59, "kept %": 8.0}
HAN_LAYERS = {"fc1": 8.0, "fc2": 9.0, "fc3 (output)": 26.0}
LOTTERY_ARMS = {
    ("weight", False): "ticket (magnitude mask, original init)",
    ("weight", True): "same mask, fresh init",
    ("random_weight", False): "random mask, original init",
    ("random_weight", True): "random mask, fresh init",
}


def load(folder: Path) -> pd.DataFrame:
    """One row per finished job under ``folder`` (superseded runs excepted): its result, its
    figures, the settings we group by, and the thread count it ran with."""
    rows = []
    for job in job_dirs(folder):  # the report's walk: hidden (superseded) folders excepted
        r = read_result(job)
        if r is None:
            continue
        cfg = r["config"]
        rows.append(
            {
                **{k: v for k, v in r.items() if not isinstance(v, (dict, list))},
                **{f"fig:{k}": v for k, v in r["figures"].items()},
                "reinit": bool(cfg["schedule"].get("reinit", False)),
                "guard": bool(cfg["finetune_guard"]),
                "threads": r["numerics"]["threads"],
            }
        )
    return pd.DataFrame(rows)


def pm(values: Iterable[float], scale: float = 100.0, signed: bool = False) -> str:
    """``mean ± std`` of ``values`` × ``scale`` (std with ddof=1)."""
    v = np.asarray([x for x in values if x is not None and not pd.isna(x)], dtype=float) * scale
    if v.size == 0:
        return "—"
    sign = "+" if signed else ""
    return f"{v.mean():{sign}.2f}" + (f" ± {v.std(ddof=1):.2f}" if v.size > 1 else "")


def seeds(df: pd.DataFrame) -> str:
    return ", ".join(str(s) for s in sorted(df["seed"].unique()))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def han(runs: dict[str, pd.DataFrame]) -> str:
    """Dense and pruned LeNet-300-100 next to Han et al.'s Table 1, per thread count."""
    rows = []
    for label, df in runs.items():
        dense, pruned = df[df["sparsity"] == 0], df[df["sparsity"] > 0]
        errors = ", ".join(f"{100 * (1 - a):.2f}" for a in pruned.sort_values("seed")["test_acc"])
        rows.append([f"{label} (seeds {seeds(df)})", pm(1 - dense["test_acc"]),
                     pm(1 - pruned["test_acc"]), errors,
                     pm(pruned["fig:params/nonzero"] / pruned["fig:params/total"])])  # fmt: skip
    rows.append(["paper", f"{HAN_PAPER['dense error %']}", f"{HAN_PAPER['pruned error %']}",
                 "", f"{HAN_PAPER['kept %']}"])  # fmt: skip
    header = ["", "dense error %", "pruned error %", "pruned error % per seed", "weights kept %"]
    layers = next(iter(runs.values()))
    layers = layers[layers["sparsity"] > 0]
    kept = [[name, f"{paper:g}", pm(1 - layers[f"fig:sparsity/layer{i}"])]
            for i, (name, paper) in enumerate(HAN_LAYERS.items(), start=1)]  # fmt: skip
    return (
        markdown_table(header, rows)
        + "\n\n"
        + markdown_table(["layer", "paper kept %", "ours kept %"], kept)
    )


def lottery(df: pd.DataFrame) -> str:
    """Test accuracy per k of the ticket and its controls, and the ticket's margin over the
    better control (paired per seed), with the seeds in which the ticket won."""
    rows = []
    for k, at_k in df.groupby("sparsity"):
        arm_acc = {
            arm: at_k[(at_k["strategy"] == s) & (at_k["reinit"] == r)].set_index("seed")["test_acc"]
            for (s, r), arm in LOTTERY_ARMS.items()
        }
        ticket = arm_acc[LOTTERY_ARMS[("weight", False)]]
        controls = [arm_acc[LOTTERY_ARMS[("weight", True)]],
                    arm_acc[LOTTERY_ARMS[("random_weight", False)]]]  # fmt: skip
        best = pd.concat(controls, axis=1).max(axis=1)
        margin = (ticket - best).dropna()
        cells = [pm(a) for a in arm_acc.values()]
        won = f"{int((margin > 0).sum())} of {len(margin)}"
        rows.append([f"{100 * k:g}", *cells, pm(margin, signed=True), won])
    header = ["k %", *LOTTERY_ARMS.values(), "ticket − better control (points)", "seeds won"]
    return f"Seeds {seeds(df)}.\n\n" + markdown_table(header, rows)


def unguarded(guarded: pd.DataFrame, free: pd.DataFrame) -> str:
    """What fine-tuning does to the dense model (k = 0), paired per seed against its
    0-epoch job, with the default guard (the fine-tune-length sweep) and without."""
    dense = guarded[(guarded["sparsity"] == 0) & (guarded["strategy"] == "weight")]
    base = dense[dense["finetune_epochs"] == 0].set_index("seed")["test_acc"]
    rows = []
    for n in sorted(free["finetune_epochs"].unique()):
        cells = []
        for runs in (dense, free):
            at_n = runs[runs["finetune_epochs"] == n].set_index("seed")["test_acc"]
            change = (at_n - base).dropna()
            worst = f"{100 * change.min():+.2f}" if len(change) else "—"
            cells += [pm(change, signed=True), worst]
        rows.append([f"{n}", *cells])
    header = ["fine-tune epochs", "change at k = 0, guard (points)", "worst seed",
              "change at k = 0, no guard", "worst seed"]  # fmt: skip
    return markdown_table(header, rows)


def oneshot(runs: dict[str, pd.DataFrame]) -> str:
    """The challenge's one-shot numbers on 5 seeds, per thread count, and the headline
    claim (weight pruning at k = 90 % keeps ≥ 96 %) per setting and per seed."""
    rows = []
    for label, df in runs.items():
        cells = [pm(df[(df["strategy"] == "weight") & (df["sparsity"] == 0)]["test_acc"])]
        for strategy, k in (("weight", 0.9), ("weight", 0.95), ("neuron", 0.5)):
            cells.append(pm(df[(df["strategy"] == strategy) & (df["sparsity"] == k)]["test_acc"]))
        w90 = df[(df["strategy"] == "weight") & (df["sparsity"] == 0.9)]
        held = f"{int((w90['test_acc'] >= 0.96).sum())} of {len(w90)}"
        rows.append([f"{label} (seeds {seeds(df)})", *cells, held])
    header = ["numeric setting", "dense", "weight k = 90 %", "weight k = 95 %", "unit k = 50 %",
              "seeds with weight k = 90 % ≥ 96 %"]  # fmt: skip
    return markdown_table(header, rows)


def threads_label(df: pd.DataFrame) -> str:
    counts = sorted(df["threads"].unique())
    return " and ".join(f"{c} thread{'s' if c > 1 else ''}" for c in counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the folder of run_results2.sh's sweeps")
    args = parser.parse_args(argv)
    arms = {p.name: load(p) for p in sorted(args.root.iterdir()) if p.is_dir()}
    arms = {name: df for name, df in arms.items() if not df.empty}
    out = []
    for title, names, table in (
        ("Han et al. 2015, LeNet-300-100", ("han_lenet300", "han_lenet300_1thread"), han),
        ("One-shot on 5 seeds", ("oneshot_5seeds", "oneshot_5seeds_1thread"), oneshot),
    ):
        runs = {threads_label(arms[n]): arms[n] for n in names if n in arms}
        if runs:
            out.append(f"## {title}\n\n{table(runs)}\n")
    if "lottery_lenet300" in arms:
        out.append(f"## Lottery tickets, LeNet-300-100\n\n{lottery(arms['lottery_lenet300'])}\n")
    if {"finetune_length", "finetune_unguarded"} <= set(arms):
        table = unguarded(arms["finetune_length"], arms["finetune_unguarded"])
        out.append(f"## Fine-tuning the dense model, with and without the guard\n\n{table}\n")
    if not out:
        print(f"error: no result.json of run_results2.sh's arms under {args.root}", file=sys.stderr)
        return 1
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
