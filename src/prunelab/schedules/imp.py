"""Iterative magnitude pruning with rewinding (``imp``): the settings of the level-by-level
workflow (``prunelab.imp``, which trains each level as an ordinary run) and the schedule of
each level's run (``LevelSchedule``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prunelab.schedules.base import Schedule, schedule_name
from prunelab.schedules.lottery import rewind_problems
from prunelab.schedules.oneshot import AtInitSchedule
from prunelab.settings import setting

IMP_ARMS = ("ticket", "random", "reinit")


@dataclass
class IMPSchedule(Schedule):
    """Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; open_lth's
    lottery levels): train `epochs` epochs dense (level 0), then at each of `levels` levels
    remove level_fraction of the weights that remain (the strategy's criterion and
    allocation: per layer with uniform, over all pruned layers with global), rewind the
    survivors to their values at rewind_epoch (or rewind_step) of the dense training and
    retrain the rest of the budget. Every level, and with controls=true its two controls (a
    random mask with the level's per-layer sparsity on the same rewound weights; the level's
    mask on fresh initial weights), is a run of its own under levels/ in the job's folder,
    resumed level by level (``prunelab.imp``). `sparsity` is unused: level L keeps
    (1 − level_fraction)^L of the pruned layers' weights."""

    KIND: ClassVar[str] = "imp"
    RUNS_LEVELS: ClassVar[bool] = True
    WORKFLOW: ClassVar[str | None] = "levels"
    USUAL_STRATEGY: ClassVar[str | None] = "weight"
    name: str = schedule_name("imp")
    epochs: int = setting(10, "the training budget: epochs of the dense level and of each", low=1)
    levels: int = setting(10, "prune-rewind-retrain levels after the dense training", low=1)
    level_fraction: float = setting(
        0.2,
        "share of the remaining weights each level removes",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
    )
    rewind_epoch: int = setting(
        0, "rewind the survivors to the start of this epoch (0: init)", low=0
    )
    rewind_step: int | None = setting(
        None,
        "rewind to this optimizer step of the dense training instead (overrides rewind_epoch)",
        low=0,
    )
    controls: bool = setting(True, "also train both controls at every level")

    def level_sparsity(self, level: int) -> float:
        """The sparsity of level ``level``: 1 − (1 − level_fraction)^level."""
        return 1.0 - (1.0 - self.level_fraction) ** level

    def rewind_steps(self, steps_per_epoch: int) -> int:
        """The optimizer step whose weights the levels rewind to."""
        if self.rewind_step is not None:
            return self.rewind_step
        return self.rewind_epoch * steps_per_epoch

    @property
    def total_epochs(self) -> int:
        return self.epochs

    def problems(self) -> list[str]:
        late = (
            [] if self.rewind_step is not None else rewind_problems(self.rewind_epoch, self.epochs)
        )
        return late + super().problems()


@dataclass
class LevelSchedule(AtInitSchedule):
    """One training of an IMP job (``prunelab.imp``), which the workflow sets and the command
    line never names (its settings, kind included, are part of each level's identity, so
    resumed IMP jobs find their levels): an at-init run whose masks are set before the first
    step (``start``: a file of weights and masks the workflow wrote) and never change; the
    rate follows the main schedule of `lr_horizon` epochs from epoch `offset` on (a ticket
    retrains from its rewind point). The dense level instead saves its weights at step
    `capture_step` to `capture` (the rewind point of every later level)."""

    KIND: ClassVar[str] = "imp-level"
    name: str = setting("imp-level", "an IMP level", label="schedule")
    level: int = setting(0, "the level (0: the dense training)", low=0)
    arm: str = setting("ticket", "ticket, random (mask control) or reinit (init control)",
                       choices=IMP_ARMS)  # fmt: skip
    lr_horizon: int = setting(1, "epochs of the main learning-rate schedule", low=1)
    offset: float = setting(0.0, "epochs of that schedule behind the first step", low=0)
    start: str | None = setting(None, "weights and masks to start from (levels ≥ 1)")
    capture_step: int | None = setting(None, "the dense level's rewind point", low=0)
    capture: str | None = setting(None, "where the dense level saves the rewind point")

    @property
    def lr_epochs(self) -> int:
        return self.lr_horizon

    @property
    def lr_offset(self) -> float:
        return self.offset

    @property
    def start_file(self) -> str | None:
        return self.start

    @property
    def saves_weights_at(self) -> tuple[int, str] | None:
        if self.capture_step is None or self.capture is None:
            return None
        return self.capture_step, self.capture

    def target(self, step: int, steps_per_epoch: int, k: float) -> float | None:
        return None  # the masks come with the start state
