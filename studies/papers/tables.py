"""The tables of prunelab against the papers' own numbers: Han et al. 2015's LeNet-300-100 at
their per-layer sparsities in two thread settings (second round), and gradual magnitude
pruning of LeNet-5-Caffe to their per-layer budgets against the dense reference (fifth round).

Reads every ``result.json`` under ``<root>/han_lenet300``, ``<root>/han_lenet300_1thread`` and
``<root>/lenet5_han`` (numbers verbatim from the runs) and prints markdown: mean ± std
(ddof=1) over seeds in %, paired differences with a two-sided paired t-test.

    python studies/papers/tables.py                    # outputs/studies/papers
    python studies/papers/tables.py outputs/round2 outputs/round5
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import pandas as pd

from prunelab.report import studytables
from prunelab.report.studytables import (
    arm_dir,
    by_threads,
    load,
    markdown_table,
    paired,
    row,
    seeds_of,
    tables_main,
)

ROOTS = (Path("outputs/studies/papers"),)
HAN_PAPER = {"dense error %": 1.64, "pruned error %": 1.59, "kept %": 8.0}
HAN_LAYERS = {"fc1": 8.0, "fc2": 9.0, "fc3 (output)": 26.0}
LENET5_K = 0.916  # experiment=lenet5_han's sparsity: Han et al.'s per-layer budgets, weighted
LENET5_LAYERS = ("conv1", "conv2", "fc3", "fc4 (output)")
# Han et al. (2015), Table 1 and 4: LeNet-5 test error % dense and pruned, weights kept per layer
LENET5_PAPER = {"dense": 0.80, "pruned": 0.77, "kept": (66, 12, 8, 19)}
# the second round's cells: the mean alone from one seed, an em dash where none ran
pm2 = partial(studytables.pm, lone_std=False, missing="—")
pm = studytables.pm


def han(runs: dict[str, pd.DataFrame]) -> str:
    """Dense and pruned LeNet-300-100 next to Han et al.'s Table 1, per thread count."""
    rows = []
    for label, df in runs.items():
        dense, pruned = df[df["sparsity"] == 0], df[df["sparsity"] > 0]
        errors = ", ".join(f"{100 * (1 - a):.2f}" for a in pruned.sort_values("seed")["test_acc"])
        rows.append([f"{label} (seeds {seeds_of(df)})", pm2(1 - dense["test_acc"]),
                     pm2(1 - pruned["test_acc"]), errors,
                     pm2(pruned["fig:params/nonzero"] / pruned["fig:params/total"])])  # fmt: skip
    rows.append(["paper", f"{HAN_PAPER['dense error %']}", f"{HAN_PAPER['pruned error %']}",
                 "", f"{HAN_PAPER['kept %']}"])  # fmt: skip
    head = ["", "dense error %", "pruned error %", "pruned error % per seed", "weights kept %"]
    layers = next(iter(runs.values()))
    layers = layers[layers["sparsity"] > 0]
    kept = [[name, f"{paper:g}", pm2(1 - layers[f"fig:sparsity/layer{i}"])]
            for i, (name, paper) in enumerate(HAN_LAYERS.items(), start=1)]  # fmt: skip
    return (
        markdown_table(head, rows)
        + "\n\n"
        + markdown_table(["layer", "paper kept %", "ours kept %"], kept)
    )


def per_seed(errors: pd.Series) -> str:
    """Each seed's test error %, in seed order (what a mean ± std of three hides)."""
    return ", ".join(f"{100 * e:.2f}" for e in errors.sort_index())


def lenet5_han_section(df: pd.DataFrame) -> list[str]:
    """Test error of the dense reference and of gradual magnitude pruning to Han et al.'s
    per-layer budgets, with the density each layer reached, beside the paper's."""
    error = (1 - df.set_index(["sparsity", "seed"])["test_acc"]).sort_index()
    pruned = df[df["sparsity"] == LENET5_K]
    lines = ["### LeNet-5-Caffe, Han et al.'s budgets: test error %", ""]
    lines += [
        "| model | weights kept % | test error % | per seed 0, 1, 2 | Han et al. 2015 |",
        "|---|---|---|---|---|",
    ]
    for label, k, kept, paper in (
        ("dense, 20 epochs", 0.0, "100", LENET5_PAPER["dense"]),
        ("gradual magnitude, 10 + 5 + 5 epochs", LENET5_K, pm(1 - pruned["sparsity_global"]),
         LENET5_PAPER["pruned"]),
    ):  # fmt: skip
        lines.append(row(label, [kept, pm(error[k]), per_seed(error[k]), f"{paper:.2f}"]))
    lines += ["", "| layer | " + " | ".join(LENET5_LAYERS) + " |",
              "|---" * (len(LENET5_LAYERS) + 1) + "|"]  # fmt: skip
    cells = [pm(1 - pruned[f"sparsity_layer{i + 1}"]) for i in range(len(LENET5_LAYERS))]
    lines.append(row("weights kept % (prunelab)", cells))
    lines.append(row("weights kept % (Han et al.)", (str(k) for k in LENET5_PAPER["kept"])))
    diff = paired(error[LENET5_K] - error[0.0])
    lines += ["", f"Paired by seed, pruned − dense: {diff} points"]
    return [*lines, ""]


def tables(roots: list[Path]) -> list[str]:
    lines: list[str] = []
    runs = by_threads(roots, ("han_lenet300", "han_lenet300_1thread"))
    if runs:
        lines.append(f"## Han et al. 2015, LeNet-300-100\n\n{han(runs)}\n")
    lenet5 = load(arm_dir(roots, "lenet5_han"))
    if not lenet5.empty:
        lines += lenet5_han_section(lenet5)
    return lines


def main(argv: list[str] | None = None) -> int:
    return tables_main(argv, __doc__.splitlines()[0], ROOTS, tables)


if __name__ == "__main__":
    sys.exit(main())
