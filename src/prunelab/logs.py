"""One logger per member: a stack's logged keys, routed to each member's own log.

The module and the pruning callbacks log ``m<i>/<key>``; ``MemberLoggers`` hands ``<key>`` to
member i's logger (its job's ``metrics.csv``), and keys without a member prefix (``epoch``)
to all of them. Each job's log then reads like that of a run of one, whatever the stack size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pytorch_lightning.loggers import Logger

MEMBER_KEY = re.compile(r"^m(\d+)/(.*)$")


class MemberLoggers(Logger):
    """Routes ``m<i>/<key>`` to ``loggers[i]`` as ``<key>``; unprefixed keys go to all."""

    def __init__(self, loggers: Sequence[Logger]) -> None:
        super().__init__()
        self.members = list(loggers)

    @property
    def name(self) -> str:
        return "members"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass  # each job's .hydra/config.yaml already holds its full config

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
            self.members[i].log_metrics({**shared, **values}, step)

    def save(self) -> None:
        for logger in self.members:
            logger.save()

    def finalize(self, status: str) -> None:
        for logger in self.members:
            logger.finalize(status)


class CsvAndTensorBoard(Logger):
    """``logger=tensorboard``: TensorBoard event files *and* the ``metrics.csv`` the report,
    the dense cache and resume read, in ``save_dir``. Needs ``pip install prunelab[tb]``."""

    def __init__(self, save_dir: str) -> None:
        super().__init__()
        from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

        self.loggers = [
            CSVLogger(save_dir, name="", version="", flush_logs_every_n_steps=1),
            TensorBoardLogger(save_dir, name="tensorboard", version="", default_hp_metric=False),
        ]

    @property
    def name(self) -> str:
        return "csv+tensorboard"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass  # each job's .hydra/config.yaml already holds its full config

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step)

    def save(self) -> None:
        for logger in self.loggers:
            logger.save()

    def finalize(self, status: str) -> None:
        for logger in self.loggers:
            logger.finalize(status)
