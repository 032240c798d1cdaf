"""Where every job starts: most jobs are one training, which the orchestrator trains,
stacked with others where it can (``run.run_jobs``); a job whose schedule is a workflow of
several ordinary runs (``Schedule.WORKFLOW``: ``schedule=imp``, ``schedule=sensitivity``) is
trained by its workflow (``imp.train_levels``, ``sensitivity.train_scan``), which sits above
the orchestrator and runs each of its trainings through it. The command line and the
launchers start jobs here, so neither needs to know which is which, and nothing below hands a
function back up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig

from prunelab import run
from prunelab.config import Config
from prunelab.imp import train_levels
from prunelab.run import Outcome, Train, as_job, group_jobs
from prunelab.sensitivity import train_scan

__all__ = ["WORKFLOWS", "group_jobs", "run_job", "run_jobs", "workflow"]
# Each workflow by the name a schedule's ``WORKFLOW`` gives.
WORKFLOWS: dict[str, Train] = {"levels": train_levels, "sensitivity": train_scan}


def workflow(cfg: DictConfig | Config) -> Train | None:
    """What trains ``cfg``'s job in place of ``run.train_stack``: its schedule's workflow, or
    None for one training (and for a config that does not load: ``run.run_jobs`` records
    why)."""
    try:
        job = as_job(cfg)
    except Exception:
        return None
    name = job.schedule.WORKFLOW
    if name is not None and name not in WORKFLOWS:
        raise ValueError(f"schedule={job.schedule.name} names the workflow {name!r}; prunelab "
                         f"has {', '.join(sorted(WORKFLOWS))}")  # fmt: skip
    return None if name is None else WORKFLOWS[name]


def run_jobs(cfgs: Sequence[DictConfig | Config], progress_bar: bool = False) -> list[Outcome]:
    """``run.run_jobs``, a workflow's job trained by its workflow (such a job never shares a
    stack: ``run.group_jobs`` puts it alone, ``config.check_stack`` refuses it in one)."""
    train = workflow(cfgs[0]) if len(cfgs) == 1 else None
    return run.run_jobs(cfgs, progress_bar, train)


def run_job(cfg: DictConfig | Config) -> dict[str, Any]:
    """Train, prune and evaluate one job (or run its workflow); its ``result.json`` content,
    or raise its error."""
    [outcome] = run_jobs([cfg])
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
