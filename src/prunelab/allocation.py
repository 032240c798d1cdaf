"""Allocation: how many of each layer's scores a member removes for its target sparsity.

Separate from scoring (``criteria``): a criterion says which weights matter most *within* a
layer, an allocation how the budget is spread *across* layers. ``counts`` returns, for every
pruned layer, each member's number of items (weights, or units for a unit criterion) to drop;
``pruning.select_masks`` then drops that many of the layer's lowest scores. Pure: scores,
shapes and ks in, counts out, for all members at once.

- ``uniform``: each pruned layer loses ``round(k·n)`` of its n items; the only rule that
  takes a per-layer profile (``strategy.layer_sparsity``).
- ``global``: one threshold over all pruned layers' scores (k is then the fraction of all
  their items together; layers end at unequal sparsity).
- ``erk``: Erdős–Rényi-Kernel (Evci et al. 2020): layer l keeps a density proportional to
  (n_in + n_out) / (n_in · n_out) (for a conv: (n_in + n_out + k_h + k_w) /
  (n_in · n_out · k_h · k_w)), scaled so the pruned layers together keep 1 − k; a layer
  whose density would pass 1 stays dense and the rest are solved again (as rigl's code does).
- ``lamp``: Lee et al. (2021): the per-layer counts that a global threshold on LAMP scores
  of the weights gives; within each layer the criterion's own scores choose.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from prunelab.criteria import ScoreContext, lamp_scores
from prunelab.lazy import lazy_import
from prunelab.pruning import Sparsity, layer_k, n_to_prune, smallest_masks
from prunelab.registry import Registry

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_import("torch", __name__, "torch")

Counts = list[list[int]]  # [pruned layer][member] → items to drop


class Allocation:
    """Spread each member's sparsity over the pruned layers."""

    per_layer: ClassVar[bool] = False  # takes one k per layer (strategy.layer_sparsity)
    weights_only: ClassVar[bool] = False  # defined on weights, not on units

    def counts(self, scores: Sequence[Tensor], ctx: ScoreContext, ks: Sequence[Sparsity]) -> Counts:
        """``scores`` (M, n_l) per pruned layer, flattened; member i at ``ks[i]``."""
        raise NotImplementedError


def is_allocation(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, Allocation)


ALLOCATIONS: Registry[type[Allocation]] = Registry(
    "allocation", "strategy.allocation", is_allocation
)


@ALLOCATIONS.register("uniform")
class Uniform(Allocation):
    per_layer = True

    def counts(self, scores: Sequence[Tensor], ctx: ScoreContext, ks: Sequence[Sparsity]) -> Counts:
        return [[n_to_prune(s.shape[1], layer_k(k, layer)) for k in ks]
                for layer, s in enumerate(scores)]  # fmt: skip


def global_counts(scores: Sequence[Tensor], ks: Sequence[Sparsity]) -> Counts:
    """Per-layer counts of one selection over all layers' scores together (ties at the
    threshold broken by position, layer by layer, as ``smallest_masks`` does)."""
    flat = torch.cat(list(scores), dim=1)
    keep = smallest_masks(flat, [n_to_prune(flat.shape[1], layer_k(k, 0)) for k in ks])
    sizes = [s.shape[1] for s in scores]
    dropped = torch.stack([(~part).sum(dim=1) for part in keep.split(sizes, dim=1)])
    return [[int(c) for c in row] for row in dropped.tolist()]


@ALLOCATIONS.register("global")
class Global(Allocation):
    def counts(self, scores: Sequence[Tensor], ctx: ScoreContext, ks: Sequence[Sparsity]) -> Counts:
        return global_counts(scores, ks)


def erk_densities(shapes: Sequence[tuple[int, ...]], k: float) -> list[float]:
    """ERK density of each layer, of weight shape (out, in) or (out, in, kh, kw), for an
    overall sparsity ``k`` of their weights: proportional to the sum of the shape over its
    product (Evci et al. 2020's Erdős–Rényi-Kernel; for a linear layer Erdős–Rényi's
    (n_in + n_out) / (n_in · n_out))."""
    sizes = [math.prod(s) for s in shapes]
    raw = [sum(s) / math.prod(s) for s in shapes]
    dense: set[int] = set()
    while True:
        free = [j for j in range(len(shapes)) if j not in dense]
        budget = (1.0 - k) * sum(sizes) - sum(sizes[j] for j in dense)
        divisor = sum(raw[j] * sizes[j] for j in free)
        eps = budget / divisor if divisor else 0.0
        over = [j for j in free if eps * raw[j] > 1.0]
        if not over:
            return [1.0 if j in dense else eps * raw[j] for j in range(len(shapes))]
        dense.add(max(over, key=lambda j: raw[j]))


@ALLOCATIONS.register("erk")
class ERK(Allocation):
    weights_only = True

    def counts(self, scores: Sequence[Tensor], ctx: ScoreContext, ks: Sequence[Sparsity]) -> Counts:
        shapes = [tuple(int(n) for n in w.shape[1:]) for w in ctx.pruned_weights()]
        per_member = []
        for k in ks:
            densities = erk_densities(shapes, layer_k(k, 0))
            # kept = d · out · in (· kh · kw), multiplied in that order
            kept = [
                functools.reduce(operator.mul, s, d) for s, d in zip(shapes, densities, strict=True)
            ]
            per_member.append([math.prod(s) - round(n) for s, n in zip(shapes, kept, strict=True)])
        return [list(layer) for layer in zip(*per_member, strict=True)]


@ALLOCATIONS.register("lamp")
class LAMP(Allocation):
    weights_only = True

    def counts(self, scores: Sequence[Tensor], ctx: ScoreContext, ks: Sequence[Sparsity]) -> Counts:
        weights = [w * m for w, m in zip(ctx.pruned_weights(), ctx.pruned_masks(), strict=True)]
        return global_counts([lamp_scores(w).reshape(len(w), -1) for w in weights], ks)
