"""A job's identity: the settings that decide its numbers, and a hash of them.

A job folder's ``result.json`` and ``last.ckpt`` carry the identity of the config that made
them; a run reuses them only if its own identity is the same (``results.check_prior``,
``resume``). Everything in a job's resolved config counts, except the keys below, which
cannot change a number it reports. Where a key is left out because its two settings give
the same bits, a test says so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Keys (a group drops all of its keys) that do not enter a job's identity.
NOT_IN_IDENTITY = (
    "paths",  # where the files go
    "logger",  # how the curves are written, not what they hold
    "progress_bar",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "save_model",  # whether model.pt is written
    "data.download",  # where the data may come from: its content is checksummed
    "dense_cache",  # same bits with or without (tests/test_train.py)
    "checkpoint_every_n_epochs",  # a resumed run equals an unbroken one
    "checkpoint_max_share",  # (tests/test_reliability.py)
    "inference_batch_size",  # a timing, taken after the result's numbers are fixed
    "on_mismatch",  # what to do about a folder of another identity
)
# Settings added after results existed, at the value that gives the numbers of before: at
# that value they stay out of the identity, so a job folder written before they existed keeps
# its identity (and resumes, or counts as finished) for the same command line.
ADDED_LATER = {"model.name": "mlp", "model.bias": False, "data.augment": False}
# Raised when the same config starts giving other numbers, so that no folder made by older
# code is taken for this code's result. 2: independent random streams per (seed, purpose,
# epoch) (``streams.py``); under 1, seeds shared batch orders.
IDENTITY_VERSION = 2


def config_hash(obj: Any, length: int = 16) -> str:
    """Short stable hash of a JSON-able object (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def without(config: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``config`` flattened, minus ``keys`` and everything under them."""
    return {
        k: v
        for k, v in flatten(config).items()
        if not any(k == drop or k.startswith(f"{drop}.") for drop in keys)
    }


def identity_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The flat settings of a job's resolved config that decide its numbers (a setting of
    ``ADDED_LATER`` only where it differs from the value that reproduces older results)."""
    flat = without(config, NOT_IN_IDENTITY)
    return {k: v for k, v in flat.items() if k not in ADDED_LATER or ADDED_LATER[k] != v}


def identity(config: Mapping[str, Any]) -> str:
    """The identity of a job's resolved config (``dataclasses.asdict`` of its settings)."""
    return config_hash({"v": IDENTITY_VERSION, **identity_settings(config)})


def differences(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """``key: old → new`` for every setting of the identity that differs (``?`` where one
    side lacks it), sorted by key."""
    a, b = identity_settings(old or {}), identity_settings(new)
    out = []
    for key in sorted(a.keys() | b.keys()):
        if a.get(key, "?") != b.get(key, "?"):
            out.append(f"{key}: {show(a.get(key, '?'))} → {show(b.get(key, '?'))}")
    return out


def show(value: Any) -> str:
    """A setting as a user types it: ``true``, ``null``, ``[784,300,10]``."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(show(v) for v in value) + "]"
    return str(value)
