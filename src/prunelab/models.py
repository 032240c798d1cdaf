"""The models prunelab trains, by name: ``model=mlp`` (the challenge's, the default),
``model=lenet5``, ``model=conv6``, or a module of your own by import path
(``model.name=mylab.nets:TinyNet``).

**What a model must provide** (the one place this is written): a ``torch.nn.Module`` whose
forward maps a batch of images (B, C, H, W) of the dataset's image shape (or flat features,
if its first layer is a ``Linear``) to logits (B, classes). Nothing else is declared:

- its prunable weights are its ``nn.Linear`` and ``nn.Conv2d`` weights, in the order its
  forward calls them; the last one is the output layer (pruned only with
  ``strategy.prune_output=true``); every other parameter (biases) trains unpruned;
- a *unit* is a row of a linear weight or an output channel of a conv; which later layer a
  unit feeds, and how many of its input columns, is read by tracing the forward with
  ``torch.fx`` (``layout``): a unit that feeds a sum, a concatenation or a normalisation
  cannot be pruned alone, and unit pruning says so in one line (weight pruning works);
- a stack of members runs through ``torch.vmap`` (``stack.StackedNet``), so the forward must
  be vmap-able (plain tensor code is; in-place updates of module state are not);
- its constructor may take ``image_shape``, ``classes`` and ``bias`` (passed when it names
  them) and any ``model.args``. Its initial weights come from the run's ``init`` stream.

Adding a model is one file and one YAML (``conf/model/<name>.yaml`` with ``name:`` its import
path); ``tests/plugin_model.py`` is one, defined outside ``src/``.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from prunelab.graph import LayerGraph
from prunelab.layout import read_graph
from prunelab.model_names import MODELS
from prunelab.nets import MaskedMLP, StackedMLP, seeded, seeded_mlp
from prunelab.stack import MaskedNet, StackedNet


class LeNet5(nn.Module):
    """LeNet-5-Caffe (the Caffe tutorial's LeNet, used by Han et al. 2015, Lee et al. 2019
    (SNIP), Dettmers & Zettlemoyer 2019): conv 20@5×5 → max-pool 2 → conv 50@5×5 → max-pool
    2 → fc 500 → fc classes, ReLU after each conv and the hidden fc (as
    TimDettmers/sparse_learning's ``LeNet_5_Caffe``); 431 k weights on 28×28 inputs.
    Bias-free like the challenge MLP unless ``bias``."""

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        classes: int = 10,
        bias: bool = False,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        self.conv1 = nn.Conv2d(c, 20, 5, bias=bias)
        self.conv2 = nn.Conv2d(20, 50, 5, bias=bias)
        side = [((n - 4) // 2 - 4) // 2 for n in (h, w)]  # after two 5×5 convs and pools
        self.fc3 = nn.Linear(50 * side[0] * side[1], 500, bias=bias)
        self.fc4 = nn.Linear(500, classes, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc3(x.flatten(1)))
        return self.fc4(x)


class Conv6(nn.Module):
    """Conv-6 of Frankle & Carbin (2019, "The lottery ticket hypothesis", Figure 2): 3×3
    convs 64, 64, pool, 128, 128, pool, 256, 256, pool, then fc 256, 256, classes, ReLU
    throughout, for 32×32 inputs (CIFAR-10; 2.26 M weights). Bias-free unless ``bias``."""

    def __init__(
        self,
        image_shape: Sequence[int] = (3, 32, 32),
        classes: int = 10,
        bias: bool = False,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        widths = [c, 64, 64, 128, 128, 256, 256]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 3, padding=1, bias=bias) for a, b in itertools.pairwise(widths)
        )
        self.fc1 = nn.Linear(256 * (h // 8) * (w // 8), 256, bias=bias)
        self.fc2 = nn.Linear(256, 256, bias=bias)
        self.fc3 = nn.Linear(256, classes, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i % 2 == 1:
                x = F.max_pool2d(x, 2)
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def build(
    name: str,
    image_shape: Sequence[int],
    classes: int,
    bias: bool = False,
    args: Mapping[str, Any] | None = None,
) -> nn.Module:
    """The module ``name`` (a registered model or an import path) for this data, given the
    keyword arguments its constructor names: ``image_shape``, ``classes``, ``bias``, and
    ``args`` (``model.args``)."""
    factory: Callable[..., nn.Module] = MODELS.get(name)  # type: ignore[assignment]
    offered = {"image_shape": tuple(image_shape), "classes": classes, "bias": bias}
    params = inspect.signature(factory).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if takes_all or k in params}
    if bias and "bias" not in kwargs:
        raise ValueError(f"model {name!r} takes no `bias` argument; drop model.bias=true")
    return factory(**kwargs, **dict(args or {}))


def describe(
    name: str,
    image_shape: Sequence[int],
    classes: int,
    bias: bool = False,
    args: Mapping[str, Any] | None = None,
) -> tuple[LayerGraph, list[int]]:
    """The ``LayerGraph`` of model ``name`` for this data and the number of weights of each
    prunable layer, from the model built on the meta device (no memory, no init) and probed
    with one forward pass: what the config's checks ask before any data loads."""
    with torch.device("meta"):
        model = build(name, image_shape, classes, bias, args)
    graph = read_graph(model, image_shape)
    params = dict(model.named_parameters())
    logits = model(torch.zeros(1, *image_shape, device="meta"))
    if tuple(logits.shape) != (1, classes):
        raise ValueError(f"its output has shape {tuple(logits.shape)[1:]}, not ({classes},)")
    return graph, [params[n].numel() for n in graph.names]


def masked_member(
    name: str,
    image_shape: Sequence[int],
    classes: int,
    seed: int,
    bias: bool = False,
    args: Mapping[str, Any] | None = None,
    sizes: Sequence[int] = (),
    purpose: str = "init",
) -> MaskedMLP | MaskedNet:
    """One member of a stack, freshly initialised from its seed: the challenge MLP
    (``mlp``, of ``sizes``) or any other model, masked."""
    if name == "mlp":
        return seeded_mlp(sizes, seed, purpose)
    model = seeded(lambda: build(name, image_shape, classes, bias, args), seed, purpose)
    return MaskedNet(model, image_shape)


def stacked(
    members: Sequence[MaskedMLP | MaskedNet],
    factory: Callable[[int, str], MaskedMLP | MaskedNet] | None = None,
) -> StackedMLP | StackedNet:
    """The stack that trains ``members`` as one: the MLP's batched-matmul stack for the
    challenge MLP, the vmap stack for any other model (``factory(seed, purpose)`` builds a
    fresh member, for the lottery's re-initialised control)."""
    if all(isinstance(m, MaskedMLP) for m in members):
        return StackedMLP(members)  # type: ignore[arg-type]
    return StackedNet(members, factory)  # type: ignore[arg-type]
