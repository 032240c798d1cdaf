"""The table of SNIP on LeNet-300-100 as snip-public does it (``snip_reference.py``, beside
this file): test error per sparsity and bias setting in each reading of the checkpoints, with
the masks' per-layer sparsity and dead units.

Reads the ``*.json`` results ``run.sh`` wrote into the folder and prints markdown.

    python studies/snip_reference/tables.py            # outputs/studies/snip_reference
    python studies/snip_reference/tables.py outputs/snip_reference
"""

from __future__ import annotations

import sys
from pathlib import Path

from prunelab.report.studytables import tables_main

# snip_reference.py is this script's neighbour: Python runs a script with its folder first on
# the module path, so it imports as a module of its own (it stays a script one runs too).
from snip_reference import table

ROOTS = (Path("outputs/studies/snip_reference"),)


def tables(roots: list[Path]) -> list[str]:
    found = next((root for root in roots if any(root.glob("*.json"))), None)
    return [] if found is None else [table(found)]


def main(argv: list[str] | None = None) -> int:
    return tables_main(argv, __doc__.splitlines()[0], ROOTS, tables)


if __name__ == "__main__":
    sys.exit(main())
