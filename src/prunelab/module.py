"""The one LightningModule: trains a stack of M ≥ 1 members (``nets.MemberStack``: the
challenge MLP's ``MemberStack`` or any model's ``stack.StackedNet``).

A single run is a stack of one, a stacked sweep a stack of many: the same module, the same
steps, the same logs. The loss is the *sum* of the members' mean cross-entropies, so each
member's gradient is exactly its own, and Adam, being elementwise, updates each member as its
separate run would. Per-member loss and accuracy sums live in torchmetrics states on the
module's device, so a step never waits for the device; they are read once per epoch and
recorded as ``m<i>/<split>/{loss,acc}``. ``record`` collects an epoch's host figures (the
pruning callback's too) and ``write_log`` hands them to the logger as one row per epoch,
bypassing ``LightningModule.log``, whose per-key cost made logging most of a 60-member
epoch; the loggers of ``logs.MemberLoggers`` route them to member i's own ``metrics.csv``.

Validation runs on two loaders, val and test, so per-epoch test accuracy (the seed's "test
accuracy vs epoch" curves) comes for free. ``trainer.test`` on the (train, val, test) loaders
gives the final, reported figures under ``m<i>/final/…``, computed on each member's compacted
form (``sparse.compact``: dead units dropped, same logits, a fraction of the FLOPs).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchmetrics import Metric

from prunelab.config.schema import OptimConfig, ScheduleConfig
from prunelab.errors import TrainingError
from prunelab.functional import member_losses
from prunelab.nets import MemberStack
from prunelab.optimizers import build_optimizers, reset_optimizer_state
from prunelab.sparse import compact

EVAL_SPLITS = ("train", "val", "test")
# Written into every checkpoint: 2 = weights and masks with a member axis, (M, out, in);
# 3 = and one pruning callback for the whole stack; 4 = a per-step learning-rate scheduler;
# 5 = independent random streams (streams.py), typed hyperparameters, a last.json manifest.
CHECKPOINT_FORMAT = 5
# Samples per block of an evaluation forward pass on a CPU (``forward_in_blocks``).
EVAL_BLOCK_ROWS = 2048


class MemberMetrics(Metric):
    """Loss and accuracy of one split for each of M members, summed over the batches seen.

    The sums are metric states, so they move with the module to its device (no host sync
    per step), are left out of checkpoints, and would sum across processes under DDP.
    """

    full_state_update = False

    def __init__(self, members: int) -> None:
        super().__init__()
        self.add_state("loss_sum", torch.zeros(members, dtype=torch.float64), "sum")
        self.add_state("correct", torch.zeros(members, dtype=torch.long), "sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), "sum")

    def update(self, losses: Tensor, logits: Tensor, y: Tensor) -> None:
        """``losses`` (M,) batch means, ``logits`` (M, B, C), ``y`` (B,) or (M, B)."""
        n = y.shape[-1]
        self.loss_sum += losses.detach().to(torch.float64) * n
        self.correct += (logits.argmax(dim=-1) == y).sum(dim=-1)
        self.count += n

    def compute(self) -> tuple[Tensor, Tensor]:
        """Mean loss and accuracy per member, (M,) each."""
        return self.loss_sum / self.count, self.correct.double() / self.count


class PruningModule(pl.LightningModule):
    """Trains ``net`` with cross-entropy; logs every member's loss and accuracy per split."""

    def __init__(
        self,
        net: MemberStack,
        optim: OptimConfig,
        schedule: ScheduleConfig,
        val_splits: Sequence[str] = ("val", "test"),
        steps_per_epoch: int | None = None,
    ) -> None:
        """``optim`` and ``schedule`` are the job's (``config.schema``): the optimizer, the
        learning rate's horizon and restarts, the lottery's rewind epoch all come from them.
        ``steps_per_epoch`` makes the rate change at every step after the dense phase."""
        super().__init__()
        # Plain values only: a checkpoint's hyperparameters load with weights_only=True.
        self.save_hyperparameters(
            {
                "optim": dataclasses.asdict(optim),
                "finetune_scale": optim.finetune_scale,
                "lr_epochs": schedule.lr_epochs,
                "total_epochs": schedule.total_epochs,
                "rewind_epoch": schedule.rewind_to,
                "lr_offset": schedule.lr_offset,
                "steps_per_epoch": steps_per_epoch,
            }
        )
        rewind_epoch = schedule.rewind_to
        self.net = net
        self.val_splits = tuple(val_splits)
        self.test_splits = EVAL_SPLITS
        # Keyed "<split>_sums": a ModuleDict key may not shadow a Module method ("train").
        self.sums = nn.ModuleDict({f"{s}_sums": MemberMetrics(len(net)) for s in EVAL_SPLITS})
        self._test_nets: list[nn.Module] = []
        # Lottery tickets: every member's weights at the start of epoch ``rewind_epoch``, a
        # buffer so that it travels in checkpoints and the dense cache (``cache.expand``
        # stacks it over members like the weights).
        self.snapshot = WeightSnapshot(net) if rewind_epoch is not None else None
        # The latest value of every recorded figure (what Lightning's callback_metrics were),
        # and those not yet written to the logger.
        self.figures: dict[str, float] = {}
        self._unwritten: dict[str, float] = {}

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def _evaluate(
        self, split: str, batch: tuple[Tensor, Tensor], nets: Sequence[nn.Module] = ()
    ) -> Tensor:
        """Per-member losses (M,) of ``batch``, added to ``split``'s sums."""
        x, y = batch
        if nets:
            logits = torch.stack([forward_in_blocks(net, x) for net in nets])
        else:
            logits = forward_in_blocks(self.net, x)
        losses = member_losses(logits, y)
        self.sums[f"{split}_sums"].update(losses, logits, y)
        return losses

    def _log_split(self, split: str, prefix: str = "") -> None:
        """Record ``m<i>/<prefix><split>/{loss,acc}`` for every member, then clear the sums."""
        metric = self.sums[f"{split}_sums"]
        if not metric.update_called:
            return
        # compute() squeezes a one-member (1,) result to a scalar: flatten it back.
        loss, acc = (t.reshape(-1).tolist() for t in metric.compute())
        metric.reset()
        if split == "train" and not prefix:
            check_finite(loss, self.current_epoch, self.hparams.optim["lr"])
        values = {}
        for i, (lo, ac) in enumerate(zip(loss, acc, strict=True)):
            values[f"m{i}/{prefix}{split}/loss"] = lo
            values[f"m{i}/{prefix}{split}/acc"] = ac
        self.record(values)

    def record(self, values: Mapping[str, float]) -> None:
        """Add host figures to this epoch's log row (written by ``write_log``)."""
        self.figures.update(values)
        self._unwritten.update(values)

    def write_log(self, epoch: int | None = None) -> None:
        """Hand the figures recorded since the last call to the logger as one row, at the
        step of the epoch's last batch (or, for the final test, the step after it)."""
        if not self._unwritten or self.trainer.logger is None:
            self._unwritten = {}
            return
        row = dict(self._unwritten)
        self._unwritten = {}
        step = self.trainer.global_step
        if epoch is not None:
            row["epoch"] = epoch
            step = max(step - 1, 0)
        self.trainer.logger.log_metrics(row, step=step)
        self.trainer.logger.save()

    def on_train_start(self) -> None:
        check_placement(self, self.trainer.optimizers)

    def on_train_epoch_start(self) -> None:
        set_loader_epoch(self)
        if self.snapshot is not None and self.current_epoch == self.hparams.rewind_epoch:
            self.snapshot.capture(self.net)

    @torch.no_grad()
    def rewind(self, fresh: Sequence[Tensor] | None = None) -> None:
        """Lottery tickets: every parameter back to its value at the start of epoch
        ``rewind_epoch`` (or to ``fresh``, one (M, …) tensor per parameter: the
        re-initialised control), each weight times its mask, so only the surviving weights
        come back; and the optimizer state zeroed, the fresh optimizer a ticket retrains
        with."""
        assert self.snapshot is not None, "rewind needs a module built with rewind_epoch"
        sources = fresh if fresh is not None else self.snapshot.weights()
        masks = {id(layer.weight): layer.mask for layer in self.net.layers}
        for param, source in zip(self.net.parameters(), sources, strict=True):
            mask = masks.get(id(param))
            param.copy_(source.to(param) if mask is None else source.to(param) * mask)
        for opt in self.trainer.optimizers:
            reset_optimizer_state(opt)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # After the callbacks' hook, so a release or prune of this step is seen: the layers
        # whose masks keep everything skip their mask product (``nets.FullMask``). A host
        # read only after a mask changed, and never inside the step.
        self.net.refresh_full_masks()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        # No finiteness check here: it would make every step wait for the device. The sums
        # carry a NaN or inf to the epoch's end, where ``check_finite`` stops the run.
        return self._evaluate("train", batch).sum()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Recorded at the epoch's last step rather than in on_train_epoch_end, which Lightning
        # calls after the callbacks' hook: the epoch summary then sees this epoch's figures.
        if batch_idx + 1 == self.trainer.num_training_batches:
            self._log_split("train")

    def on_train_epoch_end(self) -> None:
        # After the callbacks' hook (the pruning figures are recorded by then).
        self.write_log(epoch=self.current_epoch)

    def validation_step(
        self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._evaluate(self.val_splits[dataloader_idx], batch)

    def on_validation_epoch_end(self) -> None:
        for split in self.val_splits:
            self._log_split(split)

    def on_test_start(self) -> None:
        # After the pruning callbacks' on_test_start, so every member is at its final k.
        check_placement(self)
        self._test_nets = [compact(self.net.unstack(i)).eval() for i in range(len(self.net))]

    def test_step(
        self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._evaluate(self.test_splits[dataloader_idx], batch, self._test_nets)

    def on_test_epoch_end(self) -> None:
        for split in self.test_splits:
            self._log_split(split, "final/")
        self._test_nets = []
        self.write_log()

    def configure_optimizers(self) -> dict[str, Any]:
        return build_optimizers(self.net.parameters(), self.hparams)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["prunelab"] = {"format": CHECKPOINT_FORMAT, "members": len(self.net)}


def forward_in_blocks(
    net: Callable[[Tensor], Tensor], x: Tensor, rows: int = EVAL_BLOCK_ROWS
) -> Tensor:
    """``net(x)`` computed over blocks of at most ``rows`` samples when nothing needs
    gradients and ``x`` is on a CPU; else ``net(x)`` as is.

    An evaluation batch of 10 000 images makes every hidden activation 40 MB, which does not
    stay in a CPU's caches between one layer's product and its ReLU and the next product;
    blocks of 2048 do, and the evaluation of the challenge MLP takes about 17 % less time on
    a 2-core CPU. The logits are the same bit for bit (each row's products do not depend on
    the other rows: ``tests/test_module.py`` checks it), and the loss is still taken over the
    whole batch, so every figure keeps its bits. Never in training, where the weights'
    gradients would be summed in another order; never on a GPU, which wants large batches.
    """
    dim = x.dim() - 2
    if torch.is_grad_enabled() or x.device.type != "cpu" or x.shape[dim] <= rows:
        return net(x)
    return torch.cat([net(part) for part in x.split(rows, dim=dim)], dim=-2)


@torch.no_grad()
def member_accuracy(
    net: MemberStack, loader: Iterable[tuple[Tensor, Tensor]]
) -> tuple[list[float], int]:
    """Each member's accuracy on ``loader``'s batches, read to the host once (inputs in the
    weights' dtype, as the trainer's precision plugin gives them to ``validation_step``, and
    in its blocks), and the number of samples it is over."""
    correct, n = None, 0
    dtype = net.layers[0].weight.dtype
    for x, y in loader:
        hits = (forward_in_blocks(net, x.to(dtype)).argmax(dim=-1) == y).sum(dim=-1)
        correct = hits if correct is None else correct + hits
        n += y.shape[-1]
    assert correct is not None, "member_accuracy needs a non-empty loader"
    return (correct.double() / n).reshape(-1).tolist(), n


class WeightSnapshot(nn.Module):
    """A copy of a stack's parameters taken at one moment: buffers ``layer<i>``, (M, …), in
    ``net.parameters()`` order (the MLP's: its layers' weights)."""

    def __init__(self, net: MemberStack) -> None:
        super().__init__()
        for i, param in enumerate(net.parameters()):
            self.register_buffer(f"layer{i}", torch.zeros_like(param.detach()))

    @torch.no_grad()
    def capture(self, net: MemberStack) -> None:
        for saved, param in zip(self.weights(), net.parameters(), strict=True):
            saved.copy_(param)

    def weights(self) -> list[Tensor]:
        return list(self.buffers())  # in registration order: layer 0 first


def placement_errors(
    module: PruningModule, optimizers: Iterable[torch.optim.Optimizer] = ()
) -> list[str]:
    """Every tensor of a run that is not where it must be, as readable lines.

    Weights, masks and metric sums must be on the module's device; every per-weight optimizer
    buffer (Adam's moments, SGD momentum) on its weight's device and in its dtype, since the
    pruning callback multiplies it by the weight's mask. Checked at the start of every fit,
    whatever it resumed from (``wiring.fit``), and by the tests of each resume path.
    """
    device = module.device
    errors = []
    tensors = itertools.chain(module.named_parameters(), module.named_buffers())
    states = (
        (f"{key}.{name}", value)
        for key, metric in module.sums.items()
        for name, value in metric.metric_state.items()
    )
    for name, t in itertools.chain(tensors, states):
        if isinstance(t, Tensor) and t.device != device:
            errors.append(f"{name} is on {t.device}, the module on {device}")
    names = {id(p): name for name, p in module.named_parameters()}
    for opt in optimizers:
        for p, state in opt.state.items():
            for key, value in state.items():
                if not isinstance(value, Tensor) or value.shape != p.shape:
                    continue  # scalars such as Adam's step live on the CPU on purpose
                if (value.device, value.dtype) != (p.device, p.dtype):
                    errors.append(
                        f"optimizer {key} of {names.get(id(p), 'a parameter')} is "
                        f"{value.dtype} on {value.device}, its weight {p.dtype} on {p.device}"
                    )
    return errors


def check_placement(
    module: PruningModule, optimizers: Iterable[torch.optim.Optimizer] = ()
) -> None:
    """Raise if ``placement_errors`` finds anything: a clear stop instead of a device mismatch
    deep inside a pruning step."""
    errors = placement_errors(module, optimizers)
    if errors:
        raise RuntimeError("tensors of the run are misplaced: " + "; ".join(errors))


def check_finite(losses: Sequence[float], epoch: int, lr: float) -> None:
    """Stop with a clear error if an epoch's mean training loss of any member is NaN or inf:
    it diverged, and every later epoch would be wasted."""
    bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
    if bad:
        who = f" of member(s) {bad}" if len(losses) > 1 else ""
        raise TrainingError(
            f"loss{who} became {losses[bad[0]]} in epoch {epoch}: training diverged; "
            f"lower optim.lr (now {lr})"
        )


def set_loader_epoch(module: pl.LightningModule) -> None:
    """Tell the training loader which epoch starts.

    Batch order is a function of (seed, epoch), so a run resumed from a cached dense
    checkpoint at epoch E sees the same batches as one that trained straight through.
    """
    loader = module.trainer.train_dataloader
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(module.current_epoch)
