"""The tables of the lottery tickets on LeNet-300-100: the ticket against its two controls (the
same mask from a fresh init, a random mask from the original init) at six k (second round),
and IMP's levels against both controls (fourth round).

Reads every ``result.json`` under ``<root>/lottery_lenet300`` and ``<root>/imp_lenet300``
(numbers verbatim from the runs) and prints markdown: mean ± std (ddof=1) over seeds in %,
paired differences with a two-sided paired t-test.

    python studies/lottery/tables.py                   # outputs/studies/lottery
    python studies/lottery/tables.py outputs/round2 outputs/round4
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from prunelab.report import studytables
from prunelab.report.levels import level_rows, level_stats, levels_table
from prunelab.report.studytables import (
    arm_dir,
    load,
    markdown_table,
    paired,
    results_of,
    seeds_of,
    tables_main,
)

ROOTS = (Path("outputs/studies/lottery"),)
LOTTERY_ARMS = {
    ("weight", False): "ticket (magnitude mask, original init)",
    ("weight", True): "same mask, fresh init",
    ("random_weight", False): "random mask, original init",
    ("random_weight", True): "random mask, fresh init",
}
# the second round's cells: the mean alone from one seed, an em dash where none ran
pm2 = partial(studytables.pm, lone_std=False, missing="—")


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
        cells = [pm2(a) for a in arm_acc.values()]
        won = f"{int((margin > 0).sum())} of {len(margin)}"
        rows.append([f"{100 * k:g}", *cells, pm2(margin, signed=True), won])
    head = ["k %", *LOTTERY_ARMS.values(), "ticket − better control (points)", "seeds won"]
    return f"Seeds {seeds_of(df)}.\n\n" + markdown_table(head, rows)


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


def tables(roots: list[Path]) -> list[str]:
    lines: list[str] = []
    tickets = load(arm_dir(roots, "lottery_lenet300"))
    if not tickets.empty:
        lines.append(f"## Lottery tickets, LeNet-300-100\n\n{lottery(tickets)}\n")
    imp = arm_dir(roots, "imp_lenet300")
    if imp is not None:
        lines += imp_section(results_of(imp))
    return lines


def main(argv: list[str] | None = None) -> int:
    return tables_main(argv, __doc__.splitlines()[0], ROOTS, tables)


if __name__ == "__main__":
    sys.exit(main())
