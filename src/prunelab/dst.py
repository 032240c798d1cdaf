"""Dynamic sparse training (SET, RigL): the drop-and-grow update of a fixed weight budget.

A sparse net trained from scratch keeps the same number of live weights in every layer from
its first step to its last; every ΔT steps it moves part of them. ``drop_and_grow`` is that
move for all members of a stack at once: in each layer, member i drops ``fraction`` of its
live weights with the lowest drop scores (|w|, as SET and RigL do) and grows as many among
the weights that are dead *after* the drop with the highest grow scores (random for SET, the
dense gradient's |g| for RigL). Weights dropped and grown again in the same update keep their
value, newly grown ones start at 0 (google-research/rigl's ``grow_init='zeros'`` and
``reinit_when_same=False``).

Which criteria score the drop and the growth, and when updates happen, belong to the
schedule (``schedules.sparse_training``); the callback calls ``update_topology``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from prunelab.criteria import Batch, Criterion, Network, ScoreContext
from prunelab.pruning import smallest_masks
from prunelab.streams import seed_for


def drop_and_grow(
    masks: Sequence[Tensor],
    drop_scores: Sequence[Tensor],
    grow_scores: Sequence[Tensor],
    fraction: float,
) -> tuple[list[Tensor], list[Tensor]]:
    """New keep-masks of each layer, and which weights are newly grown (live now, dead
    before), for masks (M, out, in) and scores of the same shape (higher = keep / grow).

    Per member and layer: ``n = floor(fraction · live)`` live weights with the lowest drop
    scores die, then the ``n`` weights with the highest grow scores among those dead after
    the drop come alive; the live count never changes. Ties break by index
    (``pruning.smallest_masks``), so a member's update does not depend on its stack.
    """
    new_masks, grown = [], []
    for mask, drop, grow in zip(masks, drop_scores, grow_scores, strict=True):
        m = len(mask)
        flat_mask = mask.reshape(m, -1)
        live = flat_mask.sum(dim=1).tolist()
        n_move = [math.floor(fraction * n) for n in live]
        total = flat_mask.shape[1]
        # drop: the dead score below every live weight, so they go first, then n_move more
        drop_flat = drop.reshape(m, -1).to(torch.float32).masked_fill(~flat_mask, float("-inf"))
        n_gone = [total - n + k for n, k in zip(live, n_move, strict=True)]
        after_drop = smallest_masks(drop_flat, n_gone)
        # grow: only among the dead after the drop; the live ones are put below them all
        grow_flat = grow.reshape(m, -1).to(torch.float32).masked_fill(after_drop, float("-inf"))
        chosen = smallest_masks(grow_flat, [total - k for k in n_move])
        new = (after_drop | chosen).reshape(mask.shape)
        new_masks.append(new)
        grown.append(new & ~mask)
    return new_masks, grown


@torch.no_grad()
def update_topology(
    weights: Sequence[Tensor],
    masks: Sequence[Tensor],
    pruned: Sequence[int],
    drop: Criterion,
    grow: Criterion,
    fraction: float,
    seeds: Sequence[int],
    step: int,
    batches: Sequence[Batch] = (),
    network: Network | None = None,
) -> list[Tensor]:
    """One drop-and-grow update of the ``pruned`` layers of a stack, in place: masks
    rewritten, dropped and newly grown weights set to 0. ``weights``/``masks`` cover every
    layer, (M, out, in) each; ``seeds`` give each member its own ``grow`` stream at this
    ``step`` (SET's random growth), ``batches`` the data a gradient-based growth scores on.
    Returns the newly grown weights per pruned layer, for the optimizer's state to be reset
    there (``zero_optimizer_state``)."""
    ctx = ScoreContext(
        weights=[w.detach() for w in weights],
        masks=list(masks),
        pruned=list(pruned),
        gens=[torch.Generator().manual_seed(seed_for(s, "grow", step)) for s in seeds],
        batches=list(batches),
        network=network,
    )
    new, grown = drop_and_grow(ctx.pruned_masks(), drop.scores(ctx), grow.scores(ctx), fraction)
    for i, mask, fresh in zip(pruned, new, grown, strict=True):
        mask = mask.to(masks[i].device)
        masks[i].copy_(mask)
        weights[i].mul_(mask).masked_fill_(fresh.to(weights[i].device), 0.0)
    return grown


@torch.no_grad()
def zero_optimizer_state(
    optimizer: torch.optim.Optimizer, weights: Sequence[Tensor], where: Sequence[Tensor]
) -> None:
    """Zero every per-weight optimizer buffer (Adam's moments, momentum) of ``weights`` where
    ``where`` is true: at dead weights, so their update stays 0, and at newly grown ones, so
    each starts as a fresh weight would (RigL resets their momentum)."""
    for weight, mask in zip(weights, where, strict=True):
        for value in optimizer.state.get(weight, {}).values():
            if isinstance(value, Tensor) and value.shape == weight.shape:
                value.masked_fill_(mask.to(value.device), 0)
