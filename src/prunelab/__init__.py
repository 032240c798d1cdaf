"""prunelab: how much of a neural network can be pruned away, by which strategy, at what cost.

On your own module::

    import prunelab
    masks = prunelab.prune(model, 0.9, criterion="snip", data=(x, y))
    print(prunelab.sparsity_report(model))

Semantic versioning: ``PUBLIC_API`` below is the one list of what prunelab promises to keep,
by module. A minor release may add to it; only a major release removes a name or a
parameter of it (``tests/test_public_api.py`` holds every release's list and fails when a
name disappears). Everything else may change in any release, the command line's config keys
aside (documented in the handbook's reference).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

PUBLIC_API: dict[str, tuple[str, ...]] = {
    # prune a module of your own (prunelab.api), importable from prunelab itself
    "prunelab": (
        "LayerSparsity",
        "PruningError",
        "SparsityReport",
        "__version__",
        "apply",
        "compact",
        "export",
        "prune",
        "remove",
        "sparsity_report",
    ),
    # the callback for your own Trainer
    "prunelab.lightning": ("Pruning",),
    # what a plug-in subclasses and registers in (the handbook's "Extending" pages)
    "prunelab.criteria": ("CRITERIA", "Criterion", "ScoreContext"),
    "prunelab.allocation": ("ALLOCATIONS", "Allocation", "Counts"),
    "prunelab.schedules": ("SCHEDULES", "Schedule", "setting"),
    "prunelab.data": ("DatasetSpec", "RawDataset"),
    "prunelab.pruning": ("Sparsity", "layer_k", "n_to_prune"),
    "prunelab.models": ("build",),
}

__all__ = list(PUBLIC_API["prunelab"])


def __getattr__(name: str) -> Any:
    """``prunelab.prune`` and the rest of ``prunelab.api``, imported on first use: the command
    line imports this package before torch, and ``--help`` should not wait for it."""
    if name in PUBLIC_API["prunelab"]:
        return getattr(importlib.import_module("prunelab.api"), name)
    raise AttributeError(f"module 'prunelab' has no attribute {name!r}")
