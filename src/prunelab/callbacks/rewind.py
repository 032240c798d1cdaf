"""A lottery ticket's rewind: the surviving weights back to an earlier point of the dense
training after the prune (``rewind``), and the saved rewind point of an IMP job's levels
(``SaveWeightsAt``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from prunelab.results import save_state_atomic

log = logging.getLogger("prunelab.callbacks")


def rewind(pl_module: pl.LightningModule, seeds: Sequence[int], reinit: bool) -> None:
    """Lottery: every member's surviving weights back to their snapshot (or, with
    ``reinit``, fresh ones drawn from each member's own reinit stream), and a fresh
    optimizer state."""
    pl_module.rewind(pl_module.net.fresh_weights(seeds) if reinit else None)
    log.info(
        "rewound %s to %s",
        "members" if len(seeds) > 1 else "the model",
        "fresh random weights (reinit control)" if reinit else "the snapshot",
    )


class SaveWeightsAt(pl.Callback):
    """Save member 0's weights and masks (a ``MaskedMLP`` state dict) as they are before
    optimizer step ``step`` to ``path``: the rewind point that every level of an IMP job
    (``levels``) rewinds to, written once, atomically, by its dense training."""

    def __init__(self, step: int, path: str) -> None:
        super().__init__()
        self.step, self.path = step, Path(path)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step:
            net = pl_module.net.unstack(0)
            save_state_atomic(self.path, {k: v.cpu() for k, v in net.state_dict().items()})
