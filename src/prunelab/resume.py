"""Picking a run up where it stopped: its last checkpoint, and the log rows it already wrote.

A long job keeps ``last.ckpt`` (``callbacks.LastCheckpoint``, atomically replaced every N
epochs) in its work dir: the job dir of a single run, the stack's dir of a stacked one, the
build dir of a dense-cache entry. Beside it, ``last.json`` records the checkpoint's sha256,
format, stack size, epoch and the identity of the config that wrote it. Re-running the same
command finds them here and continues; the rows the killed run had logged up to that epoch
are read back and replayed into the new logger, so the curves stay whole.

A checkpoint that fails its check (truncated, replaced, unreadable, another format or stack
size) is set aside, renamed and never deleted, and training starts over, with one line
saying so. One written by another config is never resumed: the run stops (``MismatchError``)
or, with ``on_mismatch=rerun``, supersedes it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import Logger

from prunelab.errors import MismatchError
from prunelab.identity import IDENTITY_VERSION
from prunelab.module import CHECKPOINT_FORMAT
from prunelab.results import (
    LAST_CKPT,
    LAST_MANIFEST,
    atomic_path,
    foreign_checkpoint,
    read_checkpoint_manifest,
    set_aside,
    sha256_file,
    supersede,
    write_json_atomic,
)

log = logging.getLogger("prunelab")

Rows = list[dict[str, float]]


def write_manifest(
    ckpt: Path,
    written: Path,
    epoch: int,
    members: int,
    identity: str,
    config: dict[str, Any] | None,
) -> None:
    """Record ``written`` (the new checkpoint, not yet renamed to ``ckpt``) in ``last.json``:
    what a resume will check, and the ``config`` of the run that wrote it (which names the
    keys a mismatch differs in).

    Written *before* the rename, and keeping the checkpoint it replaces as ``previous``: a
    job killed between the two (SLURM's requeue, a time limit) leaves the old checkpoint
    under a manifest that still vouches for it, so the resume loses one save, not the run.
    """
    old = read_checkpoint_manifest(ckpt.parent)
    previous = None
    if old is not None and ckpt.is_file() and old.get("sha256") == sha256_file(ckpt):
        previous = {"sha256": old["sha256"], "epoch": old["epoch"]}
    write_json_atomic(
        ckpt.with_name(LAST_MANIFEST),
        {
            "sha256": sha256_file(written),
            "format": CHECKPOINT_FORMAT,
            "members": members,
            "epoch": epoch,
            "previous": previous,
            "identity": identity,
            "made_by": {"identity_version": IDENTITY_VERSION, "config": config},
        },
    )


def checkpoint_epoch(path: Path, manifest: dict[str, Any] | None) -> int | None:
    """The epoch ``path`` ends, by the entry of ``manifest`` its sha256 matches: the newest
    save's, or the one before it if the job died between manifest and rename; else None."""
    if manifest is None:
        return None
    sha = sha256_file(path)
    for entry in (manifest, manifest.get("previous") or {}):
        if entry.get("sha256") == sha and isinstance(entry.get("epoch"), int):
            return int(entry["epoch"])
    return None


def checkpoint_problem(path: Path, manifest: dict[str, Any] | None, members: int) -> str | None:
    """Why ``path`` cannot be resumed by a stack of ``members``, or None if it can."""
    if manifest is None:
        return "it has no readable last.json"
    if checkpoint_epoch(path, manifest) is None:
        return "it does not match the sha256 in its last.json"
    if manifest.get("format") != CHECKPOINT_FORMAT:
        return f"an older format ({manifest.get('format')}, now {CHECKPOINT_FORMAT})"
    if manifest.get("members") != members:
        return f"a stack of {manifest.get('members')}, this run is {members}"
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        return f"it fails to load ({type(e).__name__})"
    return None


def resume_point(
    folder: Path,
    members: int,
    identity: str,
    config: dict[str, Any] | None = None,
    on_mismatch: str = "stop",
) -> tuple[Path | None, int]:
    """``(last.ckpt, its epoch)`` if ``folder`` holds one this run may resume, else
    ``(None, -1)``: nothing there, or a checkpoint set aside (see the module docstring).

    ``identity`` is the identity of the run (of the stack's members, or the dense-cache key);
    ``config`` the run's settings, which name the differing keys when they do not match.
    """
    path = folder / LAST_CKPT
    if not path.is_file():
        return None, -1
    manifest = read_checkpoint_manifest(folder)
    problem = checkpoint_problem(path, manifest, members)
    if problem is not None:
        aside = set_aside(path, "unusable")
        log.warning("not resuming from %s: %s; set aside as %s, starting over",
                    path, problem, aside.name)  # fmt: skip
        return None, -1
    assert manifest is not None
    if manifest.get("identity") != identity:
        if on_mismatch != "rerun":
            raise MismatchError(foreign_checkpoint(folder, manifest, config or {}))
        supersede(folder, manifest.get("identity"))
        return None, -1
    epoch = checkpoint_epoch(path, manifest)
    assert epoch is not None  # checked by checkpoint_problem
    log.info("resuming from %s (epoch %d done)", path, epoch + 1)
    return path, epoch


def read_rows(metrics_csv: Path, up_to_epoch: int | None = None) -> Rows:
    """Per-epoch rows of a CSV log (those of epochs ≤ ``up_to_epoch``), for ``replay``."""
    try:
        rows = pd.read_csv(metrics_csv, on_bad_lines="skip")
    except (OSError, ValueError):  # absent, empty, or cut mid-write by a kill
        return []
    if up_to_epoch is not None:
        rows = rows[rows["epoch"] <= up_to_epoch]
    return [{k: float(v) for k, v in row.items() if pd.notna(v)} for row in rows.to_dict("records")]


def resumed(
    workdir: Path,
    logs: list[Path],
    identity: str,
    config: dict[str, Any] | None = None,
    on_mismatch: str = "stop",
) -> tuple[Path | None, int, list[Rows]]:
    """``resume_point`` for a stack of ``len(logs)`` members, with the rows each member's log
    keeps: ``(last.ckpt or None, its epoch, rows per log)``; no rows when starting over."""
    ckpt, epoch = resume_point(workdir, len(logs), identity, config, on_mismatch)
    return ckpt, epoch, [read_rows(path, epoch) if ckpt else [] for path in logs]


def replay(rows: Rows, logger: Logger) -> None:
    """Write rows read by ``read_rows`` into ``logger``: the dense phase's rows from the
    cache, or a resumed run's own earlier rows, so curves always start at epoch 0."""
    for row in rows:
        values = dict(row)
        step = int(values.pop("step"))
        if values:
            logger.log_metrics(values, step=step)


class LastCheckpoint(pl.Callback):
    """Every ``every_n_epochs`` epochs, atomically replace ``path`` with a full checkpoint, as
    long as saving stays within ``max_share`` of the training time (``checkpoint_due``).

    For long runs: a job killed at any moment resumes from its last completed checkpoint
    (``resume_point``). Written to a temp file and renamed, so ``path`` is never half a
    checkpoint; between the two, ``last.json`` records its sha256 (and the one it replaces,
    ``write_manifest``) and the ``identity`` of the run (and its ``config``). No checkpoint
    follows the last epoch: the run's results come next.
    """

    def __init__(
        self,
        path: Path,
        every_n_epochs: int,
        max_share: float,
        identity: str,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.identity = identity
        self.config = config
        self.every_n_epochs = every_n_epochs
        self.max_share = max_share
        self.saved_s = 0.0  # seconds spent saving so far
        self.last_save_s = 0.0  # the latest save's, the estimate of the next one
        self.last_epoch = -1  # the epoch the latest checkpoint ends
        self._started = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()
        self.last_epoch = trainer.current_epoch - 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if epoch + 1 >= (trainer.max_epochs or 0):
            return
        elapsed = time.perf_counter() - self._started
        due = checkpoint_due(
            epoch - self.last_epoch,
            self.every_n_epochs,
            elapsed,
            self.saved_s + self.last_save_s,
            self.max_share,
        )
        if not due:
            return
        start = time.perf_counter()
        # The epoch's log row first: a run resumed from this checkpoint replays it.
        pl_module.write_log(epoch=epoch)
        with atomic_path(self.path) as tmp:
            trainer.save_checkpoint(tmp, weights_only=False)
            write_manifest(self.path, tmp, epoch, len(pl_module.net), self.identity, self.config)
        self.last_save_s = time.perf_counter() - start
        self.saved_s += self.last_save_s
        self.last_epoch = epoch
        log.debug("saved %s in %.2f s (%.2f s in all)", self.path, self.last_save_s, self.saved_s)


def checkpoint_due(
    epochs_since: int, every_n_epochs: int, elapsed_s: float, cost_s: float, max_share: float
) -> bool:
    """Whether to save now: ``every_n_epochs`` epochs since the last save, and the saves so far
    plus this one (``cost_s``, estimated by the latest save) within ``max_share`` of the
    ``elapsed_s`` seconds trained since the start. The first save is always allowed (its cost
    is unknown); after it, saving costs at most about ``max_share`` of the run."""
    return epochs_since >= every_n_epochs and cost_s <= max_share * elapsed_s
