"""One-shot pruning: train dense, prune once to k, fine-tune with the masks fixed (``oneshot``);
or prune the fresh net before its first step and train the sparse net (``init``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prunelab.schedules.base import Schedule, schedule_name
from prunelab.settings import setting


@dataclass
class OneshotSchedule(Schedule):
    """Train dense, prune once to `sparsity`, then optionally fine-tune with the masks fixed."""

    KIND: ClassVar[str] = "oneshot"
    name: str = schedule_name("oneshot")


@dataclass
class AtInitSchedule(Schedule):
    """Pruning at initialisation (SNIP, GraSP, SynFlow…): prune the freshly initialised net
    to `sparsity` before its first step, then train the sparse net for `epochs` epochs on the
    main learning-rate schedule (no dense phase, no dense cache)."""

    KIND: ClassVar[str] = "init"
    name: str = schedule_name("init")
    epochs: int = setting(10, "epochs of training of the net pruned at step 0", low=1)

    @property
    def dense_epochs(self) -> int:
        return 0

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.finetune_epochs

    @property
    def lr_epochs(self) -> int:
        return self.epochs
