"""A sensitivity scan (``sensitivity``): the settings of the workflow that prunes each
prunable layer of a trained dense model alone, at each k of a grid, and measures what each
costs (``prunelab.sensitivity``, which runs the dense training as an ordinary run and the
scan above the orchestrator). Here are only its settings and their checks: the schedule
never prunes in a training of its own, so the pruning callback never asks it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prunelab.schedules.base import Schedule, schedule_name
from prunelab.settings import setting

# The challenge's k, 0 left out (the dense model is every scan's reference).
CHALLENGE_GRID = [0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]


@dataclass
class SensitivitySchedule(Schedule):
    """Sensitivity scan (NNI's SensitivityAnalysis, as one stack): train `epochs` epochs dense
    (the dense cache's model, shared with one-shot runs of the same dense phase), then prune
    each layer the strategy prunes alone, at each k of `grid`, with the strategy's criterion
    (within that one layer, whatever the allocation), all of them one stack of members, and
    record each one's validation and test accuracy drop from the dense model
    (sensitivity.csv). The budget (budget.json): per layer the largest k of the grid up to
    which the validation accuracy drops by at most max_drop points, ready to use as
    strategy.layer_sparsity=[…] sparsity=<its global fraction>. `sparsity` is unused."""

    KIND: ClassVar[str] = "sensitivity"
    WORKFLOW: ClassVar[str | None] = "sensitivity"
    name: str = schedule_name("sensitivity")
    epochs: int = setting(5, "epochs of the dense training that the scan prunes", low=1)
    grid: list[float] = setting(
        CHALLENGE_GRID,
        "the sparsities each layer is pruned to alone",
        low=0,
        high=1,
        high_open=True,
        example="schedule.grid=[0.5,0.9,0.99]",
    )
    max_drop: float = setting(
        0.5,
        "the budget's limit: the validation accuracy drop, in points, a layer may cost",
        low=0,
        example="schedule.max_drop=1",
    )
    max_members: int = setting(
        64, "members per stack; a larger scan is evaluated as several stacks", low=1
    )

    def problems(self) -> list[str]:
        if not self.grid:
            return ["schedule.grid is empty: give the sparsities to scan, e.g. "
                    "schedule.grid=[0.5,0.9,0.99]"]  # fmt: skip
        if len(set(self.grid)) < len(self.grid):
            return [f"schedule.grid={list(self.grid)} repeats a value: give each k once"]
        if self.finetune_epochs:
            return ["schedule=sensitivity prunes the dense model once and never fine-tunes: "
                    "set schedule.finetune_epochs=0"]  # fmt: skip
        return super().problems()
