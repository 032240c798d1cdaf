"""Loggers made of loggers: one per member of a stack, and CSV plus TensorBoard for one job.

The module and the pruning callbacks log ``m<i>/<key>``; ``MemberLoggers`` hands ``<key>`` to
member i's logger (its job's ``metrics.csv``), and keys without a member prefix (``epoch``)
to all of them. Each job's log then reads like that of a run of one, whatever the stack size.
``CsvAndTensorBoard`` (``logger=tensorboard``) is one job's logger writing both formats.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import CSVLogger, Logger

MEMBER_KEY = re.compile(r"^m(\d+)/(.*)$")


def csv_log(save_dir: str | Path) -> CSVLogger:
    """A job's ``metrics.csv`` directly in ``save_dir``, every row on disk as it is logged (a
    killed run that resumes keeps its curves). ``logger=csv``, the default, is this."""
    return CSVLogger(save_dir, name="", version="", flush_logs_every_n_steps=1)


class FanOut(Logger):
    """A logger made of ``loggers``: saving and finalizing go to all of them, hyperparameters
    to none (each job's ``.hydra/config.yaml`` already holds its full config). Subclasses say
    where metrics go."""

    def __init__(self, loggers: Sequence[Logger]) -> None:
        super().__init__()
        self.loggers = list(loggers)

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def save(self) -> None:
        for logger in self.loggers:
            logger.save()

    def finalize(self, status: str) -> None:
        for logger in self.loggers:
            logger.finalize(status)


class MemberLoggers(FanOut):
    """Routes ``m<i>/<key>`` to ``loggers[i]`` as ``<key>``; unprefixed keys go to all."""

    @property
    def name(self) -> str:
        return "members"

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        shared: dict[str, float] = {}
        own: dict[int, dict[str, float]] = {}
        for key, value in metrics.items():
            match = MEMBER_KEY.match(key)
            if match:
                own.setdefault(int(match[1]), {})[match[2]] = value
            else:
                shared[key] = value
        for i, values in own.items():
            self.loggers[i].log_metrics({**shared, **values}, step)


class CsvAndTensorBoard(FanOut):
    """``logger=tensorboard``: TensorBoard event files *and* the ``metrics.csv`` the report,
    the dense cache and resume read, in ``save_dir``. Needs ``pip install prunelab[tb]``."""

    def __init__(self, save_dir: str) -> None:
        from pytorch_lightning.loggers import TensorBoardLogger

        super().__init__(
            [
                csv_log(save_dir),
                TensorBoardLogger(
                    save_dir, name="tensorboard", version="", default_hp_metric=False
                ),
            ]
        )

    @property
    def name(self) -> str:
        return "csv+tensorboard"

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step)
