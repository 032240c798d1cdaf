"""Sparse training from scratch with a moving topology (``set``, ``rigl``): the schedule of
the drop-and-grow updates (``callbacks.topology``, ``dst``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prunelab.schedules.base import schedule_name
from prunelab.schedules.oneshot import AtInitSchedule
from prunelab.schedules.ramps import cosine_fraction
from prunelab.settings import setting


@dataclass
class DynamicSparseSchedule(AtInitSchedule):
    """Sparse training from scratch with a moving topology (SET, RigL): the net starts at
    `sparsity` before its first step (the strategy's mask: random + erk as RigL), and every
    update_every_steps steps drops drop_fraction of each layer's live weights (lowest
    `drop` scores) and grows as many (highest `grow` scores), the fraction decaying by a
    cosine to 0 at end_fraction of training; grown weights start at 0 with a fresh optimizer
    state, and each layer's live count never changes. Defaults from google-research/rigl's
    MNIST script (ΔT = 100, drop fraction 0.3, cosine) and the RigL paper (end at 75 %)."""

    KIND: ClassVar[str] = "set"
    MOVES_WEIGHTS: ClassVar[bool] = True
    USUAL_STRATEGY: ClassVar[str | None] = "random_weight"  # with allocation=erk, as RigL
    name: str = schedule_name("set")
    epochs: int = setting(20, "epochs of sparse training from scratch", low=1)
    update_every_steps: int = setting(100, "optimizer steps between topology updates (ΔT)", low=1)
    drop_fraction: float = setting(
        0.3, "share of each layer's live weights moved at the first update", low=0, high=1
    )
    end_fraction: float = setting(
        0.75,
        "updates stop after this share of the training steps (the drop fraction reaches 0 "
        "there by a cosine)",
        low=0,
        high=1,
        low_open=True,
    )
    drop: str = setting("magnitude", "criterion whose lowest live weights are dropped")
    grow: str = setting(
        "random", "criterion whose highest dead weights are grown: random (SET), gradient (RigL)"
    )

    def end_step(self, steps_per_epoch: int) -> int:
        """The step from which the topology stays fixed."""
        return round(self.end_fraction * self.epochs * steps_per_epoch)

    def topology_update(self, step: int, steps_per_epoch: int) -> float | None:
        end = self.end_step(steps_per_epoch)
        if step <= 0 or step >= end or step % self.update_every_steps:
            return None
        return cosine_fraction(step, end, self.drop_fraction)

    def idle(self, steps_per_epoch: int) -> str | None:
        end = self.end_step(steps_per_epoch)
        if self.update_every_steps < end:
            return None
        return (
            f"schedule={self.name} will move no weight: its first topology update is due at "
            f"step {self.update_every_steps} (schedule.update_every_steps) but updates stop at "
            f"step {end} (schedule.end_fraction={self.end_fraction:g} of "
            f"{self.epochs * steps_per_epoch} steps), so it trains its first mask as it is; "
            "lower schedule.update_every_steps or train for more steps"
        )

    def problems(self) -> list[str]:
        # here, not at the top: the schema stays importable without torch's start-up cost
        from prunelab.criteria import CRITERIA

        out = []
        for key in ("drop", "grow"):
            name = getattr(self, key)
            if name not in CRITERIA:
                out.append(f"unknown schedule.{key} criterion {name!r}; choose one of: "
                           f"{', '.join(CRITERIA.names())}")  # fmt: skip
            elif CRITERIA.get(name).unit:
                out.append(f"schedule.{key}={name} scores units; sparse training moves "
                           "single weights (use magnitude, random or gradient)")  # fmt: skip
        return out + super().problems()


@dataclass
class RigLSchedule(DynamicSparseSchedule):
    """RigL (Evci et al. 2020): SET's schedule, growing the dead weights with the largest
    dense-gradient magnitude (``criteria.DenseGradient``) on strategy.score_batches batches
    of strategy.score_batch_size images of the run's score stream."""

    KIND: ClassVar[str] = "rigl"
    name: str = schedule_name("rigl")
    grow: str = setting(
        "gradient", "criterion whose highest dead weights are grown: random (SET), gradient (RigL)"
    )
