"""Iterative magnitude pruning with rewinding as a workflow of ordinary runs
(``schedule=imp``): the dense training, then every level and its controls, each an ordinary
job that the orchestrator trains (``run.run_job``), one after another.

This module sits above the orchestrator and calls it, so an IMP job resumes level by level
as any job resumes: a finished level is returned without training, an interrupted one
resumes from its ``last.ckpt``. What the levels are made of (their folders, starts and
summary rows) is ``prunelab.levels``; ``prunelab.workflows`` hands an IMP job to
``train_levels`` in place of the orchestrator's training of one stack.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from prunelab.config import Config, check_environment, check_stack
from prunelab.finish import log_result
from prunelab.job_data import load_data, loaders, new_member
from prunelab.levels import (
    LEVELS_DIR,
    REWIND_FILE,
    START_FILE,
    SUMMARY_FILE,
    Fresh,
    level_dir,
    level_job,
    level_start,
    level_summary,
    load_net,
)
from prunelab.results import (
    MODEL_FILE,
    job_result,
    save_result,
    save_state_atomic,
    write_json_atomic,
)
from prunelab.run import run_job
from prunelab.schedules import IMPSchedule, LevelSchedule

log = logging.getLogger("prunelab")


def train_levels(jobs: Sequence[Config], progress_bar: bool = False) -> list[dict[str, Any]]:
    """An IMP job (alone: ``config.check_stack``) trained level by level (``run_levels``),
    and its summary result written to its folder, as ``run.run_jobs`` expects of the
    function that trains its jobs."""
    check_stack(jobs)
    [job] = jobs
    check_environment(job)
    raw = load_data(job)
    train, _ = loaders(job, raw, torch.device("cpu"), [job.seed])
    result = run_levels(job, len(train), lambda purpose: new_member(job, raw, job.seed, purpose))
    out = Path(job.paths.output_dir)
    save_result(out, result, None)
    log_result(result, out)
    return [result]


def run_levels(job: Config, spe: int, fresh: Fresh) -> dict[str, Any]:
    """Every level of an IMP job, in order, then its summary result: the last ticket's
    figures, with ``levels`` (one row per level and arm, ``level_summary``) and the
    ``sparsity`` the last level reached. Each level's job is an ordinary run
    (``run.run_job``: trained, or its finished result returned; what stopped it raised);
    ``spe`` is the job's optimizer steps per epoch, ``fresh(purpose)`` a new member of its
    model (``levels.level_start``)."""
    imp: IMPSchedule = job.schedule
    started = time.perf_counter(), time.time()
    out = Path(job.paths.output_dir)
    rewind_step = imp.rewind_steps(spe)
    if rewind_step >= imp.epochs * spe:
        raise ValueError(
            f"schedule.rewind_step={rewind_step} is not inside the dense training's "
            f"{imp.epochs * spe} steps; rewind to an earlier step"
        )
    rewind_path = out / LEVELS_DIR / REWIND_FILE
    dense = LevelSchedule(epochs=imp.epochs, level=0, lr_horizon=imp.epochs,
                          capture_step=rewind_step, capture=str(rewind_path))  # fmt: skip
    rows = []
    done = run_job(level_job(job, dense, 0.0))
    rows.append(level_summary(done, level_dir(out, 0, "ticket"), 0, "ticket"))
    rewind = load_net(rewind_path, fresh("init"))
    arms = ("ticket", "random", "reinit") if imp.controls else ("ticket",)
    skipped = math.floor(rewind_step / spe)
    last = done
    for level in range(1, imp.levels + 1):
        ticket = load_net(level_dir(out, level - 1, "ticket") / MODEL_FILE, fresh("init"))
        k = imp.level_sparsity(level)
        for arm in arms:
            folder = level_dir(out, level, arm)
            folder.mkdir(parents=True, exist_ok=True)
            start = folder / START_FILE
            save_state_atomic(start, level_start(ticket, rewind, job, level, arm, fresh))
            schedule = LevelSchedule(epochs=imp.epochs - skipped, level=level, arm=arm,
                                     lr_horizon=imp.epochs, offset=rewind_step / spe,
                                     start=str(start))  # fmt: skip
            result = run_job(level_job(job, schedule, k))
            rows.append(level_summary(result, folder, level, arm))
            if arm == "ticket":
                last = result
        write_json_atomic(out / SUMMARY_FILE, rows)
        log.info(
            "IMP level %d/%d (%.2f %% of the pruned weights kept): %s",
            level,
            imp.levels,
            100 * (1 - k),
            ", ".join(f"{r['arm']} {r['test_acc']:.4f}" for r in rows if r["level"] == level),
        )
    final = {f"{split}/{m}": last[f"{split}_{m}"] for split in ("train", "val", "test")
             for m in ("acc", "loss") if f"{split}_{m}" in last}  # fmt: skip
    run = {
        "levels": rows,
        "dataset": last.get("dataset"),
        "data_sha256": last.get("data_sha256"),
        "numerics": last.get("numerics"),
        "fit_time_s": sum(r["fit_time_s"] or 0.0 for r in rows),
    }
    result = job_result(dataclasses.asdict(job), final, last["figures"], run, started)
    result["sparsity"] = last["sparsity"]  # what the last level reached, not `sparsity`
    return result
