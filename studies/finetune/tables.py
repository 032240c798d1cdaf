"""The table of what fine-tuning does to the dense model (k = 0), with the default guard
(the fine-tune-length sweep) and without, paired per seed against its 0-epoch job. The
fine-tune-length table itself is the report's (``<root>/finetune_length/report``); the
probes behind the fine-tune rate and the guard are compared by their reports too
(``<root>/finetune_lr/report``, ``<root>/guard/report``), and the one-shot + fine-tune arm by
the weight_vs_unit study's tables.

Reads every ``result.json`` under ``<root>/finetune_length`` and ``<root>/finetune_unguarded``
and prints markdown: mean ± std (ddof=1) over seeds, in points.

    python studies/finetune/tables.py                  # outputs/studies/finetune
    python studies/finetune/tables.py outputs/round2
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from prunelab.report.studytables import arm_dir, load, markdown_table, pm, tables_main

ROOTS = (Path("outputs/studies/finetune"),)


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
            cells += [pm(change, signed=True, lone_std=False, missing="—"), worst]
        rows.append([f"{n}", *cells])
    head = ["fine-tune epochs", "change at k = 0, guard (points)", "worst seed",
            "change at k = 0, no guard", "worst seed"]  # fmt: skip
    return markdown_table(head, rows)


def tables(roots: list[Path]) -> list[str]:
    guarded = load(arm_dir(roots, "finetune_length"))
    free = load(arm_dir(roots, "finetune_unguarded"))
    if guarded.empty or free.empty:
        return []
    table = unguarded(guarded, free)
    return [f"## Fine-tuning the dense model, with and without the guard\n\n{table}\n"]


def main(argv: list[str] | None = None) -> int:
    return tables_main(argv, __doc__.splitlines()[0], ROOTS, tables)


if __name__ == "__main__":
    sys.exit(main())
