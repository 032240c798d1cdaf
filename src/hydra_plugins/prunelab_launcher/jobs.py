"""Set up a sweep's jobs in the launching process, as Hydra's basic launcher would, and keep
each job's resolved config: what ``stacked`` trains and what ``slurm`` decides to submit.

Kept free of heavy imports: Hydra imports every plugin at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
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
    set); the JobReturns to settle once the jobs have run. The sweep's folder is made, and
    Hydra's own logging is in place before and after (each job's set-up switches to its log)."""
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
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
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return cfgs, runs


def settle(run: JobReturn, outcome: Any) -> None:
    """Give a job what it returned (its test accuracy), or the exception that stands for its
    failure."""
    run.status = JobStatus.FAILED if isinstance(outcome, BaseException) else JobStatus.COMPLETED
    run.return_value = outcome
