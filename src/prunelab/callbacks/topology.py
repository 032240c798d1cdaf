"""Sparse training's drop-and-grow inside a run (``schedule=set|rigl``): when the schedule
asks for a topology update, every member's live weights move at once (``dst``), and their
optimizer state follows."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytorch_lightning as pl
from torch import Tensor

from prunelab.criteria import CRITERIA, Batch
from prunelab.dst import update_topology, zero_optimizer_state
from prunelab.pruning import prunable_layers


def move_weights(
    trainer: pl.Trainer,
    pl_module: pl.LightningModule,
    fraction: float,
    drop_grow: tuple[str, str],
    prune_output: bool,
    seeds: Sequence[int],
    batches: Callable[[], list[Batch]],
) -> Tensor:
    """Sparse training's drop-and-grow (``dst.update_topology``) of every member at once:
    ``fraction`` of each pruned layer's live weights move, dropped by the criterion named
    ``drop_grow[0]`` and grown by ``drop_grow[1]`` (``batches`` is asked for scoring
    batches only when one of them needs data); the optimizer state of every dead and every
    newly grown weight is zeroed, in one pass per buffer. Returns each member's count of
    grown weights."""
    net, step = pl_module.net, trainer.global_step
    drop = CRITERIA.get(drop_grow[0])()
    grow = CRITERIA.get(drop_grow[1])()
    scored: list[Batch] = batches() if drop.needs_data or grow.needs_data else []
    pruned = [i for i, p in enumerate(prunable_layers(len(net.layers), prune_output)) if p]
    weights = [layer.weight.data for layer in net.layers]
    grown = update_topology(weights, net.all_masks(), pruned, drop, grow, fraction,
                            seeds, step, scored, net.network())  # fmt: skip
    moved = [net.layers[i] for i in pruned]  # only their masks changed
    fresh = [~layer.mask | g.to(layer.mask.device) for layer, g in zip(moved, grown, strict=True)]
    for opt in trainer.optimizers:
        zero_optimizer_state(opt, [layer.weight for layer in moved], fresh)
    return sum(g.flatten(1).sum(dim=1) for g in grown)  # type: ignore[return-value]
