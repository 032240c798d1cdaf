"""Lottery tickets, one-shot (``lottery``): prune, then rewind the survivors to an earlier
point of the dense training (or reinit them, the control) and retrain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prunelab.schedules.base import Schedule, schedule_name
from prunelab.settings import setting


def rewind_problems(rewind_epoch: int, epochs: int) -> list[str]:
    """A rewind point must lie inside the dense training it rewinds into (lottery, IMP)."""
    if rewind_epoch >= epochs:
        return [
            f"schedule.rewind_epoch={rewind_epoch} must be below schedule.epochs={epochs} "
            "(0 rewinds to the initial weights)"
        ]
    return []


@dataclass
class LotterySchedule(Schedule):
    """Frankle & Carbin (2019), one-shot: train dense, prune, rewind the survivors to their
    values at the start of epoch rewind_epoch (0: the init) and retrain finetune_epochs on the
    dense phase's learning-rate schedule with a fresh optimizer; reinit=true draws fresh
    initial weights instead (the control)."""

    KIND: ClassVar[str] = "lottery"
    name: str = schedule_name("lottery")
    epochs: int = setting(10, "dense training epochs before pruning", low=1)
    finetune_epochs: int = setting(10, "retraining epochs of the rewound ticket", low=1)
    rewind_epoch: int = setting(
        0, "rewind the survivors to the start of this dense epoch (0: the initial weights)", low=0
    )
    reinit: bool = setting(False, "the control: the ticket's mask with fresh initial weights")

    @property
    def rewind_to(self) -> int | None:
        return self.rewind_epoch

    @property
    def after_prune(self) -> str | None:
        return "reinit" if self.reinit else "rewind"

    def problems(self) -> list[str]:
        return rewind_problems(self.rewind_epoch, self.epochs) + super().problems()
