"""torch, imported when something first uses it, not when prunelab is imported.

The command line answers ``--help`` and refuses a bad config from modules (the config's
checks, the registries of criteria, allocations and datasets) whose functions use torch but
whose import needs none of it; importing torch costs a second of the CLI's start-up, and
Lightning four more. A module that uses torch only inside functions writes

    torch = lazy_import("torch", __name__, "torch")

instead of ``import torch``. The first attribute read on that stand-in imports the real
module and puts it in place of the stand-in in every module that asked for it, so from
then on the name is the module itself: no cost in a training step.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


class LazyModule:
    """Stands for the module ``name`` until the first attribute is read from it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._users: list[tuple[str, str]] = []  # (module, global name) to rebind

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):  # copy, pickle and introspection: never import for them
            raise AttributeError(attr)
        real = importlib.import_module(self._name)
        for module, name in self._users:
            if getattr(sys.modules.get(module), name, None) is self:
                setattr(sys.modules[module], name, real)
        return getattr(real, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


_modules: dict[str, LazyModule] = {}


def lazy_import(name: str, module: str, as_name: str) -> Any:
    """A stand-in for module ``name`` bound to ``as_name`` in ``module`` (the caller's
    ``__name__``); the real module once anything reads an attribute of it."""
    if name in sys.modules:  # already paid for: the module itself
        return sys.modules[name]
    stand_in = _modules.setdefault(name, LazyModule(name))
    stand_in._users.append((module, as_name))
    return stand_in
