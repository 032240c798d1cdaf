"""The models' registry (``model.name``), apart from the models themselves: the command
line checks a model's name, and ``--help`` lists the names, without importing torch. The
built-in models are registered by import path and imported when first built
(``prunelab.models``); a model of your own is named by its import path, or registered
through the ``prunelab.plugins`` entry points."""

from __future__ import annotations

import inspect

from prunelab.registry import Registry


def is_model(obj: object) -> bool:
    """A model plug-in: an ``nn.Module`` class (or a function that builds one)."""
    if inspect.isfunction(obj):
        return True
    from torch import nn  # a plug-in was imported already: torch with it

    return isinstance(obj, type) and issubclass(obj, nn.Module)


MODELS: Registry[object] = Registry("model", "model.name", is_model)
MODELS.add_lazy("mlp", "prunelab.nets:MaskedMLP")
MODELS.add_lazy("lenet5", "prunelab.models:LeNet5")
MODELS.add_lazy("conv6", "prunelab.models:Conv6")
