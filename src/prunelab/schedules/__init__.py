"""Schedules: when a run prunes, to what sparsity, and what follows a prune; one class per
schedule in a module per family, each the algorithm and its settings (``base.Schedule``
says what the rest of prunelab asks of one):

- ``oneshot``: train dense, prune once, fine-tune; ``init``: prune before the first step;
- ``gradual``: Zhu & Gupta's cubic ramp; ``iterative``: the challenge's train-with-pruning;
- ``lottery``: prune, rewind, retrain; ``imp``: its levels (the ``levels`` workflow);
- ``sensitivity``: each layer pruned alone at each k of a grid (the ``sensitivity`` workflow);
- ``set``, ``rigl``: sparse training's drop-and-grow (``sparse_training``);

and the pure functions of the step they share (``ramps``). ``schedule=<name>`` picks one from
``SCHEDULES``, or a plug-in by import path (``schedule.name=package.module:Class``): a new
schedule is a module and a YAML, with no edit here (``tests/plugin_methods``).
"""

from __future__ import annotations

import dataclasses

from prunelab.registry import Registry
from prunelab.schedules.base import Schedule, schedule_name
from prunelab.schedules.gradual import GradualSchedule
from prunelab.schedules.imp import IMP_ARMS, IMPSchedule, LevelSchedule
from prunelab.schedules.iterative import IterativeSchedule
from prunelab.schedules.lottery import LotterySchedule, rewind_problems
from prunelab.schedules.oneshot import AtInitSchedule, OneshotSchedule
from prunelab.schedules.ramps import (
    cosine_fraction,
    cubic_ramp,
    iterative_prunes_after,
    iterative_releases_at,
    target_sparsity,
)
from prunelab.schedules.sensitivity import CHALLENGE_GRID, SensitivitySchedule
from prunelab.schedules.sparse_training import DynamicSparseSchedule, RigLSchedule
from prunelab.settings import setting


def is_schedule(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, Schedule) and dataclasses.is_dataclass(obj)


SCHEDULES: Registry[type[Schedule]] = Registry("schedule", "schedule", is_schedule)
for _cls in (
    OneshotSchedule,
    AtInitSchedule,
    GradualSchedule,
    IterativeSchedule,
    LotterySchedule,
    DynamicSparseSchedule,
    RigLSchedule,
    IMPSchedule,
    SensitivitySchedule,
):
    SCHEDULES.add(_cls.KIND, _cls)

__all__ = [
    "CHALLENGE_GRID",
    "IMP_ARMS",
    "SCHEDULES",
    "AtInitSchedule",
    "DynamicSparseSchedule",
    "GradualSchedule",
    "IMPSchedule",
    "IterativeSchedule",
    "LevelSchedule",
    "LotterySchedule",
    "OneshotSchedule",
    "RigLSchedule",
    "Schedule",
    "SensitivitySchedule",
    "cosine_fraction",
    "cubic_ramp",
    "is_schedule",
    "iterative_prunes_after",
    "iterative_releases_at",
    "rewind_problems",
    "schedule_name",
    "setting",
    "target_sparsity",
]
