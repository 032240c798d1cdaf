"""Picking a run up where it stopped: its last checkpoint, and the log rows it already wrote.

A long job keeps ``last.ckpt`` (``callbacks.LastCheckpoint``, atomically replaced every N
epochs) in its work dir: the job dir of a single run, the stack's dir of a stacked one, the
build dir of a dense-cache entry. Re-running the same command finds it here and continues
from it; the rows the killed run had logged up to that epoch are read back and replayed into
the new logger, so the curves stay whole.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch
from pytorch_lightning.loggers import Logger

from prunelab.module import CHECKPOINT_FORMAT

LAST_CKPT = "last.ckpt"
log = logging.getLogger("prunelab")

Rows = list[dict[str, float]]


def resume_point(folder: Path, members: int) -> tuple[Path | None, int]:
    """``(last.ckpt, its epoch)`` if ``folder`` holds one a stack of ``members`` can resume
    from, else ``(None, -1)``.

    An unreadable checkpoint (a foreign file; ours are written atomically), one written by
    an older prunelab, or one of another stack size is removed, and training starts over
    rather than failing on it.
    """
    path = folder / LAST_CKPT
    if not path.is_file():
        return None, -1
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        epoch = int(ckpt["epoch"])
        stamp = ckpt.get("prunelab", {})
    except Exception as e:
        log.warning("ignoring unreadable %s (%s); starting over", path, e)
        path.unlink()
        return None, -1
    expected = {"format": CHECKPOINT_FORMAT, "members": members}
    if stamp != expected:
        log.warning("ignoring %s (%s, this run needs %s); starting over", path, stamp, expected)
        path.unlink()
        return None, -1
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


def resumed(workdir: Path, logs: list[Path]) -> tuple[Path | None, int, list[Rows]]:
    """``resume_point`` for a stack of ``len(logs)`` members, with the rows each member's log
    keeps: ``(last.ckpt or None, its epoch, rows per log)``; no rows when starting over."""
    ckpt, epoch = resume_point(workdir, len(logs))
    return ckpt, epoch, [read_rows(path, epoch) if ckpt else [] for path in logs]


def replay(rows: Rows, logger: Logger) -> None:
    """Write rows read by ``read_rows`` into ``logger``: the dense phase's rows from the
    cache, or a resumed run's own earlier rows, so curves always start at epoch 0."""
    for row in rows:
        values = dict(row)
        step = int(values.pop("step"))
        if values:
            logger.log_metrics(values, step=step)
