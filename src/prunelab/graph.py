"""How the prunable weights of a model connect: what unit pruning, effective sparsity,
FLOPs and compaction need to know, and nothing else.

A model's prunable weights are its ``Linear`` and ``Conv2d`` weights in forward order, the
last one its output layer (open_lth's ``prunable_layer_names`` / ``output_layer_names``). A
*unit* of a layer is a slice along its weight's axis 0: a row of a ``Linear`` weight, an
output channel (a filter) of a ``Conv2d``. A unit *feeds* the input axis (axis 1) of one
later weight, each unit ``repeat`` consecutive input columns there: 1 for a linear or conv
consumer, H·W where a conv's channels are flattened into a linear layer. A unit whose output
is combined with others (a residual sum, a concatenation, a normalisation) feeds no single
weight: it is ``blocked``, and unit pruning refuses it in one line naming why.

The challenge MLP is a ``chain``: layer i feeds layer i + 1, one column per unit. Pure data,
no torch: ``pruning`` counts with it and ``sparse`` compacts with it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerGraph:
    """The prunable weights of one model, in forward order (see the module's docstring).

    ``feeds[i]``: the index of the weight whose input axis layer i's units feed (None for
    the output layer, and for a blocked one); ``repeat[i]``: input columns per unit there;
    ``positions[i]``: output positions per unit and sample (H·W of a conv's output, 1 for a
    linear layer), what a weight's MACs are multiplied by; ``blocked[i]``: why layer i's
    units cannot be removed whole, or None; ``names[i]``: the weight's parameter name."""

    names: tuple[str, ...]
    feeds: tuple[int | None, ...]
    repeat: tuple[int, ...]
    positions: tuple[int, ...]
    blocked: tuple[str | None, ...]

    @classmethod
    def chain(cls, n_layers: int) -> LayerGraph:
        """The challenge MLP's graph: a plain chain of ``n_layers`` linear layers."""
        return cls(
            names=tuple(f"layers.{i}.weight" for i in range(n_layers)),
            feeds=tuple(i + 1 if i < n_layers - 1 else None for i in range(n_layers)),
            repeat=(1,) * n_layers,
            positions=(1,) * n_layers,
            blocked=(None,) * n_layers,
        )

    def __len__(self) -> int:
        return len(self.names)

    def producer(self, j: int) -> int | None:
        """The layer whose units feed layer ``j``'s input axis; None for the network input
        (or where a blocked unit's output arrives)."""
        for i, f in enumerate(self.feeds):
            if f == j:
                return i
        return None

    def unit_problem(self, layers: list[int]) -> str | None:
        """Why units of ``layers`` cannot be pruned (the first blocked one), or None."""
        for i in layers:
            if self.blocked[i] is not None:
                return f"cannot prune units of {self.names[i]}: {self.blocked[i]}"
        return None
