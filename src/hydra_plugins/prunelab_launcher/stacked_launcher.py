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
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # as Hydra's job logs


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
        from prunelab.run import group_jobs, run_jobs

        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        groups_hint = f"at most {self.max_members} per stack"
        log.info(f"Setting up {len(job_overrides)} jobs to train stacked ({groups_hint})")

        cfgs: list[DictConfig] = []

        def collect(cfg: DictConfig) -> None:
            # The job's config, typed as composed, with ${hydra:...} resolved while this
            # job's HydraConfig is set.
            resolved = cfg.copy()
            with open_dict(resolved):
                resolved.paths.output_dir = HydraConfig.get().runtime.output_dir
            OmegaConf.resolve(resolved)
            cfgs.append(resolved)

        runs: list[JobReturn] = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            sweep_config = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(overrides)
            )
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = idx
                sweep_config.hydra.job.num = idx
            runs.append(
                run_job(
                    hydra_context=self.hydra_context,
                    task_function=collect,
                    config=sweep_config,
                    job_dir_key="hydra.sweep.dir",
                    job_subdir_key="hydra.sweep.subdir",
                )
            )
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        handler = logging.FileHandler(sweep_dir / "stacked.log")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(handler)
        try:
            jobs = [load(cfg) for cfg in cfgs]  # checked before Hydra started (config.argv)
            for group in group_jobs(jobs, self.max_members):
                log.info(f"stacked run of jobs {[initial_job_idx + i for i in group]}")
                outcomes = run_jobs([jobs[i] for i in group])
                for i, outcome in zip(group, outcomes, strict=True):
                    _settle(runs[i], outcome)
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
        return runs


def _settle(run: JobReturn, outcome: Any) -> None:
    """Give a job the outcome of its stacked run: its test accuracy, or the exception."""
    if isinstance(outcome, BaseException):
        run.status = JobStatus.FAILED
        run.return_value = outcome
    else:
        run.status = JobStatus.COMPLETED
        run.return_value = outcome["test_acc"]
