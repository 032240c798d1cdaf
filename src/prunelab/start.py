"""Where a stack's fit starts: its own ``last.ckpt``, the dense cache, or the beginning.

A stack that left a checkpoint resumes from it (``resume.py``); else, with dense epochs to
train, its members start from the dense cache's entries of their seeds (``cache.py``),
trained first, by the same ``wiring.fit`` as a run, where absent; else from scratch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from prunelab import cache
from prunelab.config import Config
from prunelab.data import RawDataset
from prunelab.logs import csv_log
from prunelab.results import numerics
from prunelab.resume import LAST_CKPT, LAST_MANIFEST, Rows, replay, resumed
from prunelab.resume import read_rows as read_log_rows
from prunelab.stacks import Stack, with_seed
from prunelab.wiring import Checkpointing, fit

log = logging.getLogger("prunelab")
EXPANDED_CKPT = "dense-stacked.ckpt"


@dataclass(frozen=True)
class Start:
    """Where a stack's fit starts: a checkpoint or none, and each member's earlier log rows."""

    ckpt: Path | None
    rows: list[Rows]
    resumed_after_epoch: int | None = None
    dense: list[Path] | None = None  # each member's dense-cache entry


def starting_point(
    stack: Stack, raw: RawDataset, ckpt: Path | None, epoch: int, rows: list[Rows]
) -> Start:
    """The stack's own ``last.ckpt`` (``ckpt``, after ``epoch``, with each member's ``rows``)
    if it left one; else, with dense epochs to train, the dense cache's entries of the
    members' seeds (trained first if absent) stacked over the members; else nothing."""
    if ckpt is not None:
        return Start(ckpt, rows, resumed_after_epoch=epoch + 1)
    base = stack.base
    if base.dense_cache and base.schedule.dense_epochs > 0:
        entries = {
            seed: dense_entry(with_seed(base, seed), raw) for seed in dict.fromkeys(stack.seeds)
        }
        members = [entries[seed] for seed in stack.seeds]  # each member from its seed's entry
        sources = [entry / cache.CHECKPOINT for entry in members]
        expanded = cache.expand(sources, stack.workdir / EXPANDED_CKPT)
        return Start(expanded, [read_log_rows(e / cache.METRICS) for e in members], dense=members)
    return Start(None, rows)


def dense_entry(job: Config, raw: RawDataset) -> Path:
    """Folder of the dense-cache entry for ``job``, training it first if absent or unusable."""
    settings = cache.dense_settings(job, raw.digest)
    key = cache.dense_key(settings)
    meta: dict[str, Any] = {"settings": settings}  # build adds the numerics it trained with

    def build(workdir: Path) -> None:
        log.info("training the dense model (%d epochs) for the cache", job.schedule.dense_epochs)
        ckpt, _, [rows] = resumed(workdir, [workdir / cache.METRICS], key)
        csv = csv_log(workdir)
        replay(rows, csv)
        stack = Stack([job], [workdir], workdir, key)
        trainer = fit(stack, raw, [csv], job.schedule.dense_epochs, ckpt,
                      Checkpointing(key, settings)).trainer  # fmt: skip
        csv.finalize("success")
        trainer.save_checkpoint(workdir / cache.CHECKPOINT, weights_only=False)
        for name in (LAST_CKPT, LAST_MANIFEST):
            (workdir / name).unlink(missing_ok=True)
        meta["numerics"] = numerics(
            trainer.strategy.root_device, torch.float32, job.trainer.precision
        )

    entry = cache.get_or_build(Path(job.paths.cache_dir), key, build, meta,
                               check=cache.probe_checkpoint)  # fmt: skip
    log.info("dense model from cache %s", entry)
    return entry
