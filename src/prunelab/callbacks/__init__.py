"""Lightning callbacks of a run, one concern per module: when to prune each member
(``pruning``), the lottery's rewind (``rewind``), sparse training's drop-and-grow
(``topology``), the batches criteria score on (``scoring``), weight averaging and the
fine-tune guard (``training``), and what the run shows while it trains (``progress``). The
periodic checkpoint of long jobs is ``resume.LastCheckpoint``."""

from __future__ import annotations

from prunelab.callbacks.progress import BarSafeStream, EpochBar, EpochSummary
from prunelab.callbacks.pruning import PruningCallback, mask_optimizer_state
from prunelab.callbacks.rewind import SaveWeightsAt
from prunelab.callbacks.training import FinetuneGuard, WeightAveraging

__all__ = [
    "BarSafeStream",
    "EpochBar",
    "EpochSummary",
    "FinetuneGuard",
    "PruningCallback",
    "SaveWeightsAt",
    "WeightAveraging",
    "mask_optimizer_state",
]
