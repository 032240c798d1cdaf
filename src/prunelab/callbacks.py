"""Lightning callbacks: when to prune each member, a one-line summary per epoch, and the
periodic checkpoint of long jobs.

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
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor

from prunelab.nets import StackedMLP
from prunelab.results import atomic_path
from prunelab.schedules import iterative_prunes_after, iterative_releases_at, target_sparsity

log = logging.getLogger(__name__)


@torch.no_grad()
def mask_optimizer_state(optimizer: torch.optim.Optimizer, net: StackedMLP, member: int) -> None:
    """Zero member ``member``'s slice of every per-weight optimizer buffer (Adam's moments,
    SGD momentum) where its mask prunes.

    With the mask in ``forward`` a pruned weight's gradient is 0; zeroing its moments too
    makes its Adam update exactly 0, so it stays exactly 0 for the rest of training. Only the
    member's own slice is touched: a prune event costs O(1) members, not O(M).
    """
    for layer in net.layers:
        for value in optimizer.state.get(layer.weight, {}).values():
            if isinstance(value, Tensor) and value.shape == layer.weight.shape:
                value[member].mul_(layer.mask[member])


class PruningCallback(pl.Callback):
    """Prune member ``member`` of the module's stack on a schedule of ``schedules.py``, to
    ``sparsity`` in the end. Arguments are trusted (``config.check`` validated them).

    One-shot: train ``prune_after_epochs`` dense epochs, then prune at the first step of the
    next one, so every logged epoch row describes one model (dense rows before, pruned rows
    after). Gradual: from there, masks are recomputed on a cubic ramp every
    ``prune_every_steps`` steps for ``ramp_epochs`` epochs. Iterative: for ``ramp_epochs``
    epochs, masks are lifted at each epoch's start and recomputed at k after its last step.
    Whatever the schedule, the reported test sees the final k (pruned at its start if
    training ended first). Outside those events, masks are fixed. Logged keys start with
    ``m<member>/``, which ``logs.MemberLoggers`` routes to that member's own log.
    """

    def __init__(
        self,
        member: int,
        strategy: str,
        sparsity: float,
        prune_after_epochs: int,
        prune_output: bool = False,
        seed: int = 0,
        ramp_epochs: int = 0,
        prune_every_steps: int = 1,
        schedule: str = "oneshot",
    ) -> None:
        super().__init__()
        self.member = member
        self.strategy = strategy
        self.sparsity = float(sparsity)
        self.prune_after_epochs = prune_after_epochs
        self.prune_output = prune_output
        self.seed = seed
        self.ramp_epochs = ramp_epochs
        self.prune_every_steps = prune_every_steps
        self.schedule = schedule
        self.prefix = f"m{member}/"
        self.current: float | None = None  # sparsity the masks were last computed at

    @property
    def pruned(self) -> bool:
        return self.current is not None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(member=self.member)

    def prune(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, k: float | None = None
    ) -> dict[str, float]:
        """Compute and install the member's masks at ``k`` (default: the final sparsity)
        from its current weights; while fitting, clear its optimizer state where pruned.

        Outside fitting (the final prune at test start) the optimizer is left alone: it will
        take no more steps, and Lightning has moved its state off the device by then.
        """
        k = self.sparsity if k is None else k
        net = pl_module.net
        net.prune(self.member, self.strategy, k, self.prune_output, self.seed)
        if trainer.state.fn == TrainerFn.FITTING:
            for opt in trainer.optimizers:
                mask_optimizer_state(opt, net, self.member)
        self.current = k
        figures = self.figures(pl_module)
        final = k == self.sparsity and self.schedule != "iterative"
        log.log(
            logging.INFO if final else logging.DEBUG,
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
        """The member's sparsity report as its masks are now."""
        return pl_module.net.sparsity(self.member, self.current or 0.0, self.prune_output)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        spe = int(trainer.num_training_batches)
        if self.schedule == "iterative":
            window = (spe, self.prune_after_epochs, self.ramp_epochs)
            if iterative_releases_at(trainer.global_step, *window):
                pl_module.net.release(self.member)
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
    """One readable line per epoch instead of a progress bar (sweeps write to files).

    One member: its figures. A stack: each figure's range over the members.
    """

    KEYS = ("train/loss", "train/acc", "val/acc", "test/acc", "sparsity/global")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        m = trainer.callback_metrics
        n = len(pl_module.net)
        parts = []
        for key in self.KEYS:
            values = [float(m[k]) for i in range(n) if (k := f"m{i}/{key}") in m]
            if len(values) == 1:
                parts.append(f"{key} {values[0]:.4f}")
            elif values:
                parts.append(f"{key} {min(values):.4f}–{max(values):.4f}")
        members = f"  {n} members" if n > 1 else ""
        log.info(
            "epoch %d/%d%s  %s",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            members,
            "  ".join(parts),
        )


class LastCheckpoint(pl.Callback):
    """Every ``every_n_epochs`` epochs, atomically replace ``path`` with a full checkpoint.

    For long runs: a job killed at any moment resumes from its last completed checkpoint
    (``resume.resume_point``). Written to a temp file and renamed, so ``path`` is never half
    a checkpoint.
    """

    def __init__(self, path: Path, every_n_epochs: int) -> None:
        super().__init__()
        self.path = Path(path)
        self.every_n_epochs = every_n_epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            with atomic_path(self.path) as tmp:
                trainer.save_checkpoint(tmp, weights_only=False)
