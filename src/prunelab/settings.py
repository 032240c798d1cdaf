"""A setting of the schema: a dataclass field with its default, a one-line help, and the
constraints ``config.checks`` enforces. Below the config and the schedules both, so that a
schedule's settings are declared where its algorithm is (``schedules``) and the config
schema (``config.schema``) declares the rest the same way."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from omegaconf import MISSING


def setting(
    default: Any = MISSING,
    help: str = "",
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple[Any, ...] | None = None,
    example: str | None = None,
    label: str | None = None,
) -> Any:
    """A schema field: its default, a one-line ``help``, and the constraints ``checks``
    enforces: a range (``low``/``high``, open or closed ends; for a list, of each item),
    ``choices``, the ``example`` that error messages suggest, and the ``label`` they name it
    by (``strategy`` for ``strategy.name``)."""
    meta = {
        "help": help,
        "low": low,
        "high": high,
        "low_open": low_open,
        "high_open": high_open,
        "choices": choices,
        "example": example,
        "label": label,
    }
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)
