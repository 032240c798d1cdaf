"""What a sensitivity scan (``schedule=sensitivity``) is made of, below the workflow that runs
it (``prunelab.sensitivity``) and the report that reads it: its members, its folders and
files, the budget rule and the override line that carries a budget to a run.

A scan prunes each layer the strategy prunes alone, at each k of a grid, from one trained
dense model: member (l, k) is the dense weights with layer l at k and every other layer at 0,
which is exactly the per-layer profile ``strategy.layer_sparsity=[0, …, k, …, 0]`` of a
one-shot run; member 0 is the dense model itself, the reference every drop is taken from, in
the same stack and the same arithmetic. Drops are in accuracy points (100 · (dense − pruned)).

The budget of a layer is the largest k of the grid up to which every k drops the validation
accuracy by at most ``max_drop`` points: the scan walks each layer's curve from its smallest
k and stops at the first k that drops more, as NNI's SensitivityAnalysis does with its early
stop. Where the curve is not monotone (a bump of one or two images at a high k after a
larger drop at a lower one) the literal "largest k whose drop is within the limit" would jump
past a k that failed; the walk never does. A layer whose smallest k already drops too much
gets 0 (it stays dense).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prunelab.pruning import global_sparsity

__all__ = ["global_sparsity"]  # re-exported: a budget's g, counted as the config counts it

SCAN_DIR = "scan"  # in the job's folder: the dense run, scan/dense/
DENSE_DIR = "dense"
TABLE_FILE = "sensitivity.csv"  # one row per (layer, k), in the job's folder
BUDGET_FILE = "budget.json"
SPLIT = "val"  # what the budget reads; the test split is recorded beside it
TABLE_COLUMNS = ("layer", "name", "weights", "k", "pruned", "val_acc", "val_drop", "test_acc",
                 "test_drop")  # fmt: skip


def dense_dir(out: Path) -> Path:
    """Where a scan's dense model is trained (or taken from the dense cache): an ordinary
    one-shot run at k = 0 of its own, ``scan/dense`` in the scan job's folder."""
    return out / SCAN_DIR / DENSE_DIR


def is_scan_dir(folder: Path) -> bool:
    """A folder ``dense_dir`` names: a part of a scan, reported through its scan job, not as
    a job of the sweep."""
    return folder.name == DENSE_DIR and folder.parent.name == SCAN_DIR


def is_scan_result(result: Mapping[str, Any]) -> bool:
    """A scan job's ``result.json``: its figures are the dense model's, its point is the
    table under ``sensitivity``."""
    return isinstance(result.get("sensitivity"), Mapping)


def scan_members(n_pruned: int, grid: Iterable[float]) -> list[tuple[int | None, float]]:
    """The members of a scan, in stack order: (None, 0) the dense reference, then (l, k) for
    each pruned layer l (0-based among the pruned ones) and each k of ``grid``, ascending."""
    ks = sorted(float(k) for k in grid)
    return [(None, 0.0), *((layer, k) for layer in range(n_pruned) for k in ks)]


def alone(n_pruned: int, layer: int | None, k: float) -> list[float]:
    """The per-layer sparsities of member (``layer``, ``k``): ``k`` in that layer, 0 in the
    others (all 0 for the dense reference)."""
    return [k if i == layer else 0.0 for i in range(n_pruned)]


def layer_budget(curve: Iterable[tuple[float, float]], max_drop: float) -> float:
    """The largest k of a layer's (k, drop in points) ``curve`` before the first k, going up,
    that drops more than ``max_drop``; 0 if the smallest one already does."""
    best = 0.0
    for k, drop in sorted(curve):
        if drop > max_drop:
            break
        best = k
    return best


def budget(rows: Iterable[Mapping[str, Any]], max_drop: float, layers: Sequence[int],
           column: str = f"{SPLIT}_drop") -> list[float]:  # fmt: skip
    """Each of ``layers``' budget (``layer_budget``) from a scan's table ``rows`` (``layer``,
    ``k`` and the drop ``column``, in points)."""
    rows = list(rows)
    curves = [[(float(r["k"]), float(r[column])) for r in rows if r["layer"] == n] for n in layers]
    return [layer_budget(curve, max_drop) for curve in curves]


def number(value: float) -> str:
    """A sparsity as the override line writes it: ``0.9``, ``0``, ``0.8123``."""
    return f"{round(float(value), 4):g}"


def override_line(ks: Sequence[float], sparsity: float, allocation: str = "uniform",
                  prune_output: bool = False) -> str:  # fmt: skip
    """The overrides that give a run this budget: ``strategy.layer_sparsity=[…]`` and the
    ``sparsity`` that labels it (4 decimals: the config accepts 0.005 of slack), with
    ``strategy.allocation=uniform`` where the strategy spreads its k otherwise (only uniform
    takes a per-layer profile) and ``strategy.prune_output=true`` where the output layer is
    one of the scanned."""
    parts = [f"strategy.layer_sparsity=[{','.join(number(k) for k in ks)}]",
             f"sparsity={number(sparsity)}"]  # fmt: skip
    if allocation != "uniform":
        parts.insert(0, "strategy.allocation=uniform")
    if prune_output:
        parts.insert(0, "strategy.prune_output=true")
    return " ".join(parts)


def budget_record(rows: Sequence[Mapping[str, Any]], max_drop: float,
                  layers: Sequence[Mapping[str, Any]], allocation: str = "uniform",
                  prune_output: bool = False) -> dict[str, Any]:  # fmt: skip
    """``budget.json``: the budget at ``max_drop`` of the scanned ``layers`` (each with its
    ``layer`` number, ``name`` and ``weights``), its global sparsity and the override line."""
    ks = budget(rows, max_drop, [int(layer["layer"]) for layer in layers])
    g = global_sparsity(ks, [int(layer["weights"]) for layer in layers])
    return {
        "max_drop": float(max_drop),
        "split": SPLIT,
        "layers": [str(layer["name"]) for layer in layers],
        "layer_sparsity": ks,
        "sparsity": g,
        "override": override_line(ks, g, allocation, prune_output),
    }
