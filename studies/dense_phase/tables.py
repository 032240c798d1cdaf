"""The table of which dense phase: the arms that prune after training (one-shot + fine-tune,
gradual) from the default dense phase and again from the one used before 2026-11-26 (Adam, a
cosine from 1e-3, no averaging), at the k both ran. The recipes themselves are compared by
their report (``<root>/recipes/report/report.md``, one group per recipe).

Reads ``<root>/<arm>/report/summary.csv`` of finetune_cosine and gradual_cosine (this study's
arms) and of finetune and gradual (the finetune and weight_vs_unit studies' arms: their
folders are searched too); prints markdown, mean ± std (ddof=1) over seeds in %.

    python studies/dense_phase/tables.py              # outputs/studies/{dense_phase,finetune,…}
    python studies/dense_phase/tables.py outputs/results
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from prunelab.report.studytables import (
    arm_dir,
    pm_stats,
    read_summary,
    stats,
    stats_cell,
    tables_main,
)

ROOTS = (Path("outputs/studies/dense_phase"), Path("outputs/studies/finetune"),
         Path("outputs/studies/weight_vs_unit"))  # fmt: skip
ARMS = {"finetune": "one-shot + fine-tune", "gradual": "gradual"}
COSINE_ARMS = {f"{arm}_cosine": arm for arm in ARMS}
LABEL = {"weight": "weight", "neuron": "unit"}


def dense_phase_table(arms: dict[str, pd.DataFrame]) -> list[str]:
    """Each helped arm from the default dense phase and from the former one, at the k both
    ran, with the mean over those cells."""
    lines = ["| arm | strategy | k % | default dense phase | cosine 1e-3, no averaging |",
             "|---|---|---:|---:|---:|"]  # fmt: skip
    for cosine, arm in COSINE_ARMS.items():
        if cosine not in arms or arm not in arms:
            continue
        means: dict[str, list[float]] = {}
        for s in ("weight", "neuron"):
            new, old = stats(arms[arm], s), stats(arms[cosine], s)
            for k in old.index:
                lines.append(f"| {ARMS[arm]} | {LABEL[s]} | {100 * k:g} | "
                             f"{pm_stats(stats_cell(new, k))} | "
                             f"{pm_stats(stats_cell(old, k))} |")  # fmt: skip
                means.setdefault("new", []).append(new.loc[k, "mean"] if k in new.index else np.nan)
                means.setdefault("old", []).append(old.loc[k, "mean"])
        new_mean, old_mean = 100 * np.nanmean(means["new"]), 100 * np.mean(means["old"])
        lines.append(f"| {ARMS[arm]} | mean of the cells | | {new_mean:.2f} | {old_mean:.2f} |")
    return lines


def tables(roots: list[Path]) -> list[str]:
    arms = {}
    for arm in [*ARMS, *COSINE_ARMS]:
        folder = arm_dir(roots, arm)
        df = read_summary(folder) if folder is not None else None
        if df is not None:
            arms[arm] = df
    if not any(arm in arms for arm in COSINE_ARMS):
        return []
    return ["## The helped arms from either dense phase", "", *dense_phase_table(arms)]


def main(argv: list[str] | None = None) -> int:
    return tables_main(argv, __doc__.splitlines()[0], ROOTS, tables)


if __name__ == "__main__":
    sys.exit(main())
