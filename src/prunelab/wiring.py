"""How a stack's fit is wired: its members, its callbacks, the trainer, the data, the module.

``fit`` builds all of them for a stack and trains it; the orchestrator (``run.py``) and the
dense cache's build (``start.dense_entry``) are its two callers, so a cached dense model is
trained by exactly the steps of a run's dense phase.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import Logger

from prunelab.callbacks import (
    EpochBar,
    EpochSummary,
    FinetuneGuard,
    PruningCallback,
    SaveWeightsAt,
    WeightAveraging,
)
from prunelab.config import Config, job_method
from prunelab.data import RawDataset
from prunelab.environment import cluster_environment
from prunelab.job_data import loaders, new_member
from prunelab.logs import MemberLoggers
from prunelab.models import stacked
from prunelab.module import PruningModule
from prunelab.resume import LAST_CKPT, LastCheckpoint
from prunelab.stacks import Stack


class Fitted(NamedTuple):
    """What ``fit`` built and trained."""

    trainer: pl.Trainer
    module: PruningModule
    pruning: PruningCallback
    summary: EpochSummary
    checkpoint: LastCheckpoint | None


@dataclass(frozen=True)
class Checkpointing:
    """What a stack's ``last.json`` records: the identity it resumes under, and the config
    that names the keys a mismatch differs in."""

    identity: str
    config: dict[str, Any] | None


def fit(
    stack: Stack,
    raw: RawDataset,
    loggers: Sequence[Logger],
    max_epochs: int,
    ckpt: Path | None,
    checkpointing: Checkpointing,
    progress_bar: bool = False,
) -> Fitted:
    """Build ``stack``'s members and fit them to ``max_epochs``, from ``ckpt`` if given.

    Each member is initialised from its seed's ``init`` stream (``job_data.new_member``),
    so member i starts exactly where the separate run of job i would. The data goes to the
    device the trainer puts the module on.
    """
    base = stack.base
    members = [new_member(base, raw, job.seed) for job in stack.jobs]
    start_file = base.schedule.start_file
    if start_file is not None:  # an IMP level: weights and final masks from the level runner
        state = torch.load(start_file, weights_only=True)
        for member in members:
            member.load_state_dict(state)
    pruning = pruning_callback(stack)
    if start_file is not None:
        pruning.current = [job.sparsity for job in stack.jobs]
    summary = EpochSummary()
    callbacks: list[pl.Callback] = [pruning, summary, *method_callbacks(base)]
    checkpoint = last_checkpoint(stack, checkpointing)
    if checkpoint is not None:
        callbacks.append(checkpoint)
    settings = dataclasses.asdict(base.trainer)
    if progress_bar:
        settings["enable_progress_bar"] = True
        callbacks.append(EpochBar())
    trainer = pl.Trainer(
        **settings,
        max_epochs=max_epochs,
        logger=MemberLoggers(loggers),
        callbacks=callbacks,
        enable_checkpointing=False,
        default_root_dir=stack.workdir,
        plugins=[cluster_environment()],
    )
    train_loader, evals = loaders(base, raw, trainer.strategy.root_device, stack.seeds)
    pruning.use_data(train_loader)
    val_splits = ("val", "test") if base.eval_test_every_epoch else ("val",)
    module = PruningModule(
        stacked(members, lambda seed, purpose: new_member(base, raw, seed, purpose)),
        base.optim,
        base.schedule,
        val_splits=val_splits,
        steps_per_epoch=len(train_loader),
    )
    val = [evals[s] for s in module.val_splits]
    trainer.fit(module, train_loader, val, ckpt_path=ckpt, weights_only=True)
    return Fitted(trainer, module, pruning, summary, checkpoint)


def final_test(fitted: Fitted, stack: Stack, raw: RawDataset) -> None:
    """The final, reported figures of ``fitted`` (``PruningModule.on_test_start``): its test
    stage on the train, val and test loaders, their tensors on the trainer's device."""
    device = fitted.trainer.strategy.root_device
    _, evals = loaders(stack.base, raw, device, stack.seeds)
    module = fitted.module
    fitted.trainer.test(module, dataloaders=[evals[s] for s in module.test_splits], verbose=False)


def pruning_callback(stack: Stack) -> PruningCallback:
    """The one pruning callback of ``stack``: each member's method, sparsity and seed; the
    schedule and every other setting are the stack's, the same in all its jobs."""
    base = stack.base
    return PruningCallback(
        [job_method(job) for job in stack.jobs],
        [job.sparsity for job in stack.jobs],
        stack.seeds,
        base.schedule,
        base.strategy.prune_output,
        base.strategy.layer_sparsity,
        names=[job.strategy.name for job in stack.jobs],
        score_batches=base.strategy.score_batches,
        score_batch_size=base.strategy.score_batch_size,
    )


def method_callbacks(job: Config) -> list[pl.Callback]:
    """The callbacks ``job``'s schedule and settings ask for beyond pruning, in the order
    their hooks must run: after the pruning callback and the epoch summary."""
    callbacks: list[pl.Callback] = []
    if job.schedule.saves_weights_at is not None:
        callbacks.append(SaveWeightsAt(*job.schedule.saves_weights_at))
    dense_epochs = job.schedule.dense_epochs
    averaged = job.optim.average_epochs(dense_epochs)
    if averaged:
        callbacks.append(WeightAveraging(averaged, dense_epochs))
    if guards_finetuning(job):  # after the pruning callback: it sees the final masks
        callbacks.append(FinetuneGuard(job.schedule.finetune_start, job.finetune_min_correct))
    return callbacks


def last_checkpoint(stack: Stack, checkpointing: Checkpointing) -> LastCheckpoint | None:
    """The callback that keeps ``stack``'s ``last.ckpt``, if the job checkpoints at all."""
    base = stack.base
    if not base.checkpoint_every_n_epochs:
        return None
    return LastCheckpoint(
        stack.workdir / LAST_CKPT,
        base.checkpoint_every_n_epochs,
        base.checkpoint_max_share,
        checkpointing.identity,
        checkpointing.config,
    )


def guards_finetuning(job: Config) -> bool:
    """Whether fine-tuning is checked against the model it started from (``FinetuneGuard``):
    when asked and the schedule has a fine-tune with a model to fall back to (a lottery
    ticket retrains from rewound weights and has none)."""
    return job.finetune_guard and job.schedule.guards_finetuning
