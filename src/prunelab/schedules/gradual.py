"""Zhu & Gupta's (2017) gradual pruning (``gradual``): a cubic ramp of the sparsity over a
window of epochs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prunelab.schedules.base import Schedule, schedule_name
from prunelab.settings import setting


@dataclass
class GradualSchedule(Schedule):
    """Zhu & Gupta (2017): a cubic ramp from 0 to `sparsity` over ramp_epochs, masks
    recomputed every prune_every_epochs, then fine-tuning with the masks fixed."""

    KIND: ClassVar[str] = "gradual"
    name: str = schedule_name("gradual")
    finetune_epochs: int = setting(2, "epochs of training after pruning, masks fixed", low=0)
    ramp_epochs: int = setting(3, "epochs of the cubic ramp from 0 to `sparsity`", low=1)
    prune_every_epochs: float = setting(
        0.1,
        "masks are recomputed every this many epochs of the ramp (at least every step; "
        "1 = once per epoch)",
        low=0,
        low_open=True,
    )

    @property
    def window_epochs(self) -> int:
        return self.ramp_epochs

    def steps_between_prunes(self, steps_per_epoch: int) -> int:
        """``prune_every_epochs`` in steps of this data and batch size, at least one."""
        return max(1, round(self.prune_every_epochs * steps_per_epoch))
