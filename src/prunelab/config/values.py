"""The checks of one value at a time: a key the schema has, a value of its type, in its
range and among its choices (or its registry's names), and the one line that refuses one
that is not. ``checks`` ties values together; both answer before any work starts."""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from prunelab.allocation import ALLOCATIONS
from prunelab.config.schema import schema_fields, setting_keys, type_hints
from prunelab.criteria import CRITERIA
from prunelab.data import DATASETS
from prunelab.errors import ConfigError
from prunelab.model_names import MODELS
from prunelab.registry import Registry
from prunelab.schedules import SCHEDULES

# Names checked against the registries that define them (or imported, for a plug-in named
# package.module:Name) rather than a fixed tuple.
REGISTRIES: dict[str, Registry[Any]] = {
    "strategy.criterion": CRITERIA,
    "strategy.allocation": ALLOCATIONS,
    "schedule.name": SCHEDULES,
    "data.name": DATASETS,
    "model.name": MODELS,
}


def unknown_key(key: str, owner: str) -> ConfigError:
    """The one line that refuses a key ``owner`` (a schema class, or prunelab) lacks, with
    what it may have meant: the schedules that have it (a lottery key on a one-shot run),
    else the nearest settings anywhere in the schema (``epochs`` → ``schedule.epochs``)."""
    keys = setting_keys()
    if owners := keys.get(key):
        hint = (f"only {' and '.join(f'schedule={o}' for o in owners)} have it "
                f"(e.g. schedule={owners[0]} {key}=…)")  # fmt: skip
    elif near := nearest_keys(key, keys):
        hint = f"did you mean {' or '.join(near)}?"
    else:
        hint = "see `python -m prunelab.train --help` for the settings there are"
    return ConfigError(f"unknown key {key!r}: {owner} has no such setting; {hint}")


def nearest_keys(key: str, keys: Iterable[str]) -> list[str]:
    """The settings ``key`` most likely meant: those with its last name (``lr`` →
    ``optim.lr``), else those spelt most like it (``optim.lrate`` → ``optim.lr``)."""
    leaf = key.rsplit(".", 1)[-1]
    same = [k for k in keys if k != key and k.rsplit(".", 1)[-1] == leaf]
    return same[:3] or difflib.get_close_matches(key, list(keys), n=2, cutoff=0.75)


def one_line(error: Exception) -> str:
    """An OmegaConf error's first line (the rest is its full_key/object_type report)."""
    return str(error).strip().splitlines()[0]


def unknown_keys(cfg: DictConfig, prefix: str = "") -> Iterator[tuple[str, type]]:
    """Keys of typed nodes that their dataclass lacks: added with ``+key=…``, which Hydra
    allows even on a schema."""
    cls = OmegaConf.get_type(cfg)
    if not dataclasses.is_dataclass(cls):
        return
    fields = schema_fields(cls)
    for key in cfg:
        full = f"{prefix}{key}"
        if key not in fields:
            yield full, cls
            continue
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_missing():
            yield from unknown_keys(node, f"{full}.")


def walk(cfg: DictConfig, prefix: str = "") -> Iterator[tuple[str, Any, Any, dataclasses.Field]]:
    """``(dotted key, value, type hint, field)`` of every leaf setting of a typed config."""
    cls = OmegaConf.get_type(cfg)
    hints = type_hints(cls)
    for name, f in schema_fields(cls).items():
        key = f"{prefix}{name}"
        node = cfg._get_node(name)
        if isinstance(node, DictConfig) and typing.get_origin(hints[name]) is dict:
            yield key, OmegaConf.to_container(node, resolve=True), hints[name], f
            continue
        if isinstance(node, DictConfig):
            yield from walk(node, f"{key}.")
            continue
        if node is None or node._is_missing():
            raise ConfigError(f"{key} is not set (e.g. {example(key, f)})")
        try:
            value = cfg[name]
            if isinstance(value, ListConfig):
                value = OmegaConf.to_container(value, resolve=True)
        except OmegaConfBaseException as e:
            raise ConfigError(f"{key}: {one_line(e)}") from None
        yield key, value, hints[name], f


def unwrap_optional(hint: Any) -> tuple[bool, Any]:
    """``(True, X)`` for ``Optional[X]``, ``(False, hint)`` otherwise."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if (origin is typing.Union or origin is types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return True, rest[0]
    return False, hint


def example(key: str, f: dataclasses.Field) -> str:
    """The ``key=value`` an error message suggests for field ``f``."""
    meta = f.metadata
    if meta.get("example"):
        return meta["example"]
    default = f.default
    if isinstance(default, bool):
        return f"{key}={str(not default).lower()}"
    if meta.get("choices"):
        return f"{key}={meta['choices'][0]}"
    if default is not dataclasses.MISSING and default is not None and default != "???":
        return f"{key}={default}"
    return f"{key}=…"


def range_text(meta: typing.Mapping[str, Any]) -> str:
    """``positive``, ``≥ 0``, ``in [0, 1)``: how a field's range reads in an error."""
    low, high = meta.get("low"), meta.get("high")
    if low is not None and high is None:
        if low == 0 and meta.get("low_open"):
            return "positive"
        return f"{'>' if meta.get('low_open') else '≥'} {low:g}"
    if low is None and high is not None:
        return f"{'<' if meta.get('high_open') else '≤'} {high:g}"
    if low is None:
        return ""
    left = "(" if meta.get("low_open") else "["
    right = ")" if meta.get("high_open") else "]"
    return f"in {left}{low:g}, {high:g}{right}"


def in_range(value: float, meta: typing.Mapping[str, Any]) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return False
    low, high = meta.get("low"), meta.get("high")
    if low is not None and (value < low or (meta.get("low_open") and value == low)):
        return False
    return not (high is not None and (value > high or (meta.get("high_open") and value == high)))


def check_value(key: str, value: Any, hint: Any, f: dataclasses.Field) -> None:
    """Refuse ``value`` for schema field ``f`` (type ``hint``) at ``key`` unless it has the
    field's exact type (an int is no bool, a bool no int, 1.5 no whole number), lies in its
    range and is one of its choices (or of its registry's names); for a list, every item."""
    optional, kind = unwrap_optional(hint)
    if value is None:
        if optional:
            return
        raise ConfigError(f"{key} may not be null (e.g. {example(key, f)})")
    if typing.get_origin(kind) is dict:  # keyword arguments: any values, named by text
        return
    if kind is Any:  # a number, or one per channel (``schema.DataConfig.mean``)
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items or not all(scalar_ok(key, v, float, f.metadata) for v in items):
            raise ConfigError(refusal(key, value, float, f, is_list=isinstance(value, list)))
        return
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        if not isinstance(value, (list, tuple)) or not all(
            scalar_ok(key, v, item, f.metadata) for v in value
        ):
            raise ConfigError(refusal(key, value, item, f, is_list=True))
    elif not scalar_ok(key, value, kind, f.metadata):
        raise ConfigError(refusal(key, value, kind, f))


def choices_of(key: str, meta: typing.Mapping[str, Any]) -> Any:
    return REGISTRIES[key].names() if key in REGISTRIES else meta.get("choices")


def scalar_ok(key: str, value: Any, kind: Any, meta: typing.Mapping[str, Any]) -> bool:
    """Whether one scalar has type ``kind``, lies in ``meta``'s range and choices. A bool
    given to a text setting counts as its name (``progress_bar=true``)."""
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return not isinstance(value, bool) and isinstance(value, int) and in_range(value, meta)
    if kind is float:
        ok_type = not isinstance(value, bool) and isinstance(value, (int, float))
        return ok_type and in_range(float(value), meta)
    if kind is str:
        # true/false typed for a text setting arrive as bools, or as OmegaConf's "True"
        text = (
            str(value).lower() if isinstance(value, bool) or value in ("True", "False") else value
        )
        if key in REGISTRIES:  # a registered name, or a plug-in's import path
            return isinstance(text, str) and text in REGISTRIES[key]
        choices = choices_of(key, meta)
        return isinstance(text, str) and (not choices or text in choices)
    raise TypeError(f"the schema's {key} has a type checks.py does not know: {kind}")


def refusal(key: str, value: Any, kind: Any, f: dataclasses.Field, is_list: bool = False) -> str:
    """The one line that refuses ``value`` for ``key``: what was expected, what came, and an
    example that works."""
    meta = f.metadata
    eg = example(key, f)
    if kind is str:
        label = meta.get("label") or key
        known = ", ".join(map(str, choices_of(key, meta) or ()))
        return f"unknown {label} {value!r}; choose one of: {known} (e.g. {eg})"
    if kind is bool:
        return f"{key} must be true or false, got {value!r} (e.g. {eg})"
    where = f" {range_text(meta)}".rstrip()
    if is_list:
        noun = "whole numbers" if kind is int else "numbers"
        return f"{key} must be a list of {noun}{where}, got {value!r} (e.g. {eg})"
    if kind is int:
        return f"{key} must be a whole number{where}, got {value!r} (e.g. {eg})"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{key} must be{where}, got {value} (e.g. {eg})"
    return f"{key} must be a number{where}, got {value!r} (e.g. {eg})"
