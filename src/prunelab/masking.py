"""Masks installed on a user's own ``nn.Module``: what ``prunelab.prune`` leaves behind.

A pruned ``Linear`` or ``Conv2d`` keeps its ``weight`` parameter under its own name and gets
a boolean ``weight_mask`` buffer that is *not* persistent, so ``state_dict()`` has exactly the
keys of the unpruned class and loads into it (``torch.nn.utils.prune`` renames ``weight`` to
``weight_orig`` and adds ``weight_mask``, which the unpruned class refuses). The layer's class
is swapped for a subclass (``PrunedLinear``, ``PrunedConv2d``: ``torch.nn.utils.parametrize``
swaps classes the same way) whose forward uses ``weight * weight_mask``, so:

- a pruned weight gets exactly 0 gradient and never affects the output, whatever an
  optimizer's momentum does to the stored value;
- ``state_dict()`` saves ``weight * weight_mask``: what is saved is the pruned model, which
  the unpruned class reproduces bit for bit;
- ``remove`` multiplies the mask in for good and restores the original class.

Only layers whose forward is ``nn.Linear``'s or ``nn.Conv2d``'s own are masked: a subclass
with a forward of its own is refused in one line (prunelab would silently bypass it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MASK = "weight_mask"


class Pruned:
    """Mixin of a masked layer: the forward's weight is ``weight * weight_mask``."""

    weight: Tensor
    bias: Tensor | None
    weight_mask: Tensor

    def masked_weight(self) -> Tensor:
        return self.weight * self.weight_mask

    def masked_bias(self) -> Tensor | None:
        """The bias with a removed unit's (no incoming weight kept) set to 0, so a pruned
        unit outputs exactly 0, as ``stack.MaskedNet`` has it."""
        if self.bias is None:
            return None
        return self.bias * self.weight_mask.flatten(1).any(dim=1)

    def _save_to_state_dict(
        self, destination: dict[str, Any], prefix: str, keep_vars: bool
    ) -> None:
        """The unpruned class's keys, the pruned values: what loads into the unpruned class
        computes what this layer computes."""
        super()._save_to_state_dict(destination, prefix, keep_vars)  # type: ignore[misc]
        for key, value in (("weight", self.masked_weight()), ("bias", self.masked_bias())):
            if value is not None:
                destination[prefix + key] = value if keep_vars else value.detach()


class PrunedLinear(Pruned, nn.Linear):
    """An ``nn.Linear`` with a ``weight_mask`` (``masking``)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.masked_weight(), self.masked_bias())


class PrunedConv2d(Pruned, nn.Conv2d):
    """An ``nn.Conv2d`` with a ``weight_mask`` (``masking``)."""

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.masked_weight(), self.masked_bias())


PRUNED = {nn.Linear: PrunedLinear, nn.Conv2d: PrunedConv2d}
_SUBCLASSES: dict[type, type] = {}


def pruned_class(cls: type[nn.Module]) -> type[nn.Module]:
    """The masked class of layer class ``cls``: ``PrunedLinear``/``PrunedConv2d`` for the
    torch classes, a subclass made once for a user's subclass of them that keeps their
    forward (``__module__`` kept: ``torch.fx`` still treats it as a leaf)."""
    if issubclass(cls, Pruned):
        return cls
    if cls in PRUNED:
        return PRUNED[cls]
    if cls not in _SUBCLASSES:
        for base, masked in PRUNED.items():
            if issubclass(cls, base):
                if cls.forward is not base.forward:
                    raise TypeError(
                        f"cannot prune a {cls.__name__}: it overrides {base.__name__}.forward, "
                        "which prunelab's mask would bypass; prune its inner Linear/Conv2d"
                    )
                new = type(f"Pruned{cls.__name__}", (Pruned, cls), {"forward": masked.forward})
                new.__module__ = cls.__module__
                _SUBCLASSES[cls] = new
                break
        else:
            raise TypeError(f"cannot prune a {cls.__name__}: only Linear and Conv2d layers")
    return _SUBCLASSES[cls]


def original_class(cls: type[nn.Module]) -> type[nn.Module]:
    """The class a masked layer had before it was masked."""
    return next(b for b in cls.__mro__[1:] if not issubclass(b, Pruned))


def is_pruned(layer: nn.Module) -> bool:
    return isinstance(layer, Pruned)


def pruned_layers(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(module name, layer) of every masked layer of ``module``."""
    return ((n, m) for n, m in module.named_modules() if is_pruned(m))


@torch.no_grad()
def install(layer: nn.Module, mask: Tensor) -> None:
    """Mask ``layer`` with ``mask`` (its weight's shape; True = kept), replacing any mask it
    has, and zero the stored pruned weights so the parameter itself reads as pruned."""
    weight = layer.weight
    if tuple(mask.shape) != tuple(weight.shape):
        raise ValueError(
            f"a mask of shape {tuple(mask.shape)} for a weight of {tuple(weight.shape)}"
        )
    keep = mask.to(device=weight.device, dtype=torch.bool)
    if not is_pruned(layer):
        layer.__class__ = pruned_class(type(layer))
    layer.register_buffer(MASK, keep.clone(), persistent=False)
    weight.mul_(keep)


@torch.no_grad()
def uninstall(layer: nn.Module) -> None:
    """Fold ``layer``'s mask into its weight (and bias) for good and give it back its own class."""
    if not is_pruned(layer):
        return
    if layer.bias is not None:
        layer.bias.copy_(layer.masked_bias())
    layer.weight.mul_(getattr(layer, MASK))
    del layer._buffers[MASK]
    layer.__class__ = original_class(type(layer))


def current_masks(module: nn.Module, names: list[str]) -> list[Tensor]:
    """The keep-mask of each weight ``names`` (``conv1.weight``) of ``module``: its installed
    mask, all True where it has none."""
    out = []
    for name in names:
        layer = module.get_submodule(name.rpartition(".")[0])
        mask = getattr(layer, MASK) if is_pruned(layer) else None
        out.append(torch.ones_like(layer.weight, dtype=torch.bool) if mask is None else mask)
    return out


def installed_masks(module: nn.Module) -> dict[str, Tensor]:
    """Every installed mask of ``module`` by its weight's name (``conv1.weight``)."""
    return {f"{n}.weight" if n else "weight": getattr(m, MASK) for n, m in pruned_layers(module)}


def install_all(module: nn.Module, masks: Mapping[str, Tensor]) -> None:
    """``install`` each of ``masks`` (weight name → mask) on its layer of ``module``; a name
    that is no prunable weight of it is refused before anything is installed."""
    layers = {}
    for name, mask in masks.items():
        owner, _, leaf = name.rpartition(".")
        try:
            layer = module.get_submodule(owner)
        except AttributeError:
            layer = None
        if leaf != "weight" or not isinstance(layer, (nn.Linear, nn.Conv2d)):
            raise KeyError(f"{name!r} is not the weight of a Linear or Conv2d of this module")
        pruned_class(type(layer))  # refuse what cannot be masked before masking anything
        layers[name] = (layer, mask)
    for layer, mask in layers.values():
        install(layer, mask)
