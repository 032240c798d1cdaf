"""The process a run trains in, as Lightning sees it: its place in a cluster and its quiet.

Chosen once here, so that Lightning need not guess (``cluster_environment``) and its
start-up chatter, which says nothing about the run, stays out of the log (``quiet_lightning``).
"""

from __future__ import annotations

import logging
import os
import warnings

from pytorch_lightning.plugins.environments import (
    ClusterEnvironment,
    LightningEnvironment,
    SLURMEnvironment,
)


def cluster_environment() -> ClusterEnvironment:
    """The process's place in a cluster, chosen here so that Lightning need not guess.

    A job that SLURM started as a step (``srun``, as submitit does) is one task of it, and
    gets SLURM's environment without auto-requeue: submitit requeues on time limits and
    preemption, and one owner of the signals is enough. Anything else is one local process,
    also on a machine where ``srun`` merely exists (a login node): Lightning's own detection
    would warn there, on every run, that ``srun`` is not used.
    """
    interactive = os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive")  # salloc's shell
    if "SLURM_NTASKS" in os.environ and not interactive:
        return SLURMEnvironment(auto_requeue=False)
    return LightningEnvironment()


def quiet_lightning() -> None:
    """Drop Lightning's start-up chatter; the orchestrator logs what a run did instead."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("pytorch_lightning.accelerators.cuda").setLevel(logging.WARNING)
    # The loaders slice in-memory tensors on purpose: there are no workers to add.
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    # The run dir already holds Hydra's files; the CSV logger only ever replaces metrics.csv.
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
    # Lightning asks "is this SLURM?" again when it looks for a requeue checkpoint and warns
    # wherever srun exists (a login node); cluster_environment() has answered that already.
    warnings.filterwarnings("ignore", message=".*`srun` command is available on your system.*")
