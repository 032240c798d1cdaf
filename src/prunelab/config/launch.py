"""Checks of how jobs are launched together: which jobs may share a stack, how many members
a stack may hold, how many workers a machine's GPUs can serve."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prunelab.config.argv import check_writable_dir
from prunelab.config.schema import Config
from prunelab.errors import ConfigError
from prunelab.identity import config_hash, without

# Keys in which the members of one stack may differ (each has its own folder, logger and
# result, its own method, and each seed its own init, batch order and dense-cache entry);
# everything else
# (schedule, data, optimiser, trainer, strategy.prune_output, …) is the stack's and must be
# equal.
MEMBER_KEYS = (
    "strategy.name",
    "strategy.criterion",
    "strategy.allocation",
    "strategy.shuffle",
    "sparsity",
    "seed",
    "paths",
    "logger",
    "save_model",
    "inference_batch_size",
    "on_mismatch",
)


def stack_key(job: Config) -> str:
    """Jobs with equal keys can train as one stack: equal in all but ``MEMBER_KEYS``."""
    return config_hash(without(dataclasses.asdict(job), MEMBER_KEYS), length=12)


def check_stack(jobs: Sequence[Config]) -> None:
    """Every job's folder writable, and all of them able to share one stack."""
    for job in jobs:
        check_writable_dir(Path(job.paths.output_dir))
    if len(jobs) > 1 and jobs[0].schedule.WORKFLOW is not None:
        raise ConfigError(
            f"schedule={jobs[0].schedule.name} trains its runs one after another and "
            "cannot share a stack; run it with the default launcher"
        )
    if len({stack_key(j) for j in jobs}) > 1:
        raise ConfigError(
            "stacked jobs must differ only in strategy (name, criterion, allocation, shuffle), "
            "sparsity and seed; group them with run.group_jobs (hydra/launcher=stacked does)"
        )


def check_max_members(max_members: Any) -> int:
    """``hydra.launcher.max_members``: how many jobs one stack may hold."""
    if isinstance(max_members, bool) or not isinstance(max_members, int) or max_members < 1:
        raise ConfigError(
            f"hydra.launcher.max_members must be ≥ 1, got {max_members} (e.g. max_members=64)"
        )
    return max_members


def check_workers(n_jobs: int, n_gpus: int) -> None:
    """Refuse a ``local_gpus`` worker count the visible GPUs cannot serve."""
    if n_gpus < 1:
        raise ConfigError(
            "hydra/launcher=local_gpus needs a GPU but none is visible; "
            "drop it to run on the CPU, or use hydra/launcher=slurm"
        )
    if n_jobs > n_gpus:
        raise ConfigError(
            f"hydra.launcher.n_jobs={n_jobs} but only {n_gpus} GPU(s) are visible; use "
            f"n_jobs ≤ {n_gpus} (more jobs than GPUs queue on their own)"
        )
