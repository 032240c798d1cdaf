"""Lightning callbacks: when to prune, and a one-line summary per epoch.

Unlike Lightning's own ``ModelPruning``, ``PruningCallback`` never touches the output layer
unless asked, prunes *before* the evaluation that is reported (never after the last
validation), and logs every sparsity figure to the CSV log.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from prunelab.model import MaskedMLP
from prunelab.pruning import check_sparsity, get_strategy
from prunelab.results import atomic_path
from prunelab.schedules import (
    SCHEDULES,
    iterative_prunes_after,
    iterative_releases_at,
    target_sparsity,
)

log = logging.getLogger(__name__)


@torch.no_grad()
def mask_optimizer_state(optimizer: torch.optim.Optimizer, net: MaskedMLP) -> None:
    """Zero every per-weight optimizer buffer (Adam's moments, SGD momentum) of pruned entries.

    With the mask in ``forward`` a pruned weight's gradient is 0; zeroing its moments too
    makes its Adam update exactly 0, so it stays exactly 0 for the rest of training.
    """
    mask_of = {id(layer.weight): layer.mask for layer in net.layers}
    for group in optimizer.param_groups:
        for p in group["params"]:
            mask = mask_of.get(id(p))
            if mask is None:
                continue
            for value in optimizer.state.get(p, {}).values():
                if isinstance(value, Tensor) and value.shape == p.shape:
                    value.mul_(mask)


class PruningCallback(pl.Callback):
    """Prune on a schedule of ``schedules.py``, to ``sparsity`` in the end.

    One-shot: train ``prune_after_epochs`` dense epochs, then prune at the first step of the
    next one, so every logged epoch row describes one model (dense rows before, pruned rows
    after). Gradual: from there, masks are recomputed on a cubic ramp every
    ``prune_every_steps`` steps for ``ramp_epochs`` epochs. Iterative: for ``ramp_epochs``
    epochs, masks are lifted at each epoch's start and recomputed at k after its last step.
    Whatever the schedule, the reported test sees the final k (pruned at its start if
    training ended first). Outside those events, masks are fixed.

    ``member`` picks one member of a ``stacked.StackedMLP``; its logged keys then start with
    ``m<member>/``, which ``stacked.MemberLoggers`` routes to that member's own log.
    """

    def __init__(
        self,
        strategy: str,
        sparsity: float,
        prune_after_epochs: int,
        prune_output: bool = False,
        seed: int = 0,
        ramp_epochs: int = 0,
        prune_every_steps: int = 1,
        schedule: str = "oneshot",
        member: int | None = None,
    ) -> None:
        super().__init__()
        get_strategy(strategy)  # fail at construction, not after an hour of training
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")
        self.strategy = strategy
        self.sparsity = check_sparsity(sparsity)
        for name, value, low in (
            ("prune_after_epochs", prune_after_epochs, 0),
            ("ramp_epochs", ramp_epochs, 0),
            ("prune_every_steps", prune_every_steps, 1),
        ):
            if value < low:
                raise ValueError(f"{name} must be ≥ {low}, got {value}")
        self.prune_after_epochs = prune_after_epochs
        self.ramp_epochs = ramp_epochs
        self.prune_every_steps = prune_every_steps
        self.prune_output = prune_output
        self.seed = seed
        self.schedule = schedule
        self.member = member
        self.prefix = "" if member is None else f"m{member}/"
        self.current: float | None = None  # sparsity the masks were last computed at

    @property
    def pruned(self) -> bool:
        return self.current is not None

    @property
    def state_key(self) -> str:
        # One callback per stacked member: each needs its own slot in the checkpoint. A lone
        # model's keeps the plain class name, so earlier checkpoints still resume.
        if self.member is None:
            return super().state_key
        return self._generate_state_key(member=self.member)

    def target(self, pl_module: pl.LightningModule) -> Any:
        """What this callback prunes: the module's net, or one member of a stacked net."""
        net = pl_module.net
        return net if self.member is None else net.member(self.member)

    def prune(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, k: float | None = None
    ) -> dict[str, float]:
        """Compute and install masks at ``k`` (default: the final sparsity) from the current
        weights, and clear optimizer state of pruned weights."""
        k = self.sparsity if k is None else k
        self.target(pl_module).prune(self.strategy, k, self.prune_output, self.seed)
        for opt in trainer.optimizers:
            mask_optimizer_state(opt, pl_module.net)
        self.current = k
        figures = self.figures(pl_module)
        final = k == self.sparsity and self.schedule != "iterative"
        log.log(
            logging.INFO if final and self.member is None else logging.DEBUG,
            "%spruned %s to k=%.3g: global %.4f, effective %.4f, %d of %d weights kept",
            self.prefix,
            self.strategy,
            k,
            figures["sparsity/global"],
            figures["sparsity/effective"],
            figures["params/nonzero"],
            figures["params/total"],
        )
        return figures

    def figures(self, pl_module: pl.LightningModule) -> dict[str, float]:
        """The sparsity report for the model as it is now."""
        return self.target(pl_module).sparsity(self.current or 0.0, self.prune_output)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        spe = int(trainer.num_training_batches)
        if self.schedule == "iterative":
            window = (spe, self.prune_after_epochs, self.ramp_epochs)
            if iterative_releases_at(trainer.global_step, *window):
                self.target(pl_module).release()
            return
        k = target_sparsity(
            trainer.global_step,
            spe,
            self.sparsity,
            self.prune_after_epochs,
            self.ramp_epochs,
            self.prune_every_steps,
        )
        if k is not None and k != self.current:
            self.prune(trainer, pl_module, k)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        window = (int(trainer.num_training_batches), self.prune_after_epochs, self.ramp_epochs)
        if self.schedule == "iterative" and iterative_prunes_after(trainer.global_step, *window):
            self.prune(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        figures = {self.prefix + k: v for k, v in self.figures(pl_module).items()}
        pl_module.log_dict(figures, on_step=False, on_epoch=True)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.current != self.sparsity:
            self.prune(trainer, pl_module)
        if trainer.logger is not None:
            final = {f"{self.prefix}final/{k}": v for k, v in self.figures(pl_module).items()}
            trainer.logger.log_metrics(final, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"current": self.current}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.current = state_dict.get("current")


class EpochSummary(pl.Callback):
    """Log one readable line per epoch instead of a progress bar (sweeps write to files)."""

    KEYS = ("train/loss", "train/acc", "val/acc", "test/acc", "sparsity/global")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        m = trainer.callback_metrics
        parts = [f"{k} {float(m[k]):.4f}" for k in self.KEYS if k in m]
        log.info("epoch %d/%d  %s", trainer.current_epoch + 1, trainer.max_epochs, "  ".join(parts))


class LastCheckpoint(pl.Callback):
    """Every ``every_n_epochs`` epochs, atomically replace ``path`` with a full checkpoint.

    For long runs: a job killed at any moment resumes from its last completed checkpoint
    (``train.resume_point``). Written to a temp file and renamed, so ``path`` is never half a
    checkpoint.
    """

    def __init__(self, path: Path, every_n_epochs: int) -> None:
        super().__init__()
        if every_n_epochs <= 0:
            raise ValueError(f"every_n_epochs must be positive, got {every_n_epochs}")
        self.path = Path(path)
        self.every_n_epochs = every_n_epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            with atomic_path(self.path) as tmp:
                trainer.save_checkpoint(tmp)
