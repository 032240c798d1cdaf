"""The optimizer and its learning-rate schedule, from a module's hyperparameters.

``build_optimizers`` is what ``PruningModule.configure_optimizers`` returns; ``lr_factor`` is
the one learning-rate curve of every schedule (dense phase, fine-tune, lottery retrain), and
``offset_factor`` the same curve for a run that starts part-way through it (an IMP level).
``reset_optimizer_state`` gives a rewound lottery ticket its fresh optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

import torch
from torch import Tensor


@torch.no_grad()
def reset_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Zero every state tensor of ``optimizer`` (moments, momentum and Adam's step count) in
    place, so they stay on their devices and in their dtypes: a fresh optimizer."""
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, Tensor):
                value.zero_()


def build_optimizers(params: Iterable[Tensor], hp: Mapping[str, Any]) -> dict[str, Any]:
    """Optimizer and learning-rate schedule (``lr_factor``) from a module's hyperparameters
    (``optim``, the job's ``OptimConfig`` as a dict; ``lr_epochs``, ``total_epochs``,
    ``rewind_epoch`` and ``steps_per_epoch`` from its schedule and data).

    With ``steps_per_epoch`` known (every run's module) the factor is updated after every
    step, so a fine-tune of one epoch still anneals to ~0 by its last step; the dense phase
    keeps one factor per epoch, bit for bit what a per-epoch schedule gives. Without it
    (modules built bare, in tests) the factor changes once per epoch.

    On CUDA, Adam is fused: one kernel per step for all parameters instead of a dozen, the
    same update up to rounding. Elsewhere PyTorch's default implementation runs, so CPU runs
    keep their bits.
    """
    params = list(params)
    o = hp["optim"]
    if o["name"] == "sgd":
        opt = torch.optim.SGD(params, lr=o["lr"], momentum=0.9, weight_decay=o["weight_decay"])
    else:
        cls = torch.optim.AdamW if o["name"] == "adamw" else torch.optim.Adam
        fused = all(p.device.type == "cuda" for p in params) or None
        opt = cls(params, lr=o["lr"], weight_decay=o["weight_decay"], fused=fused)
    factor = partial(
        lr_factor,
        o["lr_schedule"],
        hp["lr_epochs"],
        hp["finetune_scale"],
        finetune_schedule=o["finetune_lr_schedule"],
        total_epochs=hp["total_epochs"],
        rewind_epoch=hp["rewind_epoch"],
    )
    spe = hp["steps_per_epoch"]
    offset = float(hp.get("lr_offset", 0.0))
    if offset:  # a run that starts part-way through the main schedule (an IMP level)
        factor = partial(offset_factor, factor, offset, hp["lr_epochs"])
    if spe:
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: factor(step / spe))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def offset_factor(factor: Callable[[float], float], offset: float, horizon: int,
                  epoch: float) -> float:  # fmt: skip
    """``factor`` ``offset`` epochs later, held at its last epoch's value past ``horizon``
    (a retrain rewound to a step inside an epoch runs up to one epoch past the schedule)."""
    return factor(min(epoch + offset, horizon - 0.5))


def lr_factor(
    schedule: str,
    dense_epochs: int,
    finetune_scale: float,
    epoch: float,
    *,
    finetune_schedule: str,
    total_epochs: int | None = None,
    rewind_epoch: int | None = None,
) -> float:
    """Learning-rate multiplier at ``epoch`` (0-based; fractional between steps).

    The dense phase follows ``schedule`` with one factor per whole epoch, which depends only
    on its own length, never on what follows, so the dense model, and with it the dense
    cache, is the same whatever comes after pruning. After it:

    - fine-tuning (and the gradual ramp) runs at ``finetune_scale``; with
      ``finetune_schedule="cosine"`` the rate restarts there and decays again, continuously,
      to ~0 at the last step (a constant fine-tuning rate costs lightly pruned models
      accuracy, since it ends on a noisy, un-annealed model: docs/results/finetuning.md);
    - a lottery ticket (``rewind_epoch`` set) retrains with the dense phase's own schedule
      from ``rewind_epoch`` on, stretched over the fine-tune epochs (exactly replayed when
      there are ``dense_epochs - rewind_epoch`` of them), as Frankle & Carbin retrain.
    """
    if epoch >= dense_epochs and total_epochs is not None and total_epochs > dense_epochs:
        span = total_epochs - dense_epochs
        if rewind_epoch is not None:
            mapped = rewind_epoch + (epoch - dense_epochs) * (dense_epochs - rewind_epoch) / span
            replayed = min(mapped, dense_epochs - 1)
            return lr_factor(schedule, dense_epochs, finetune_scale, replayed,
                             finetune_schedule=finetune_schedule)  # fmt: skip
        if finetune_schedule != "cosine":
            return finetune_scale
        return finetune_scale * 0.5 * (1.0 + math.cos(math.pi * (epoch - dense_epochs) / span))
    if epoch >= dense_epochs:
        return finetune_scale
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * math.floor(epoch) / dense_epochs))
    return 1.0
