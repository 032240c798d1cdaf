"""Reading a model's ``LayerGraph`` from the model itself, so that a module a user wrote
needs no declaration to be pruned.

Two looks at the model (Torch-Pruning's DepGraph does the same, at larger scale):

- a **probe**: one forward pass of a zero sample with hooks on every ``Linear`` and
  ``Conv2d``, which gives the prunable weights in the order the forward uses them and each
  layer's output positions (what its FLOPs are multiplied by);
- a **trace** (``torch.fx``): from each prunable layer, the operations its output goes
  through. Where it reaches one later layer through operations that keep a zero unit zero
  and keep units apart (ReLU-like activations, pooling, dropout, flattening), its units feed
  that layer; where it meets anything else (a residual sum, a concatenation, a
  normalisation) they are ``blocked`` with the operation's name, and unit pruning refuses
  them in one line. A model fx cannot trace keeps weight pruning and gets that reason.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prunelab.graph import LayerGraph
from prunelab.lazy import lazy_import

if TYPE_CHECKING:
    from torch import nn

torch = lazy_import("torch", __name__, "torch")
F = lazy_import("torch.nn.functional", __name__, "F")

# operations a unit's output may pass through and still belong to that unit alone, zero
# staying zero (bias-free): by module type name, function name, and tensor method
PASS_MODULES = frozenset({
    "ReLU", "LeakyReLU", "ReLU6", "Tanh", "GELU", "SiLU", "Hardtanh", "MaxPool1d", "MaxPool2d",
    "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Dropout", "Dropout2d", "Identity",
    "Flatten",
})  # fmt: skip
PASS_FUNCTIONS = frozenset({
    "relu", "relu_", "leaky_relu", "relu6", "tanh", "gelu", "silu", "hardtanh", "max_pool2d",
    "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "dropout", "flatten",
    "boolean_dispatch",  # F.max_pool2d as fx records it
})  # fmt: skip
PASS_METHODS = frozenset({"relu", "relu_", "tanh", "view", "reshape", "flatten", "contiguous"})


def is_prunable(module: nn.Module) -> bool:
    """A layer whose weight prunelab prunes: ``Linear`` or ``Conv2d``."""
    return isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))


def probe(model: nn.Module, image_shape: Sequence[int]) -> tuple[list[str], list[int]]:
    """The prunable layers' module names in the order one forward pass calls them, and
    each one's output positions per unit (1 for a linear layer). A layer called twice
    (shared weights) is refused: one mask cannot serve two places in two ways."""
    order: list[str] = []
    positions: dict[str, int] = {}
    handles = []

    def hook(name: str) -> Any:
        def record(mod: nn.Module, args: Any, out: Any) -> None:
            if name in positions:
                raise ValueError(
                    f"layer {name} is called twice in one forward pass; prunelab prunes "
                    "each Linear/Conv2d once (give each use its own layer)"
                )
            order.append(name)
            positions[name] = out[0].numel() // out.shape[1] if out.dim() > 2 else 1

        return record

    for name, mod in model.named_modules():
        if is_prunable(mod):
            handles.append(mod.register_forward_hook(hook(name)))
    try:
        param = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, *image_shape, dtype=param.dtype, device=param.device))
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise ValueError(f"{type(model).__name__} has no Linear or Conv2d layer to prune")
    return order, [positions[n] for n in order]


def passes(node: Any, modules: dict[str, nn.Module]) -> bool:
    """Whether an fx node keeps each unit's values to itself, zero staying zero."""
    if node.op == "call_module":
        return type(modules[node.target]).__name__ in PASS_MODULES
    if node.op == "call_function":
        return getattr(node.target, "__name__", "") in PASS_FUNCTIONS
    if node.op == "call_method":
        return node.target in PASS_METHODS
    return False


def describe_node(node: Any, modules: dict[str, nn.Module]) -> str:
    """What an fx node is, for a refusal: ``add``, ``BatchNorm2d``, ``cat``."""
    if node.op == "call_module":
        return type(modules[node.target]).__name__
    if node.target is operator.add or getattr(node.target, "__name__", "") in ("add", "iadd"):
        return "a sum (add)"
    return str(getattr(node.target, "__name__", node.target))


def follow(start: Any, modules: dict[str, nn.Module]) -> tuple[str | None, str | None]:
    """Where the output of the fx node ``start`` (a prunable layer) goes: (the next prunable
    layer's name, None), (None, None) for the model's output, or (None, why not one layer)."""
    frontier, reached = list(start.users), set()
    while frontier:
        node = frontier.pop()
        if node.op == "output":
            reached.add("<output>")
        elif node.op == "call_module" and is_prunable(modules[node.target]):
            reached.add(node.target)
        elif passes(node, modules):
            frontier.extend(node.users)
        else:
            return None, f"its output feeds {describe_node(node, modules)}"
    if len(reached) != 1:
        return None, "its output reaches several layers"
    target = reached.pop()
    return (None, None) if target == "<output>" else (target, None)


def layer_tracer() -> torch.fx.Tracer:
    """fx's tracer, every prunable layer a leaf: a user's subclass of ``Linear`` (or a layer
    ``prunelab.prune`` masked) is then one ``call_module`` node like ``nn.Linear`` itself,
    where fx would otherwise trace into its forward."""

    class LayerTracer(torch.fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return is_prunable(m) or super().is_leaf_module(m, qualname)

    return LayerTracer()


def trace_feeds(model: nn.Module, names: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
    """``follow`` for every prunable layer ``names``; a model fx cannot trace gets the
    reason for every layer but the last."""
    try:
        traced = torch.fx.GraphModule(model, layer_tracer().trace(model))
    except Exception as e:  # fx raises many kinds on dynamic control flow
        why = f"torch.fx cannot trace {type(model).__name__} ({type(e).__name__})"
        return {n: (None, why if n != names[-1] else None) for n in names}
    modules = dict(traced.named_modules())
    nodes = {n.target: n for n in traced.graph.nodes if n.op == "call_module"}
    return {n: follow(nodes[n], modules) for n in names}


def read_graph(model: nn.Module, image_shape: Sequence[int]) -> LayerGraph:
    """The ``LayerGraph`` of ``model`` for inputs of one sample's ``image_shape``."""
    order, positions = probe(model, image_shape)
    modules = dict(model.named_modules())
    feeds_by_name = trace_feeds(model, order)
    index = {n: i for i, n in enumerate(order)}
    feeds: list[int | None] = []
    repeat: list[int] = []
    blocked: list[str | None] = []
    for name in order:
        target, why = feeds_by_name[name]
        r = 1
        if target is not None:
            r, why = unit_repeat(modules[name], modules[target], target)
        if why is not None or target is None:
            feeds.append(None)
            blocked.append(why)
        else:
            feeds.append(index[target])
            blocked.append(None)
        repeat.append(r)
    return LayerGraph(
        names=tuple(f"{n}.weight" for n in order),
        feeds=tuple(feeds),
        repeat=tuple(repeat),
        positions=tuple(positions),
        blocked=tuple(blocked),
    )


def unit_repeat(producer: nn.Module, consumer: nn.Module, name: str) -> tuple[int, str | None]:
    """Input columns of ``consumer`` per unit of ``producer``, or why they do not line up."""
    units = producer.weight.shape[0]
    cols = consumer.weight.shape[1]
    if cols % units or (isinstance(consumer, torch.nn.Conv2d) and cols != units):
        return 1, f"its {units} units do not map onto the {cols} inputs of {name}"
    return cols // units, None
