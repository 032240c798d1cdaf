"""The tables of docs/RESULTS.md's second round (issue 14), from the sweeps of
``scripts/run_results2.sh``: Han et al.'s LeNet-300-100, lottery tickets, fine-tune length
and one-shot robustness.

Reads every ``result.json`` under ``<root>/<arm>`` (numbers verbatim from the runs) and prints
markdown: mean ± std (ddof=1) over seeds, in %, with the seed count where it is not 3.

    python scripts/results2_tables.py outputs/round2 > outputs/round2/tables.md
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HAN_PAPER = {"dense error %": 1.64, "pruned error %": 1.59, "kept %": 8.0}
HAN_LAYERS = {"fc1": 8.0, "fc2": 9.0, "fc3 (output)": 26.0}
LOTTERY_ARMS = {
    ("weight", False): "ticket (magnitude mask, original init)",
    ("weight", True): "same mask, fresh init",
    ("random_weight", False): "random mask, original init",
    ("random_weight", True): "random mask, fresh init",
}


def load(folder: Path) -> pd.DataFrame:
    """One row per finished job under ``folder``: its result plus the config keys we group by."""
    rows = []
    for path in sorted(folder.rglob("result.json")):
        r = json.loads(path.read_text())
        cfg = r["config"]
        rows.append(
            {
                **{k: v for k, v in r.items() if not isinstance(v, (dict, list))},
                **{f"fig:{k}": v for k, v in r["figures"].items()},
                "reinit": bool(cfg["schedule"].get("reinit", False)),
                "guard": bool(cfg.get("finetune_guard", False)),
                "average_epochs": cfg["optim"].get("average_epochs", 0),
                "lr_schedule": cfg["optim"]["lr_schedule"],
                "lr": cfg["optim"]["lr"],
                "dense_acc": dense_accuracy(path.parent, r),
            }
        )
    return pd.DataFrame(rows)


def dense_accuracy(job: Path, result: dict[str, Any]) -> float | None:
    """Test accuracy at the last dense epoch (the model before pruning), from metrics.csv."""
    try:
        m = pd.read_csv(job / "metrics.csv")
    except (OSError, ValueError):
        return None
    rows = m[(m["epoch"] == result["epochs"] - 1) & m["test/acc"].notna()]
    return float(rows["test/acc"].iloc[0]) if len(rows) else None


def pm(values: Iterable[float], scale: float = 100.0, signed: bool = False) -> str:
    """``mean ± std`` of ``values`` × ``scale`` (std with ddof=1), and the n if not 3."""
    v = np.asarray([x for x in values if x is not None and not pd.isna(x)], dtype=float) * scale
    if v.size == 0:
        return "—"
    sign = "+" if signed else ""
    text = f"{v.mean():{sign}.2f}" + (f" ± {v.std(ddof=1):.2f}" if v.size > 1 else "")
    return text + ("" if v.size == 3 else f" (n={v.size})")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def han(df: pd.DataFrame) -> str:
    """Dense and pruned LeNet-300-100 next to Han et al.'s Table 1."""
    dense, pruned = df[df["sparsity"] == 0], df[df["sparsity"] > 0]
    rows = [
        ["test error %", f"{HAN_PAPER['dense error %']}", pm(1 - dense["test_acc"]),
         f"{HAN_PAPER['pruned error %']}", pm(1 - pruned["test_acc"])],
        ["weights kept %", "100", pm(dense["fig:params/nonzero"] / dense["fig:params/total"]),
         f"{HAN_PAPER['kept %']}", pm(pruned["fig:params/nonzero"] / pruned["fig:params/total"])],
    ]  # fmt: skip
    for i, (name, paper) in enumerate(HAN_LAYERS.items(), start=1):
        kept = 1 - pruned[f"fig:sparsity/layer{i}"]
        rows.append([f"{name} kept %", "100", "100", f"{paper:g}", pm(kept)])
    header = ["", "paper, dense", "ours, dense", "paper, pruned", "ours, pruned"]
    return markdown_table(header, rows)


def lottery(df: pd.DataFrame) -> str:
    """Test accuracy per k of the ticket and its controls, and the ticket's margin over the
    better control (paired per seed)."""
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
        rows.append([f"{100 * k:g}", *cells, pm(margin, signed=True)])
    header = ["k %", *LOTTERY_ARMS.values(), "ticket − better control (points)"]
    return markdown_table(header, rows)


def finetune_length(df: pd.DataFrame) -> str:
    """Test accuracy per (strategy, k) and fine-tune length with the default guard, and at
    k = 0 the change that fine-tuning made with and without it (paired per seed; the
    unguarded jobs are ``run_results2.sh``'s ``finetune_unguarded`` sweep)."""
    guarded = df[df["guard"] | (df["finetune_epochs"] == 0)]
    lengths = sorted(guarded["finetune_epochs"].unique())
    rows = []
    for (strategy, k), g in guarded.groupby(["strategy", "sparsity"]):
        rows.append([strategy, f"{100 * k:g}", *(pm(g[g["finetune_epochs"] == n]["test_acc"])
                                                 for n in lengths)])  # fmt: skip
    table = markdown_table(["strategy", "k %", *(f"{n} epochs" for n in lengths)], rows)
    dense = df[(df["sparsity"] == 0) & (df["strategy"] == "weight")]
    base = dense[dense["finetune_epochs"] == 0].set_index("seed")["test_acc"]
    deltas = []
    for n in lengths[1:]:
        cells = []
        for guard in (True, False):
            runs = dense[(dense["finetune_epochs"] == n) & (dense["guard"] == guard)]
            change = (runs.set_index("seed")["test_acc"] - base).dropna()
            worst = f"{100 * change.min():+.2f}" if len(change) else "—"
            cells += [pm(change, signed=True), worst]
        deltas.append([f"{n}", *cells])
    header = ["fine-tune epochs", "change at k = 0, guard (points)", "worst seed",
              "change at k = 0, no guard", "worst seed"]  # fmt: skip
    return table + "\n\n" + markdown_table(header, deltas)


def oneshot(df: pd.DataFrame) -> str:
    """Dense accuracy and one-shot accuracy at the challenge's hard points, per dense-phase
    setting (the preset's, and the default's from the fine-tune-length sweep)."""
    rows = []
    for (lr, schedule, avg), g in df.groupby(["lr", "lr_schedule", "average_epochs"]):
        name = f"Adam {lr:g}, {schedule}" + (f", mean of the last {avg} epochs" if avg else "")
        cells = [pm(g.drop_duplicates("seed")["dense_acc"])]
        for strategy, k in (("weight", 0.9), ("weight", 0.95), ("neuron", 0.5)):
            cells.append(pm(g[(g["strategy"] == strategy) & (g["sparsity"] == k)]["test_acc"]))
        rows.append([name, *cells])
    header = ["dense phase", "dense", "weight k = 90 %", "weight k = 95 %", "unit k = 50 %"]
    return markdown_table(header, rows)


ARMS: dict[str, tuple[str, Callable[[pd.DataFrame], str]]] = {
    "han_lenet300": ("Han et al. 2015, LeNet-300-100", han),
    "lottery_lenet300": ("Lottery tickets, LeNet-300-100", lottery),
    "finetune_length": ("Fine-tune length", finetune_length),
    "oneshot_robust": ("One-shot robustness", oneshot),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the folder of run_results2.sh's sweeps")
    args = parser.parse_args(argv)
    found = False
    for folder, (title, table) in ARMS.items():
        df = load(args.root / folder)
        if df.empty:
            continue
        if folder == "finetune_length":
            df = pd.concat([df, load(args.root / "finetune_unguarded")], ignore_index=True)
        if folder == "oneshot_robust":  # the default's one-shot rows: fine-tune length 0
            default = load(args.root / "finetune_length")
            if not default.empty:
                df = pd.concat([default[default["finetune_epochs"] == 0], df], ignore_index=True)
        found = True
        print(f"## {title} ({len(df)} jobs)\n\n{table(df)}\n")
    if not found:
        print(f"error: no result.json under {args.root}/{{{','.join(ARMS)}}}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
