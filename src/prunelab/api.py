"""prunelab's methods on a module of your own: ``prune``, ``remove``, ``apply``,
``sparsity_report``, ``compact`` and ``export``, importable from ``prunelab``.

They work on any ``nn.Module`` whose prunable layers are ``nn.Linear`` and ``nn.Conv2d``: the
same contract as a model the command line trains (``prunelab.models``), read from the module
itself by one probing forward pass and a ``torch.fx`` trace (``layout``). The masks live on
the module (``masking``): ``state_dict()`` keeps the unpruned class's keys and loads into it.

Every criterion and allocation of the registries (``prunelab.criteria.CRITERIA``,
``prunelab.allocation.ALLOCATIONS``), a plug-in's import path, or a ``Criterion`` instance,
is reachable through ``prune``, and computed by the same code a stacked sweep runs
(``selection.stacked_masks`` on a stack of one): masks from the API and from
``python -m prunelab.train`` agree on the same weights.

A data-driven criterion (SNIP, GraSP, Taylor, activation…) scores on ``data``: one ``(x, y)``
batch or an iterable of them (a ``DataLoader``), ``y`` class labels; its loss is the
cross-entropy of the module's logits, as in every paper these criteria come from.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from prunelab.allocation import ALLOCATIONS, Allocation
from prunelab.compaction import compact_net
from prunelab.criteria import CRITERIA, Batch, Criterion
from prunelab.errors import PluginError, PrunelabError
from prunelab.masking import (
    current_masks,
    install,
    install_all,
    installed_masks,
    pruned_class,
    uninstall,
)
from prunelab.pruning import prunable_layers
from prunelab.pruning import sparsity_report as count_sparsity
from prunelab.registry import Registry
from prunelab.selection import Method, stacked_masks
from prunelab.sparse import TARGETS, ExportedNet, export_net, layer_seconds, model_seconds
from prunelab.stack import MaskedNet, StackedNet

# ``prunelab.PUBLIC_API["prunelab"]`` names these for the package, which must not import torch
# to say so; tests/test_public_api.py keeps the two lists equal
__all__ = [
    "LayerSparsity",
    "PruningError",
    "SparsityReport",
    "apply",
    "compact",
    "export",
    "prune",
    "remove",
    "sparsity_report",
]

STATE = "_prunelab_state"  # what ``prune`` remembers on the module (survives a deepcopy)
Data = tuple[Tensor, Tensor] | Iterable[Any]
LayerK = float | Sequence[float] | Mapping[str, float]


class PruningError(PrunelabError, ValueError):
    """What the API cannot do with these arguments, in one line that says how to fix it."""


@dataclass
class State:
    """What ``prune`` remembers: the shape of one input sample (to read the module's layers
    again) and the sparsity last asked for."""

    input_shape: tuple[int, ...]
    nominal: float | None = None


# ------------------------------------------------------------------ reading the module


def input_shape(
    module: nn.Module, example_inputs: Tensor | None, data: Data | None
) -> tuple[int, ...]:
    """One sample's shape: from ``example_inputs`` (a batch), ``data``'s first batch, what
    ``prune`` remembered, or (a module whose first layer is ``Linear``) its in-features."""
    if example_inputs is not None:
        if not isinstance(example_inputs, Tensor) or example_inputs.dim() < 2:
            raise PruningError("example_inputs must be one batch of inputs, a tensor (B, …)")
        return tuple(example_inputs.shape[1:])
    if data is not None:
        return tuple(first_batch(data)[0].shape[1:])
    state = module.__dict__.get(STATE)
    if state is not None:
        return state.input_shape
    layers = [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if layers and isinstance(layers[0], nn.Linear):
        return (layers[0].in_features,)
    raise PruningError(
        f"cannot tell what {type(module).__name__} takes as input: pass example_inputs= "
        "(one batch) or data="
    )


def first_batch(data: Data) -> Batch:
    """``data``'s first ``(x, y)``."""
    return next(iter(batches_of(data, 1)))


def batches_of(data: Data, n: int) -> list[Batch]:
    """Up to ``n`` ``(x, y)`` batches of ``data``: one ``(x, y)`` pair, or an iterable of
    batches whose first two items are inputs and labels (a ``DataLoader``)."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], Tensor):
        return [(data[0], data[1])]
    out = []
    for batch in data:
        if len(out) == n:
            break
        if not (isinstance(batch, (tuple, list)) and len(batch) >= 2):
            raise PruningError("data must yield (inputs, labels) batches, e.g. a DataLoader")
        out.append((batch[0], batch[1]))
    if not out:
        raise PruningError("data yielded no batch")
    return out


def plain_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every mask folded in and no mask installed: what the
    criteria run (a dense gradient must reach the pruned weights)."""
    return remove(copy.deepcopy(module))


def masked_net(module: nn.Module, shape: tuple[int, ...]) -> MaskedNet:
    """A plain copy of ``module`` as a ``stack.MaskedNet`` carrying its masks: the form
    the counting, compaction and export of any model take."""
    net = MaskedNet(plain_copy(module).eval(), shape)
    names = list(net.layout.names)
    with torch.no_grad():
        for dst, src in zip(net.masks(), current_masks(module, names), strict=True):
            dst.copy_(src)
    return net


# ------------------------------------------------------------------ prune


def resolve(name: str | object, registry: Registry[Any], kind: str) -> Any:
    """A criterion or allocation instance from a registry name, an import path, a class or
    an instance; an unknown name in one line listing the known ones."""
    if not isinstance(name, str):
        return name() if isinstance(name, type) else name
    try:
        return registry.get(name)()
    except PluginError:
        raise PruningError(
            f"unknown {kind} {name!r}; choose one of: {', '.join(registry.names())}, "
            "or name a plug-in as package.module:Name"
        ) from None


def check_k(k: float, what: str) -> float:
    if not isinstance(k, (int, float)) or not 0.0 <= float(k) < 1.0:
        raise PruningError(f"{what} must be in [0, 1), got {k!r}")
    return float(k)


def layer_targets(
    sparsity: LayerK, names: Sequence[str], prune_output: bool
) -> tuple[list[int], float | list[float]]:
    """Which layers are pruned (indices into ``names``, forward order) and at what k: one
    k for the hidden layers (and the output one with ``prune_output``), one per such layer
    (a sequence), or one per named layer (a mapping of weight or module names)."""
    default = [i for i, p in enumerate(prunable_layers(len(names), prune_output)) if p]
    if isinstance(sparsity, Mapping):
        by_name = {n: i for i, n in enumerate(names)}
        by_name.update({n.rpartition(".")[0]: i for i, n in enumerate(names)})
        chosen = {}
        for key, k in sparsity.items():
            if key not in by_name:
                raise PruningError(
                    f"{key!r} is not a prunable layer of this module; its layers: "
                    f"{', '.join(names)}"
                )
            chosen[by_name[key]] = check_k(k, f"the sparsity of {key}")
        pruned = sorted(chosen)
        return pruned, [chosen[i] for i in pruned]
    if isinstance(sparsity, (int, float)):
        return default, check_k(sparsity, "sparsity")
    ks = [check_k(k, "each layer's sparsity") for k in sparsity]
    if len(ks) != len(default):
        where = "hidden and output" if prune_output else "hidden"
        raise PruningError(
            f"one sparsity per pruned layer: {len(default)} {where} layers "
            f"({', '.join(names[i] for i in default)}), got {len(ks)}"
        )
    return default, ks


def check_method(m: Method, ks: float | list[float]) -> None:
    """A criterion and an allocation that fit together, and a per-layer k only where the
    allocation takes one (as ``config.checks`` says it for the command line)."""
    if m.criterion.unit and m.allocation.weights_only:
        raise PruningError(
            f"the allocation {type(m.allocation).__name__} spreads weights, but the criterion "
            f"{type(m.criterion).__name__} scores units; use allocation='uniform' or 'global'"
        )
    if isinstance(ks, list) and len(set(ks)) > 1 and not m.allocation.per_layer:
        raise PruningError(
            f"one sparsity per layer needs allocation='uniform'; "
            f"{type(m.allocation).__name__} sets each layer's sparsity itself"
        )


def prune(
    module: nn.Module,
    sparsity: LayerK,
    criterion: str | Criterion | type[Criterion] = "magnitude",
    allocation: str | Allocation | type[Allocation] = "uniform",
    data: Data | None = None,
    *,
    example_inputs: Tensor | None = None,
    prune_output: bool = False,
    shuffle: bool = False,
    batches: int = 1,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Prune ``module`` in place and return the keep-masks it now carries, by weight name
    (``"conv1.weight"``; ``True`` = kept).

    :param sparsity: the fraction k in [0, 1) to remove: of each pruned layer
        (``allocation="uniform"``), or spread over them by the allocation; a sequence gives
        each pruned layer its own k, a mapping ``{"conv1": 0.5, "fc3.weight": 0.9}`` prunes
        only the layers it names. The output layer (the last one the forward calls) is
        pruned only with ``prune_output=True``, as the challenge never prunes W5.
    :param criterion: a name of ``CRITERIA`` (``magnitude``, ``unit_l2``, ``snip``,
        ``grasp``, ``synflow``, ``lamp``…), a plug-in's ``package.module:Name``, or a
        ``Criterion``; a unit criterion removes whole rows (output channels).
    :param allocation: ``uniform``, ``global``, ``erk``, ``lamp`` or a plug-in.
    :param data: ``(x, y)`` or an iterable of batches (a ``DataLoader``); ``batches`` of them
        are scored by a data-driven criterion.
    :param example_inputs: one batch of inputs, where neither ``data`` nor the first layer
        (a ``Linear``: its in-features) says what the module takes.
    :param shuffle: keep each layer's count but draw the places at random (Frankle et al.
        2021's layerwise-shuffle control).
    :param seed: the seed of the random criteria's draws (``random``, ``shuffle``).

    Masks compose: a weight already pruned stays pruned (gradual pruning is repeated calls
    at rising k). Raises ``PruningError`` (a ``ValueError``) in one line for what it cannot
    do: a k outside [0, 1), an unknown name, a unit criterion on a layer whose output feeds
    a sum, a data-driven criterion without ``data``.
    """
    m = Method(
        resolve(criterion, CRITERIA, "criterion"), resolve(allocation, ALLOCATIONS, "allocation"),
        shuffle,
    )  # fmt: skip
    if m.needs_data and data is None:
        raise PruningError(
            f"the criterion {type(m.criterion).__name__} scores on data: pass data=(x, y) or "
            "a DataLoader"
        )
    shape = input_shape(module, example_inputs, data)
    net = masked_net(module, shape)
    names = list(net.layout.names)
    pruned, ks = layer_targets(sparsity, names, prune_output)
    check_method(m, ks)
    layers = [module.get_submodule(names[i].rpartition(".")[0]) for i in pruned]
    for layer in layers:
        try:
            pruned_class(type(layer))
        except TypeError as e:
            raise PruningError(str(e)) from None
    device = net.weights()[0].device
    # scored outside any inference mode of the caller's (a batch made there cannot be
    # differentiated through): copies of the data, a stack of the plain copy
    with torch.inference_mode(False):
        scored = [] if data is None or not m.needs_data else [
            (x.to(device).flatten(1).clone(), y.to(device).clone())
            for x, y in batches_of(data, batches)
        ]  # fmt: skip
        stack = StackedNet([net])
        try:
            masks = stacked_masks(
                m, [layer.weight for layer in stack.layers], [ks], [seed],
                [layer.mask for layer in stack.layers], pruned, scored, stack.network(),
            )  # fmt: skip
        except ValueError as e:
            raise PruningError(str(e)) from None
    for layer, mask in zip(layers, masks, strict=True):
        install(layer, mask[0])
    nominal = ks if isinstance(ks, float) else None
    module.__dict__[STATE] = State(shape, nominal)
    return installed_masks(module)


def remove(module: nn.Module) -> nn.Module:
    """Make ``module``'s pruning permanent: every mask multiplied into its weight (and a
    removed unit's bias), the masks and their layer classes gone; ``module`` is then a
    plain module of its own classes with zeros where it was pruned. As
    ``torch.nn.utils.prune.remove``."""
    for m in module.modules():
        uninstall(m)
    module.__dict__.pop(STATE, None)
    return module


def apply(module: nn.Module, masks: Mapping[str, Tensor]) -> nn.Module:
    """Install ``masks`` (weight name → keep-mask, as ``prune`` returns them) on ``module``:
    a pruned model restored from its ``state_dict`` and saved masks, or one model's masks
    given to another of the same architecture (a lottery ticket's)."""
    try:
        install_all(module, masks)
    except (KeyError, TypeError, ValueError) as e:
        raise PruningError(str(e).strip("'\"")) from None
    return module


# ------------------------------------------------------------------ counting


@dataclass(frozen=True)
class LayerSparsity:
    """One prunable layer of a ``SparsityReport``: its weight's name and shape, the share of
    its weights masked, and its units (rows, output channels) that no longer reach the
    output (``pruning.stacked_alive_units``)."""

    name: str
    shape: tuple[int, ...]
    sparsity: float
    dead_units: int
    pruned: bool


@dataclass(frozen=True)
class SparsityReport:
    """Every sparsity figure of a module, as the command line's CSV log records them.

    ``nominal`` is the k last given to ``prune`` (None if it gave one per layer, or none);
    ``global_sparsity`` the masked share of the pruned layers' weights; ``effective``
    counts a weight whose unit is dead as removed too (Frankle et al. 2021's effective
    sparsity); FLOPs per sample, 2 per multiply-add: dense, after ``compact``, and counting
    only the effective weights."""

    nominal: float | None
    global_sparsity: float
    effective_sparsity: float
    layers: tuple[LayerSparsity, ...]
    params_total: int
    params_nonzero: int
    params_effective: int
    flops_dense: float
    flops_compact: float
    flops_sparse: float
    figures: dict[str, float] = field(repr=False, default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """Flat figures for a logger: ``sparsity/global``, ``sparsity/<layer>``,
        ``dead_units/<layer>``, ``params/*``, ``flops/*``."""
        out = {
            "sparsity/global": self.global_sparsity,
            "sparsity/effective": self.effective_sparsity,
        }
        for layer in self.layers:
            key = layer.name.removesuffix(".weight")
            out[f"sparsity/{key}"] = layer.sparsity
            out[f"dead_units/{key}"] = float(layer.dead_units)
        out.update({k: v for k, v in self.figures.items() if k.startswith(("params/", "flops/"))})
        if self.nominal is not None:
            out["sparsity/nominal"] = self.nominal
        return out

    def __str__(self) -> str:
        width = max(len(layer.name) for layer in self.layers)
        rows = [f"{'layer':<{width}}  {'shape':<18} sparsity  dead units"]
        for layer in self.layers:
            shape = "×".join(str(n) for n in layer.shape)
            mark = "" if layer.pruned else "  (not pruned)"
            rows.append(f"{layer.name:<{width}}  {shape:<18} {layer.sparsity:8.4f}  "
                        f"{layer.dead_units:10d}{mark}")  # fmt: skip
        rows.append(
            f"global {self.global_sparsity:.4f}, effective {self.effective_sparsity:.4f}; "
            f"{self.params_nonzero} of {self.params_total} weights kept; FLOPs per sample "
            f"{self.flops_sparse:.3g} sparse, {self.flops_compact:.3g} compact, "
            f"{self.flops_dense:.3g} dense"
        )
        return "\n".join(rows)


def sparsity_report(module: nn.Module, example_inputs: Tensor | None = None) -> SparsityReport:
    """How sparse ``module`` is, nominally, per layer, effectively and in FLOPs (see
    ``SparsityReport``). The layers counted as pruned are those that carry a mask (where
    none does, the hidden ones)."""
    shape = input_shape(module, example_inputs, None)
    net = masked_net(module, shape)
    graph, masks = net.layout, net.masks()
    carrying = set(installed_masks(module))
    pruned = [n in carrying for n in graph.names]
    if not any(pruned):
        pruned = prunable_layers(len(graph), False)
    state = module.__dict__.get(STATE)
    nominal = None if state is None else state.nominal
    fig = count_sparsity(masks, pruned, nominal or 0.0, graph)
    layers = tuple(
        LayerSparsity(name, tuple(mask.shape), fig[f"sparsity/layer{i + 1}"],
                      int(fig[f"dead_units/layer{i + 1}"]), p)
        for i, (name, mask, p) in enumerate(zip(graph.names, masks, pruned, strict=True))
    )  # fmt: skip
    return SparsityReport(
        nominal=nominal,
        global_sparsity=fig["sparsity/global"],
        effective_sparsity=fig["sparsity/effective"],
        layers=layers,
        params_total=int(fig["params/total"]),
        params_nonzero=int(fig["params/nonzero"]),
        params_effective=int(fig["params/effective"]),
        flops_dense=fig["flops/dense"],
        flops_compact=fig["flops/compact"],
        flops_sparse=fig["flops/sparse"],
        figures=fig,
    )


# ------------------------------------------------------------------ smaller, faster


def compact(module: nn.Module, example_inputs: Tensor | None = None) -> nn.Module:
    """A physically smaller copy of ``module`` with the same outputs: every dead unit (a
    row, an output channel that no longer reaches the output) removed with the input
    columns (channels) that read it (``compaction.compact_net``); the weights it still
    prunes stay masked. ``module`` is left as it is. Units whose output feeds a sum or a
    normalisation stay (their removal would change the layer they join)."""
    shape = input_shape(module, example_inputs, None)
    small = compact_net(masked_net(module, shape))
    model = small.model.train(module.training)
    for name, mask in zip(small.layout.names, small.masks(), strict=True):
        if not bool(mask.all()):
            install(model.get_submodule(name.rpartition(".")[0]), mask)
    state = module.__dict__.get(STATE)
    model.__dict__[STATE] = State(shape, None if state is None else state.nominal)
    return model


def export(
    module: nn.Module,
    target: str = "auto",
    example_inputs: Tensor | None = None,
    batch_size: int = 64,
) -> ExportedNet:
    """``module`` for inference: ``compact``, then each pruned ``Linear`` as an int32 CSR
    matrix (``"csr"``), or only where measured faster on this machine at ``batch_size``
    (``"auto"``; ``"dense"`` and ``"compact"`` for comparison). Conv layers stay dense:
    PyTorch has no sparse convolution (``sparse.ExportedNet``). Same outputs as ``module``
    in eval mode, to float rounding."""
    if target not in TARGETS:
        raise PruningError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    shape = input_shape(module, example_inputs, None)
    return export_net(masked_net(module, shape), target, batch_size, layer_seconds, model_seconds)
