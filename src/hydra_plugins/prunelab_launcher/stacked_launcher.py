"""``hydra/launcher=stacked``: run a sweep's jobs as stacks (``prunelab.run.run_jobs``).

Hydra first sets up every job as its basic launcher would (its folder, ``.hydra/`` record and
log), then jobs that differ only in strategy, sparsity and seed train together as one stack
(the same orchestrator the default launcher calls with one job at a time), each member
writing its own ``metrics.csv`` and ``result.json`` into its own folder. A finished job is
skipped, so re-running the command resumes an interrupted sweep. Kept free of heavy imports:
Hydra imports every plugin at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from .jobs import LOG_FORMAT, compose_jobs, settle

log = logging.getLogger(__name__)


class StackedLauncher(Launcher):
    def __init__(self, max_members: int = 64) -> None:
        super().__init__()
        self.max_members = max_members
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from prunelab.config import load
        from prunelab.workflows import group_jobs, run_jobs

        assert self.config is not None and self.hydra_context is not None
        cfgs, runs = compose_jobs(self.config, self.hydra_context, job_overrides, initial_job_idx)
        groups_hint = f"at most {self.max_members} per stack"
        log.info(f"Set up {len(job_overrides)} jobs to train stacked ({groups_hint})")
        handler = logging.FileHandler(Path(str(self.config.hydra.sweep.dir)) / "stacked.log")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(handler)
        try:
            jobs = [load(cfg) for cfg in cfgs]  # checked before Hydra started (config.argv)
            for group in group_jobs(jobs, self.max_members):
                log.info(f"stacked run of jobs {[initial_job_idx + i for i in group]}")
                outcomes = run_jobs([jobs[i] for i in group])
                for i, outcome in zip(group, outcomes, strict=True):
                    failed = isinstance(outcome, BaseException)
                    settle(runs[i], outcome if failed else outcome["test_acc"])
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
        return runs
