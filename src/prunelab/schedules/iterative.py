"""The original challenge's "train with pruning" (``iterative``): prune back to k after every
epoch of a window in which pruned weights may regrow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prunelab.schedules.base import Schedule, schedule_name
from prunelab.schedules.ramps import iterative_prunes_after, iterative_releases_at
from prunelab.settings import setting


@dataclass
class IterativeSchedule(Schedule):
    """The original challenge's "train with pruning": each of ramp_epochs epochs trains every
    weight (pruned ones regrow from 0) and prunes back to `sparsity` after its last step, so
    every epoch is evaluated at exactly k; the learning rate spans epochs + ramp_epochs."""

    KIND: ClassVar[str] = "iterative"
    QUIET_PRUNES: ClassVar[bool] = True
    name: str = schedule_name("iterative")
    epochs: int = setting(0, "dense training epochs before the window (0: from the start)", low=0)
    ramp_epochs: int = setting(10, "epochs trained with pruning back to k after each", low=1)

    @property
    def window_epochs(self) -> int:
        return self.ramp_epochs

    @property
    def lr_epochs(self) -> int:
        # Iterative pruning *is* training: its window gets the main schedule too.
        return self.epochs + self.ramp_epochs

    def target(self, step: int, steps_per_epoch: int, k: float) -> float | None:
        return None  # every prune happens after a window epoch's last step (prunes_after)

    def releases_before(self, step: int, steps_per_epoch: int) -> bool:
        return iterative_releases_at(step, steps_per_epoch, self.epochs, self.ramp_epochs)

    def prunes_after(self, steps_done: int, steps_per_epoch: int) -> bool:
        return iterative_prunes_after(steps_done, steps_per_epoch, self.epochs, self.ramp_epochs)
