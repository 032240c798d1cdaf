"""A schedule of your own: after the dense phase, raise the sparsity in equal steps, one per
epoch, over ``ramp_epochs`` epochs, then fine-tune with the masks fixed.

A schedule is a dataclass: its fields are the settings ``schedule.<name>=…`` accepts (typed
and range-checked from their ``setting``), its methods what the pruning callback asks. The
base class trains ``epochs`` dense epochs, prunes once to k, then fine-tunes
``finetune_epochs``; a schedule overrides only what differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prunelab.schedules import Schedule, setting


@dataclass
class LinearSteps(Schedule):
    """Prune to k/n, 2k/n, …, k at the start of each of ``ramp_epochs`` = n epochs."""

    KIND: ClassVar[str] = "linear_steps"
    ramp_epochs: int = setting(2, "epochs over which the sparsity rises to k", low=1)

    @property
    def window_epochs(self) -> int:
        # the epochs between the dense phase and fine-tuning in which masks change
        return self.ramp_epochs

    def target(self, step: int, steps_per_epoch: int, k: float) -> float | None:
        # the sparsity the masks must have before optimizer step `step` (None: still dense);
        # the callback prunes whenever it differs from the masks' current one
        start = self.epochs * steps_per_epoch
        if step < start:
            return None
        done = min((step - start) // steps_per_epoch + 1, self.ramp_epochs)
        return k * done / self.ramp_epochs
