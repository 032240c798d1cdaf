"""The one orchestrator: ``run_jobs(cfgs)`` trains a list of jobs as one stack.

A single run is a list of one (``run_job``); ``hydra/launcher=stacked`` hands over groups of
jobs that differ only in strategy, sparsity and seed (``group_jobs``). Either way the same
steps run, once: turn each composed config into a checked, typed job (``config.load``),
return the finished jobs whose folders hold a result of the same identity (and refuse a
folder holding another's), check the rest, resume from ``last.ckpt`` or start from the dense
cache, load the data onto the trainer's device, replay earlier log rows, build the members
(each seeded as its separate run would be), fit, test, and write each job's ``result.json``.

Each step lives with its concern, and this module only orders them: what a stack is
(``stacks.py``), its data (``job_data.py``), where its fit starts (``start.py``: its own
checkpoint via ``resume.py``, or the dense cache), the fit and its callbacks (``wiring.py``),
the results (``finish.py``), the process's Lightning set-up (``environment.py``).

On a 2-core CPU a stack does not pay (``benchmarks/bench_train.py``); on a GPU it is the fast
path, since one small MLP leaves the device mostly idle.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger

from prunelab.config import (
    Config,
    check_environment,
    check_max_members,
    check_stack,
    load,
    stack_key,
)
from prunelab.environment import quiet_lightning
from prunelab.errors import MismatchError
from prunelab.finish import write_results
from prunelab.identity import identity
from prunelab.job_data import load_data
from prunelab.results import check_prior, write_error
from prunelab.resume import LAST_CKPT, LAST_MANIFEST, replay, resumed
from prunelab.stacks import make_stack
from prunelab.start import EXPANDED_CKPT, starting_point
from prunelab.wiring import Checkpointing, final_test, fit

log = logging.getLogger("prunelab")
Outcome = dict[str, Any] | BaseException
# What trains the jobs of ``run_jobs`` that need training: ``train_stack``, or a workflow's
# (``prunelab.workflows``: IMP's levels, a sensitivity scan's dense run, each an ordinary
# run of its own through here).
Train = Callable[[Sequence[Config], bool], list[dict[str, Any]]]


def as_job(cfg: DictConfig | Config) -> Config:
    """A composed config as a checked, typed job (a job stays as it is)."""
    return cfg if isinstance(cfg, Config) else load(cfg)


def group_jobs(cfgs: Sequence[DictConfig | Config], max_members: int) -> list[list[int]]:
    """Indices of ``cfgs`` grouped by ``config.stack_key``, in order, ≤ ``max_members`` each;
    a job of several runs (its schedule's ``WORKFLOW``) in a group of its own, after the
    others."""
    check_max_members(max_members)
    groups: dict[str, list[int]] = {}
    alone = []  # jobs of several runs each (schedule=imp, sensitivity) never share a stack
    for i, cfg in enumerate(cfgs):
        job = as_job(cfg)
        if job.schedule.WORKFLOW is not None:
            alone.append([i])
        else:
            groups.setdefault(stack_key(job), []).append(i)
    stacks = [
        g[j : j + max_members] for g in groups.values() for j in range(0, len(g), max_members)
    ]
    return [*stacks, *alone]


def run_job(cfg: DictConfig | Config) -> dict[str, Any]:
    """Train, prune and evaluate one job; its ``result.json`` content, or raise its error."""
    outcome = run_jobs([cfg])[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def run_jobs(
    cfgs: Sequence[DictConfig | Config], progress_bar: bool = False, train: Train | None = None
) -> list[Outcome]:
    """Train ``cfgs`` as one stack; per job, its result (also in its ``result.json``) or the
    exception that stopped it (also in its ``error.txt``, unless its folder belongs to
    another config's run).

    A job whose folder already holds a finished result of its identity returns it without
    training, so re-running an interrupted sweep only does what is missing; a folder that
    holds another identity's result stops the stack before any work (``on_mismatch``). A
    stack fails as a whole (bad config, diverged member): each unfinished job is then marked
    failed. ``progress_bar`` adds a terminal progress bar to the one-line epoch summaries;
    ``train`` trains the jobs in place of ``train_stack`` (a workflow's).
    """
    try:
        jobs = [as_job(c) for c in cfgs]
        outcomes: list[Outcome | None] = [prior_result(job) for job in jobs]
    except MismatchError as e:
        return [e] * len(cfgs)
    except Exception as e:
        for cfg in cfgs:
            record_failure(Path(str(cfg.paths.output_dir)), e)
        return [e] * len(cfgs)
    todo = [i for i, r in enumerate(outcomes) if r is None]
    if todo:
        todo_jobs = [jobs[i] for i in todo]
        try:
            results: Sequence[Outcome] = (train or train_stack)(todo_jobs, progress_bar)
        except MismatchError as e:
            results = [e] * len(todo_jobs)
        except Exception as e:
            for job in todo_jobs:
                record_failure(Path(job.paths.output_dir), e)
            results = [e] * len(todo_jobs)
        for i, r in zip(todo, results, strict=True):
            outcomes[i] = r
    return outcomes  # type: ignore[return-value]


def prior_result(job: Config) -> dict[str, Any] | None:
    """The finished result of this job's identity in its folder (``results.check_prior``)."""
    config = dataclasses.asdict(job)
    done = check_prior(Path(job.paths.output_dir), identity(config), config, job.on_mismatch)
    if done is not None:
        log.info("%s/result.json exists: returning it without training", job.paths.output_dir)
    return done


def record_failure(job_dir: Path, error: BaseException) -> None:
    """Leave ``error.txt`` for the report, unless the job dir itself is what failed."""
    try:
        write_error(job_dir, error)
    except OSError as e:
        log.warning("could not write %s/error.txt: %s", job_dir, e)


def train_stack(jobs: Sequence[Config], progress_bar: bool = False) -> list[dict[str, Any]]:
    """``run_jobs`` for jobs that all need training."""
    check_stack(jobs)
    stack = make_stack(jobs)
    base = stack.base
    for job in jobs:  # the members' loggers may differ
        check_environment(job)
    torch.set_float32_matmul_precision(base.float32_matmul_precision)
    quiet_lightning()
    if base.schedule.WORKFLOW is not None:  # a workflow of runs, not one training
        raise ValueError(f"schedule={base.schedule.name} is a workflow of runs: start it "
                         "with prunelab.workflows.run_jobs")  # fmt: skip
    started = time.perf_counter(), time.time()
    stack.workdir.mkdir(parents=True, exist_ok=True)
    config = dataclasses.asdict(base)
    ckpt, epoch, rows = resumed(stack.workdir, [d / "metrics.csv" for d in stack.outs],
                                stack.identity, config, base.on_mismatch)  # fmt: skip
    raw = load_data(base)
    start = starting_point(stack, raw, ckpt, epoch, rows)  # reads old logs: before the loggers
    loggers = [logger_of(job) for job in jobs]
    for member_rows, logger in zip(start.rows, loggers, strict=True):
        replay(member_rows, logger)

    if len(jobs) > 1:
        log.info("stacked run of %d members → %s", len(jobs), stack.workdir)
    fit_started = time.perf_counter()
    checkpointing = Checkpointing(stack.identity, config)
    fitted = fit(stack, raw, loggers, base.schedule.total_epochs, start.ckpt, checkpointing,
                 progress_bar)  # fmt: skip
    fit_time = time.perf_counter() - fit_started
    final_test(fitted, stack, raw)
    for logger in loggers:
        logger.finalize("success")
    results = write_results(stack, raw, fitted, start, started, fit_time)
    for name in (LAST_CKPT, LAST_MANIFEST, EXPANDED_CKPT):
        (stack.workdir / name).unlink(missing_ok=True)
    return results


def logger_of(job: Config) -> Logger:
    """The job's logger (``logger=csv|tensorboard|mlflow|wandb``), writing into its folder."""
    return hydra.utils.instantiate(dataclasses.asdict(job.logger))
