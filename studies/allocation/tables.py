"""The tables of where the weight budget goes: uniform, global, ERK and LAMP allocations at
90-99 %, with 0 or 1 fine-tune epoch, against uniform (paired by seed), and the per-layer
sparsity each chose (third round).

Reads every ``result.json`` under ``<root>/allocation`` and prints markdown: mean ± std
(ddof=1) over seeds, in %; paired differences with a two-sided paired t-test and the count of
seeds in which the difference has the sign of the mean.

    python studies/allocation/tables.py                # outputs/studies/allocation
    python studies/allocation/tables.py outputs/round3
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from prunelab.report.studytables import (
    arm_dir,
    compared_table,
    header,
    load,
    profile_row,
    tables_main,
    threads_line,
)

ROOTS = (Path("outputs/studies/allocation"),)
ALLOCATIONS = ("weight", "global_weight", "erk_weight", "lamp")


def allocation_table(alloc: pd.DataFrame) -> list[str]:
    ks = sorted(alloc["sparsity"].unique())
    out = compared_table(alloc, "Weight budgets by allocation", "allocation", ALLOCATIONS,
                         {"weight": "uniform"}, "{:g} %")  # fmt: skip
    out += ["Per-layer sparsity (seed 0, no fine-tuning, % of the four hidden layers):", "",
            *header("allocation", ks)]  # fmt: skip
    out += [profile_row(name, ks, alloc, (1, 2, 3, 4), strategy=name, finetune_epochs=0)
            for name in ALLOCATIONS]  # fmt: skip
    return [*out, ""]


def tables(roots: list[Path]) -> list[str]:
    alloc = load(arm_dir(roots, "allocation"))
    return [*allocation_table(alloc), threads_line([alloc])] if len(alloc) else []


def main(argv: list[str] | None = None) -> int:
    return tables_main(argv, __doc__.splitlines()[0], ROOTS, tables)


if __name__ == "__main__":
    sys.exit(main())
