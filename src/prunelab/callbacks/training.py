"""Callbacks that shape the dense phase and the fine-tune around the prune: the dense model
as a mean of its last epochs' weights (``WeightAveraging``), and the fine-tune guard that
undoes a fine-tune validation did not find better (``FinetuneGuard``)."""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from prunelab.module import member_accuracy

log = logging.getLogger("prunelab.callbacks")


class WeightAveraging(pl.Callback):
    """The dense model as the mean of the weights at the end of each of the dense phase's
    last ``epochs`` epochs (Polyak averaging; SWA without batch norm to recompute).

    A model trained at a high rate and averaged sits in a wider basin than one annealed to a
    point, which is what a one-shot prune needs: removing most of the weights at once is a
    large perturbation (docs/results/dense-phase.md). Applied after the last step of
    the dense phase, so its validation, its cache entry and everything after see the averaged
    model. The running mean is callback state, so a run killed mid-way resumes with it.
    """

    def __init__(self, epochs: int, dense_epochs: int) -> None:
        super().__init__()
        self.first, self.last = dense_epochs - epochs, dense_epochs - 1
        self.mean: list[Tensor] = []
        self.count = 0

    @torch.no_grad()
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        epoch = trainer.current_epoch
        if batch_idx + 1 != trainer.num_training_batches or not self.first <= epoch <= self.last:
            return
        weights = list(pl_module.net.parameters())  # the MLP's: its layers' weights
        if not self.mean:
            self.mean, self.count = [w.detach().clone() for w in weights], 0
        self.mean = [m.to(w) for m, w in zip(self.mean, weights, strict=True)]  # after a resume
        self.count += 1
        for mean, w in zip(self.mean, weights, strict=True):
            mean.add_((w - mean) / self.count)  # after the first epoch: mean == w
        if epoch == self.last:
            for mean, w in zip(self.mean, weights, strict=True):
                w.copy_(mean)
            log.info("dense model = mean of the last %d epochs' weights", self.count)
            self.mean, self.count = [], 0

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "count": self.count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.mean, self.count = list(state_dict["mean"]), int(state_dict["count"])


class FinetuneGuard(pl.Callback):
    """Fine-tuning never leaves a model worse than it found it, as validation sees it.

    At the first fine-tuning step (``start_epoch``; the masks are final by then) each
    member's weights and validation accuracy are kept; when training ends, a member that did
    not get at least ``min_correct`` more validation images right gets those weights back;
    ``m<i>/final/finetune_reverted`` says so and ``finetune_val_before`` / ``_after`` give
    both accuracies. The margin is counted in images, so it means the same whatever the size
    of the validation split, and it is there because validation is a sample: a small rise on
    validation can be a fall on test.

    Why not a gentler rate instead: restarting the rate kicks a converged model out of its
    minimum, and a short fine-tune cannot always anneal it back, while a heavily pruned model
    needs that rate to recover (docs/results/finetuning.md measures both, "Why a guard"), and
    the members of a stack share one rate. The test split is never consulted.
    """

    def __init__(self, start_epoch: int, min_correct: int) -> None:
        super().__init__()
        self.start_epoch = start_epoch
        self.min_correct = min_correct
        self.min_gain = 0.0  # min_correct as a share of the validation split, once seen
        self.before: list[Tensor] = []
        self.before_acc: list[float] = []

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.before or trainer.global_step != self.start_epoch * trainer.num_training_batches:
            return
        loaders = trainer.val_dataloaders
        val = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        self.before = [p.detach().clone() for p in pl_module.net.parameters()]
        with trainer.precision_plugin.forward_context():  # bf16 autocast as validation has it
            self.before_acc, n_val = member_accuracy(pl_module.net, val)
        self.min_gain = self.min_correct / n_val

    @torch.no_grad()
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.before:
            return
        after = [pl_module.figures[f"m{i}/val/acc"] for i in range(len(self.before_acc))]
        pairs = enumerate(zip(self.before_acc, after, strict=True))
        worse = [i for i, (b, a) in pairs if a < b + self.min_gain]
        if worse:
            idx = torch.tensor(worse, device=pl_module.net.layers[0].weight.device)
            for param, before in zip(pl_module.net.parameters(), self.before, strict=True):
                param[idx] = before.to(param)[idx]
            log.info(
                "fine-tuning did not get %d more validation images right for member(s) %s "
                "(%s → %s): their weights from before it are restored",
                self.min_correct,
                worse,
                ", ".join(f"{self.before_acc[i]:.4f}" for i in worse),
                ", ".join(f"{after[i]:.4f}" for i in worse),
            )
        for i, (b, a) in enumerate(zip(self.before_acc, after, strict=True)):
            pl_module.record(
                {
                    f"m{i}/final/finetune_reverted": float(i in worse),
                    f"m{i}/final/finetune_val_before": b,
                    f"m{i}/final/finetune_val_after": a,
                }
            )

    def state_dict(self) -> dict[str, Any]:
        return {"before": self.before, "before_acc": self.before_acc, "min_gain": self.min_gain}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.before = list(state_dict["before"])
        self.before_acc = [float(a) for a in state_dict["before_acc"]]
        self.min_gain = float(state_dict["min_gain"])
