"""Set up a sweep's jobs in the launching process, as Hydra's basic launcher would, and keep
each job's resolved config: what ``stacked`` trains and what ``slurm`` decides to submit.

Kept free of heavy imports: Hydra imports every plugin at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, run_job
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # as Hydra's job logs


def compose_jobs(
    config: DictConfig,
    hydra_context: HydraContext,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
) -> tuple[list[DictConfig], list[JobReturn]]:
    """Each job's folder, ``.hydra/`` record and log set up, and its config with
    ``paths.output_dir`` and every ``${hydra:...}`` resolved (while that job's HydraConfig is
    set); the JobReturns to settle once the jobs have run."""
    cfgs: list[DictConfig] = []

    def collect(cfg: DictConfig) -> None:
        resolved = cfg.copy()
        with open_dict(resolved):
            resolved.paths.output_dir = HydraConfig.get().runtime.output_dir
        OmegaConf.resolve(resolved)
        cfgs.append(resolved)

    runs: list[JobReturn] = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = idx
            sweep_config.hydra.job.num = idx
        runs.append(
            run_job(
                hydra_context=hydra_context,
                task_function=collect,
                config=sweep_config,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
        )
    return cfgs, runs


def settle(run: JobReturn, outcome: Any) -> None:
    """Give a job what it returned (its test accuracy), or the exception that stands for its
    failure."""
    run.status = JobStatus.FAILED if isinstance(outcome, BaseException) else JobStatus.COMPLETED
    run.return_value = outcome
