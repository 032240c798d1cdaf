"""When each member is pruned, and to what k: the one callback that asks the schedule
(``schedules.Schedule``) before and after every optimizer step.

Unlike Lightning's own ``ModelPruning``, ``PruningCallback`` never touches the output layer
unless asked, prunes *before* the evaluation that is reported (never after the last
validation), and logs every sparsity figure to the CSV log. What follows a prune lives
beside it: the lottery's rewind (``callbacks.rewind``), sparse training's drop-and-grow
(``callbacks.topology``) and the batches data-driven criteria score on
(``callbacks.scoring``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor

from prunelab.callbacks.rewind import rewind
from prunelab.callbacks.scoring import ScoringData
from prunelab.callbacks.topology import move_weights
from prunelab.criteria import Batch
from prunelab.data import BatchLoader
from prunelab.nets import StackedMLP
from prunelab.pruning import Sparsity
from prunelab.schedules import Schedule
from prunelab.selection import Method

log = logging.getLogger("prunelab.callbacks")


@torch.no_grad()
def mask_optimizer_state(
    optimizer: torch.optim.Optimizer, net: StackedMLP, members: Sequence[int]
) -> None:
    """Zero ``members``' slices of every per-weight optimizer buffer (Adam's moments, SGD
    momentum) where their masks prune.

    With the mask in ``forward`` a pruned weight's gradient is 0; zeroing its moments too
    makes its Adam update exactly 0, so it stays exactly 0 for the rest of training. Only the
    pruned members' slices are touched, once per prune event, in one operation per buffer.
    """
    whole = list(members) == list(range(len(net)))
    idx = None if whole else torch.tensor(members, device=net.layers[0].weight.device)
    for layer in net.layers:
        for value in optimizer.state.get(layer.weight, {}).values():
            if isinstance(value, Tensor) and value.shape == layer.weight.shape:
                if whole:
                    value.mul_(layer.mask)
                else:
                    value[idx] = value[idx] * layer.mask[idx]


class PruningCallback(pl.Callback):
    """Prune every member of the module's stack when its schedule says; member i to
    ``sparsities[i]`` with ``methods[i]`` in the end. Arguments are trusted
    (``config.load`` checked them; a stack's members share their ``schedule``).

    The callback only asks the schedule (``schedules.Schedule``): before each step,
    the sparsity masks must have (``target``) and whether masks are lifted
    (``releases_before``); after it, whether to prune back to k (``prunes_after``); after a
    prune, what happens to the survivors (``after_prune``: a lottery's rewind or reinit).
    Whatever the schedule, the reported test sees the final k (pruned at its start if
    training ended first), so every logged epoch row describes one model. A criterion that
    ``needs_data`` is handed a few training batches of each member's ``score`` stream
    (``data.scoring_batches``; the loader comes through ``use_data``).

    ``layer_sparsity`` (shared by the stack) gives each pruned layer its own final k; a
    member's layers then follow that profile scaled by the member's current k over its final
    one (exactly the profile at the end of a gradual ramp).

    One callback for the whole stack: a step costs one schedule lookup whatever M, and a
    prune event one batched selection per method. Figures are recorded once per epoch as
    ``m<i>/<figure>`` (``logs.MemberLoggers`` routes them to member i's own log).
    """

    def __init__(
        self,
        methods: Sequence[Method],
        sparsities: Sequence[float],
        seeds: Sequence[int],
        schedule: Schedule,
        prune_output: bool,
        layer_sparsity: Sequence[float] | None,
        names: Sequence[str] | None = None,
        score_batches: int = 1,
        score_batch_size: int = 100,
    ) -> None:
        super().__init__()
        self.methods = list(methods)
        self.names = list(names) if names is not None else [""] * len(self.methods)
        self.sparsities = [float(k) for k in sparsities]
        self.seeds = list(seeds)
        self.schedule = schedule
        self.prune_output = prune_output
        self.layer_sparsity = None if layer_sparsity is None else [float(k) for k in layer_sparsity]
        self.scoring = ScoringData(self.seeds, score_batches, score_batch_size)
        # sparsity each member's masks were last computed at; None while dense
        self.current: list[float | None] = [None] * len(self.methods)
        self._figures: list[dict[str, float]] | None = None  # until the masks change
        # weights grown this epoch per member (a tensor on the device; 0 after an epoch
        # without updates), None for a schedule that never moves weights
        self._grown: Tensor | int | None = 0 if schedule.MOVES_WEIGHTS else None

    @property
    def pruned(self) -> bool:
        return all(k is not None for k in self.current)

    def use_data(self, loader: BatchLoader) -> None:
        """The training loader whose images data-driven criteria score on."""
        self.scoring.loader = loader

    def batches_for(self, members: Sequence[int], event: int, force: bool = False) -> list[Batch]:
        """Scoring batches of ``members`` at prune event ``event`` (``ScoringData.draw``;
        none for a method that does not need data, unless ``force``)."""
        if not force and not any(self.methods[i].needs_data for i in members):
            return []
        return self.scoring.draw(event)

    def prune(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        members: Sequence[int] | None = None,
        ks: Sequence[float] | None = None,
    ) -> None:
        """Compute and install the masks of ``members`` (default: all) at ``ks`` (default:
        their final sparsities) from their current weights, one batched selection per
        method; while fitting, clear their optimizer state where pruned.

        Outside fitting (the final prune at test start) the optimizer is left alone: it will
        take no more steps, and Lightning has moved its state off the device by then.
        """
        members = list(range(len(self.methods))) if members is None else list(members)
        ks = [self.sparsities[i] for i in members] if ks is None else list(ks)
        net = pl_module.net
        # The final prune runs at test start, inside Lightning's inference mode, where the
        # criteria that differentiate (SNIP, GraSP, SynFlow, Taylor) could not, nor use a
        # batch drawn there.
        with torch.inference_mode(False):
            batches = self.batches_for(members, trainer.global_step)
            for m in dict.fromkeys(self.methods[i] for i in members):
                group = [j for j, i in enumerate(members) if self.methods[i] == m]
                chosen = [members[j] for j in group]
                seeds = [self.seeds[i] for i in chosen]
                layer_ks = [self.member_sparsity(members[j], ks[j]) for j in group]
                net.prune(chosen, m, layer_ks, self.prune_output, seeds, batches)
        if trainer.state.fn == TrainerFn.FITTING:
            for opt in trainer.optimizers:
                mask_optimizer_state(opt, net, members)
        for i, k in zip(members, ks, strict=True):
            self.current[i] = k
        self._figures = None
        self.log_prune(pl_module, members)

    def member_sparsity(self, member: int, k: float) -> Sparsity:
        """What member ``member``'s masks are computed at when its nominal sparsity is ``k``:
        ``k`` itself, or the ``layer_sparsity`` profile scaled by ``k`` over its final k."""
        if self.layer_sparsity is None:
            return k
        final = self.sparsities[member]
        ratio = k / final if final else 0.0
        return [lk * ratio for lk in self.layer_sparsity]

    def log_prune(self, pl_module: pl.LightningModule, members: Sequence[int]) -> None:
        """One line per member at its final k; iterative's repeated prunes only at DEBUG."""
        level = logging.DEBUG if self.schedule.QUIET_PRUNES else logging.INFO
        final = [i for i in members if self.current[i] == self.sparsities[i]]
        if not log.isEnabledFor(level if final else logging.DEBUG):
            return
        figures = self.figures(pl_module)
        for i in members:
            fig = figures[i]
            log.log(
                level if i in final else logging.DEBUG,
                "m%d/pruned %s to k=%.3g: global %.4f, effective %.4f, %d of %d weights kept",
                i,
                self.names[i],
                self.current[i],
                fig["sparsity/global"],
                fig["sparsity/effective"],
                fig["params/nonzero"],
                fig["params/total"],
            )

    def figures(self, pl_module: pl.LightningModule) -> list[dict[str, float]]:
        """Every member's sparsity report as its masks are now (counted again only after
        the masks changed: on a CPU, a count of 60 challenge MLPs takes about a second)."""
        if self._figures is None:
            ks = [k or 0.0 for k in self.current]
            self._figures = pl_module.net.sparsity(ks, self.prune_output)
        return self._figures

    def record_figures(self, pl_module: pl.LightningModule, prefix: str = "") -> None:
        """Hand every member's figures to the module's log as ``m<i>/<prefix><figure>``."""
        pl_module.record(
            {
                f"m{i}/{prefix}{key}": value
                for i, fig in enumerate(self.figures(pl_module))
                for key, value in fig.items()
            }
        )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Say so when the schedule will do nothing in this run: silence would look like a
        method that ran (a short RigL run never reaching its first update)."""
        if why := self.schedule.idle(int(trainer.num_training_batches)):
            log.warning(why)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        spe, step = int(trainer.num_training_batches), trainer.global_step
        if self.schedule.releases_before(step, spe):
            pl_module.net.release(range(len(self.methods)))
            self._figures = None
        targets = [self.schedule.target(step, spe, k) for k in self.sparsities]
        due = [i for i, k in enumerate(targets) if k is not None and k != self.current[i]]
        if due:
            self.prune(trainer, pl_module, due, [targets[i] for i in due])  # type: ignore[misc]
            if self.schedule.after_prune is not None:
                rewind(pl_module, self.seeds, self.schedule.after_prune == "reinit")
        fraction = self.schedule.topology_update(step, spe)
        if fraction:
            self._grown = self._grown + move_weights(
                trainer,
                pl_module,
                fraction,
                (self.schedule.drop, self.schedule.grow),
                self.prune_output,
                self.seeds,
                lambda: self.batches_for(range(len(self.methods)), step, force=True),
            )

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any
    ) -> None:  # (outputs, batch, batch_idx): what is pruned depends on the step alone
        if self.schedule.prunes_after(trainer.global_step, int(trainer.num_training_batches)):
            self.prune(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.record_figures(pl_module)
        if self._grown is not None:  # sparse training: weights grown this epoch, per member
            grown = (
                self._grown.tolist() if isinstance(self._grown, Tensor) else [0] * len(self.methods)
            )
            pl_module.record({f"m{i}/topology/grown": float(n) for i, n in enumerate(grown)})
            self._grown = 0

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = [i for i, k in enumerate(self.current) if k != self.sparsities[i]]
        if due:
            self.prune(trainer, pl_module, due)
        self.record_figures(pl_module, "final/")

    def state_dict(self) -> dict[str, Any]:
        return {"current": list(self.current)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.current = list(state_dict["current"])
        self._figures = None
