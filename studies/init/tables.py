"""The tables of pruning at initialisation on LeNet-300-100: SNIP against its paper (10 and 30
epochs), SNIP, GraSP, SynFlow and global magnitude at init against their layerwise-shuffle
controls and random masks, and the per-layer sparsity each chose (third round). The arms
snip_init_30ep and lenet5_snip enter the sparse_training study's tables.

Reads every ``result.json`` under ``<root>/init_lenet300`` (its methods and random masks) and
``<root>/snip_lenet300_30ep`` (numbers verbatim from the runs) and prints markdown: mean ± std
(ddof=1) over seeds, in %; paired differences with a two-sided paired t-test and the count of
seeds in which the difference has the sign of the mean.

    python studies/init/tables.py                      # outputs/studies/init
    python studies/init/tables.py outputs/round3
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from prunelab.report.studytables import (
    arm_dir,
    by_seed,
    difference_row,
    header,
    load,
    pm,
    profile_row,
    row,
    tables_main,
    threads_line,
)

ROOTS = (Path("outputs/studies/init"),)
SNIP_PAPER = {0.95: 1.6, 0.98: 2.4}  # Lee et al. 2019, LeNet-300-100, test error %
INIT_METHODS = ("snip", "grasp", "synflow", "global_weight")


def snip_table(init: pd.DataFrame, long: pd.DataFrame) -> list[str]:
    out = ["### SNIP on LeNet-300-100 against Lee et al. (2019)", "",
           "| % removed | paper's test error % | ours, 10 epochs | ours, 30 epochs |",
           "|---|---|---|---|"]  # fmt: skip
    for k, paper in SNIP_PAPER.items():
        cells = []
        for df in (init, long):
            acc = by_seed(df, strategy="snip", sparsity=k, shuffle=False) if len(df) else []
            cells.append(pm(1.0 - a for a in acc) + f" (n={len(acc)})" if len(acc) else "–")
        out.append(f"| {100 * k:g} | {paper} | {cells[0]} | {cells[1]} |")
    return [*out, ""]


def init_table(init: pd.DataFrame, random: pd.DataFrame) -> list[str]:
    ks = sorted(init["sparsity"].unique())
    out = ["### Pruning at initialisation: test accuracy %", "", *header("method", ks)]
    for name in INIT_METHODS:
        for shuffle in (False, True):
            cells = [pm(by_seed(init, strategy=name, sparsity=k, shuffle=shuffle)) for k in ks]
            out.append(row(f"{name}, layerwise shuffle" if shuffle else name, cells))
    if len(random):
        cells = [pm(by_seed(random, strategy="random_weight", sparsity=k)) for k in ks]
        out.append(row("random (k in every layer)", cells))
    out += ["", "Method minus its own layerwise shuffle (points, paired by seed):", "",
            *header("method", ks)]  # fmt: skip
    out += [difference_row(name, ks, init, {"strategy": name, "shuffle": False},
                           {"strategy": name, "shuffle": True})
            for name in INIT_METHODS]  # fmt: skip
    out += ["", "Per-layer sparsity each method chose (seed 0, % of fc1 / fc2 / fc3):", "",
            *header("method", ks)]  # fmt: skip
    out += [profile_row(name, ks, init, (1, 2, 3), strategy=name, shuffle=False)
            for name in INIT_METHODS]  # fmt: skip
    return [*out, ""]


def tables(roots: list[Path]) -> list[str]:
    init, long = load(arm_dir(roots, "init_lenet300")), load(arm_dir(roots, "snip_lenet300_30ep"))
    if init.empty:
        return []
    methods = init[init.strategy != "random_weight"]
    random = init[init.strategy == "random_weight"]
    lines = [*snip_table(methods, long), *init_table(methods, random)]
    return [*lines, threads_line([init, long])]


def main(argv: list[str] | None = None) -> int:
    return tables_main(argv, __doc__.splitlines()[0], ROOTS, tables)


if __name__ == "__main__":
    sys.exit(main())
