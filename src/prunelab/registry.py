"""Named plug-ins: one registry per kind of method (criterion, allocation, schedule, dataset).

Every extension point of prunelab has the same shape (docs/design.md, "Extension points"): a
small class or object registered under a name, chosen in the config by that name. A plug-in
that lives outside ``src/`` needs no edit here either: the config may name it by import path,
``package.module:Name``, which is imported and used as if it had been registered, so a
research repository can add a criterion, a schedule or a dataset and select it from the
command line (``strategy.criterion=mylab.scores:Fisher``). Installed packages can also
register names through the ``prunelab.plugins`` entry-point group, loaded on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from prunelab.errors import PluginError

T = TypeVar("T")
ENTRY_POINT_GROUP = "prunelab.plugins"
_entry_points_loaded = False


def is_import_path(name: str) -> bool:
    """``package.module:Name``: a plug-in named by where it lives rather than registered."""
    return ":" in name


def load_entry_points() -> None:
    """Import every module that the ``prunelab.plugins`` entry points name (once): importing
    one registers its methods."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def import_object(path: str, kind: str) -> object:
    """The object at ``package.module:Name``, or a one-line ``PluginError`` saying why not."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise PluginError(
            f"cannot import the {kind} {path!r}: {e} (is its package on PYTHONPATH?)"
        ) from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise PluginError(f"the {kind} {path!r}: {module_name} has no {attr!r}") from None
    return obj


class Registry(Generic[T]):
    """Name → plug-in for one kind of method; ``label`` names the config key in errors."""

    def __init__(self, kind: str, label: str, check: Callable[[object], bool]) -> None:
        self.kind = kind
        self.label = label
        self.check = check  # is an imported object a plug-in of this kind?
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = {}

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name`` (a second registration of a name replaces it, so
        re-importing a plug-in module is harmless)."""
        self._items[name] = item
        return item

    def add_lazy(self, name: str, path: str) -> None:
        """Register the plug-in at import path ``path`` under ``name``, imported on first
        ``get``: a name the command line checks without importing what it names (torch)."""
        self._lazy[name] = path

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: ``@CRITERIA.register("snip")``."""
        return lambda item: self.add(name, item)

    def names(self) -> list[str]:
        load_entry_points()
        return sorted(self._items.keys() | self._lazy.keys())

    def items(self) -> list[tuple[str, T]]:
        """Every registered (name, plug-in), by name."""
        return [(name, self.get(name)) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        """A registered name, or an import path to an object of this kind."""
        if not isinstance(name, str):
            return False
        if is_import_path(name):
            return self.check(import_object(name, self.kind))
        load_entry_points()
        return name in self._items or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """The plug-in called ``name``, or at import path ``name``; else a one-line error that
        lists the registered names."""
        if is_import_path(name):
            item = import_object(name, self.kind)
            if not self.check(item):
                raise PluginError(f"{name!r} is not a {self.kind} (see prunelab.{self.kind}s)")
            return item  # type: ignore[return-value]
        load_entry_points()
        if name not in self._items and name in self._lazy:
            self._items[name] = import_object(self._lazy[name], self.kind)  # type: ignore[assignment]
        if name not in self._items:
            known = ", ".join(self.names())
            raise PluginError(
                f"unknown {self.label} {name!r}; choose one of: {known}, "
                "or name a plug-in as package.module:Name"
            )
        return self._items[name]
