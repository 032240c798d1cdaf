"""The tables of which units to remove: six unit criteria × k 50/70/90 % × 0 or 1 fine-tune
epoch against L2 and random units, paired by seed (every criterion prunes the same dense
model of a seed; third round).

Reads every ``result.json`` under ``<root>/unit_criteria`` and prints markdown: mean ± std
(ddof=1) over seeds, in %; paired differences with a two-sided paired t-test and the count of
seeds in which the difference has the sign of the mean.

    python studies/unit_criteria/tables.py             # outputs/studies/unit_criteria
    python studies/unit_criteria/tables.py outputs/round3
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from prunelab.report.studytables import arm_dir, compared_table, load, tables_main, threads_line

ROOTS = (Path("outputs/studies/unit_criteria"),)
UNIT_CRITERIA = ("neuron", "random_neuron", "taylor_neuron", "activation_neuron",
                 "apoz_neuron", "activation_out_neuron")  # fmt: skip


def unit_table(units: pd.DataFrame) -> list[str]:
    refs = {"random_neuron": "random_neuron", "neuron": "neuron"}
    return compared_table(units, "Unit criteria", "criterion", UNIT_CRITERIA, refs, "k = {:g} %")


def tables(roots: list[Path]) -> list[str]:
    units = load(arm_dir(roots, "unit_criteria"))
    return [*unit_table(units), threads_line([units])] if len(units) else []


def main(argv: list[str] | None = None) -> int:
    return tables_main(argv, __doc__.splitlines()[0], ROOTS, tables)


if __name__ == "__main__":
    sys.exit(main())
