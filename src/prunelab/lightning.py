"""``Pruning``: prunelab's schedules and methods as a callback for your own ``Trainer`` and
``LightningModule``.

Lightning's own ``ModelPruning`` prunes at epoch ends with ``torch.nn.utils.prune``'s
magnitude and random functions. ``Pruning`` runs any of prunelab's schedules — one-shot,
gradual (Zhu & Gupta's cubic ramp), the challenge's iterative pruning, pruning at
initialisation, SET and RigL's drop-and-grow — with any criterion and allocation of the
registries, step by step as the command line does (``callbacks.pruning`` asks the same
``Schedule`` objects). The masks are ``prunelab.prune``'s: the checkpoint's ``state_dict``
keeps your module's own keys, and the callback's state (its masks, how far the schedule got)
is saved in the checkpoint, so a resumed fit goes on where it stopped.

Every epoch the sparsity of each layer, the effective sparsity and FLOPs go to your logger
as ``pruning/<figure>`` (``SparsityReport.as_dict``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from prunelab.allocation import Allocation
from prunelab.api import (
    LayerK,
    PruningError,
    apply,
    batches_of,
    input_shape,
    masked_net,
    prune,
    remove,
    sparsity_report,
)
from prunelab.config.schema import schema_fields, type_hints
from prunelab.config.values import check_value
from prunelab.criteria import CRITERIA, Criterion
from prunelab.dst import update_topology, zero_optimizer_state
from prunelab.errors import ConfigError
from prunelab.masking import current_masks, installed_masks
from prunelab.schedules import SCHEDULES, Schedule
from prunelab.stack import StackedNet

__all__ = ["Pruning"]

log = logging.getLogger("prunelab.lightning")
BatchToData = Callable[[Any], tuple[Tensor, Tensor]]


def first_two(batch: Any) -> tuple[Tensor, Tensor]:
    """``(x, y)`` of a batch that is a tuple or list whose first two items they are."""
    return batch[0], batch[1]


def make_schedule(schedule: str | Schedule, settings: Mapping[str, Any]) -> Schedule:
    """The ``Schedule`` named ``schedule`` with ``settings`` (its dataclass fields), or the
    one given; refused in one line where a callback cannot run it."""
    if isinstance(schedule, Schedule):
        if settings:
            raise PruningError("give a Schedule instance or a name with settings, not both")
        made = schedule
    else:
        try:
            made = SCHEDULES.get(schedule)(name=schedule, **settings)
        except TypeError as e:
            raise PruningError(f"schedule {schedule!r}: {e}") from None
        except Exception as e:
            raise PruningError(str(e)) from None
    if made.WORKFLOW is not None:
        raise PruningError(
            f"schedule {made.name!r} is a workflow of several runs, which a callback inside one "
            f"fit cannot run; run it with python -m prunelab.train schedule={made.name}"
        )
    if made.after_prune is not None:
        raise PruningError(
            f"schedule {made.name!r} retrains from rewound weights, which a callback inside one "
            f"fit cannot do; run it with python -m prunelab.train schedule={made.name}"
        )
    hints = type_hints(type(made))
    try:  # each setting's type and range, as the command line checks them
        for name, f in schema_fields(type(made)).items():
            check_value(f"schedule.{name}", getattr(made, name), hints[name], f)
    except ConfigError as e:
        raise PruningError(str(e)) from None
    if problems := made.problems():
        raise PruningError(problems[0])
    return made


def scaled(k: LayerK, fraction: float) -> LayerK:
    """``k`` (one value, one per layer, or by layer name) times ``fraction`` of the way."""
    if isinstance(k, (int, float)):
        return float(k) * fraction
    if isinstance(k, Mapping):
        return {name: float(v) * fraction for name, v in k.items()}
    return [float(v) * fraction for v in k]


def mask_optimizer_state(optimizers: Sequence[torch.optim.Optimizer], module: nn.Module) -> None:
    """Zero every per-weight optimizer buffer (Adam's moments, momentum) of the pruned
    weights, so they neither move nor carry momentum into a later regrowth."""
    masks = installed_masks(module)
    weights = [module.get_parameter(name) for name in masks]
    for opt in optimizers:
        zero_optimizer_state(opt, weights, [~mask for mask in masks.values()])


class Pruning(pl.Callback):
    """Prune your own ``LightningModule`` (or its submodule ``module``, e.g. ``"model"``)
    during ``trainer.fit`` to ``sparsity`` by ``criterion`` and ``allocation`` (as
    ``prunelab.prune`` takes them) on the schedule ``schedule`` with its ``settings``:

    - ``"oneshot"`` (``epochs``: dense epochs before the prune, default 5);
    - ``"gradual"`` (``epochs``, ``ramp_epochs``, ``prune_every_epochs``, ``finetune_epochs``);
    - ``"iterative"`` (``epochs``, ``ramp_epochs``: prune back to k after every epoch);
    - ``"init"``: prune before the first step (SNIP, GraSP, SynFlow…);
    - ``"set"``, ``"rigl"``: prune at init, then move ``drop_fraction`` of the live weights
      every ``update_every_steps`` steps (drop by ``drop``, grow by ``grow``), over
      ``epochs`` epochs (``end_fraction`` of them); RigL's usual start is
      ``criterion="random", allocation="erk"``.

    A data-driven criterion scores on the training batch of the step it prunes at (or on
    ``data``, ``batches`` of them, if given); ``batch_to_data`` turns one of your batches into
    ``(inputs, labels)`` (default: its first two items). Where the fit ends before the schedule
    reached ``sparsity``, the module is pruned to it at the end of training, with a warning, so
    what you test is what you asked for; ``make_permanent=True`` then folds the masks in
    (``prunelab.remove``)."""

    def __init__(
        self,
        sparsity: LayerK,
        criterion: str | Criterion | type[Criterion] = "magnitude",
        allocation: str | Allocation | type[Allocation] = "uniform",
        schedule: str | Schedule = "oneshot",
        *,
        module: str | None = None,
        prune_output: bool = False,
        data: Any = None,
        batches: int = 1,
        batch_to_data: BatchToData = first_two,
        seed: int = 0,
        make_permanent: bool = False,
        log_figures: bool = True,
        **settings: Any,
    ) -> None:
        super().__init__()
        self.sparsity = sparsity
        self.criterion = criterion
        self.allocation = allocation
        self.schedule = make_schedule(schedule, settings)
        self.module_path = module
        self.prune_output = prune_output
        self.data = data
        self.batches = batches
        self.batch_to_data = batch_to_data
        self.seed = seed
        self.make_permanent = make_permanent
        self.log_figures = log_figures
        # how far toward ``sparsity`` the masks are (0..1), None while dense
        self.fraction: float | None = None
        self._pending: dict[str, Tensor] | None = None  # masks of a checkpoint, to install
        self._last_batch: Any = None  # what a final prune scores on, what counting probes with
        self._module: nn.Module | None = None

    # ------------------------------------------------------------------ what is pruned

    def target(self, pl_module: pl.LightningModule) -> nn.Module:
        """The module pruned: the ``LightningModule`` itself, or its submodule ``module``."""
        if self.module_path is None:
            return pl_module
        try:
            return pl_module.get_submodule(self.module_path)
        except AttributeError:
            raise PruningError(
                f"{type(pl_module).__name__} has no submodule {self.module_path!r} to prune"
            ) from None

    def scoring_data(self, batch: Any) -> Any:
        """What a data-driven criterion scores on at this step."""
        return self.data if self.data is not None else self.batch_to_data(batch)

    def prune_to(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, fraction: float, batch: Any
    ) -> None:
        """Masks at ``fraction`` of ``sparsity`` (composed with the current ones), the
        optimizer's state of every pruned weight zeroed."""
        module = self.target(pl_module)
        with torch.inference_mode(False), torch.enable_grad():
            prune(
                module, scaled(self.sparsity, fraction), self.criterion, self.allocation,
                self.scoring_data(batch), prune_output=self.prune_output, batches=self.batches,
                seed=self.seed,
            )  # fmt: skip
        mask_optimizer_state(trainer.optimizers, module)
        self.fraction = fraction

    def release(self, pl_module: pl.LightningModule) -> None:
        """Lift every mask: pruned weights, now 0, get gradients again (iterative)."""
        module = self.target(pl_module)
        apply(module, {n: torch.ones_like(m) for n, m in installed_masks(module).items()})
        self.fraction = None

    def move(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, share: float, batch: Any
    ) -> None:
        """Sparse training's drop-and-grow (``dst.update_topology``) on the module's masks in
        place; the optimizer state of dead and newly grown weights zeroed."""
        module = self.target(pl_module)
        drop = CRITERIA.get(self.schedule.drop)()  # type: ignore[attr-defined]
        grow = CRITERIA.get(self.schedule.grow)()  # type: ignore[attr-defined]
        data = self.scoring_data(batch) if drop.needs_data or grow.needs_data else None
        shape = input_shape(module, None, data)
        net = masked_net(module, shape)
        names = list(net.layout.names)
        carrying = installed_masks(module)
        pruned = [i for i, n in enumerate(names) if n in carrying]
        weights = [module.get_parameter(n).data.unsqueeze(0) for n in names]
        masks = [m.unsqueeze(0) for m in current_masks(module, names)]  # views of the buffers
        device = weights[0].device
        scored = [] if data is None else [
            (x.to(device).flatten(1), y.to(device)) for x, y in batches_of(data, self.batches)
        ]  # fmt: skip
        with torch.inference_mode(False):
            grown = update_topology(
                weights, masks, pruned, drop, grow, share, [self.seed], trainer.global_step,
                scored, StackedNet([net]).network(),
            )  # fmt: skip
        params = [module.get_parameter(names[i]) for i in pruned]
        fresh = [~masks[i][0] | g[0].to(device) for i, g in zip(pruned, grown, strict=True)]
        for opt in trainer.optimizers:
            zero_optimizer_state(opt, params, fresh)

    # ------------------------------------------------------------------ Lightning's hooks

    def steps_per_epoch(self, trainer: pl.Trainer) -> int:
        n = trainer.num_training_batches
        if not math.isfinite(n):
            raise PruningError(
                "the Pruning callback counts its schedule in epochs, but this train dataloader "
                "has no length; set Trainer(limit_train_batches=<steps per epoch>)"
            )
        return int(n)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending is not None:  # a resumed fit: the checkpoint's masks
            apply(self.target(pl_module), self._pending)
            self._pending = None
        if why := self.schedule.idle(self.steps_per_epoch(trainer)):
            log.warning(why)
        total = self.schedule.total_epochs
        if trainer.max_epochs is not None and 0 < trainer.max_epochs < total:
            log.warning(
                "schedule %s spans %d epochs but the trainer stops after %d; the module is "
                "pruned to its sparsity at the end of training",
                self.schedule.name, total, trainer.max_epochs,
            )  # fmt: skip

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._last_batch = batch
        spe, step = self.steps_per_epoch(trainer), trainer.global_step
        if self.schedule.releases_before(step, spe):
            self.release(pl_module)
        fraction = self.schedule.target(step, spe, 1.0)
        if fraction is not None and fraction != self.fraction:
            self.prune_to(trainer, pl_module, fraction, batch)
        share = self.schedule.topology_update(step, spe)
        if share:
            self.move(trainer, pl_module, share, batch)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        if self.schedule.prunes_after(trainer.global_step, self.steps_per_epoch(trainer)):
            self.prune_to(trainer, pl_module, 1.0, batch)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.log_figures and self.fraction is not None:
            example = self.batch_to_data(self._last_batch)[0]
            figures = sparsity_report(self.target(pl_module), example).as_dict()
            pl_module.log_dict({f"pruning/{k}": float(v) for k, v in figures.items()})

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.fraction != 1.0:
            log.warning(
                "training ended before schedule %s reached its sparsity; pruned to it now",
                self.schedule.name,
            )
            self.prune_to(trainer, pl_module, 1.0, self._last_batch)
        if self.make_permanent:
            remove(self.target(pl_module))

    def state_dict(self) -> dict[str, Any]:
        """How far the schedule got and the masks (plain tensors: the checkpoint loads with
        ``weights_only=True``)."""
        module = self._module
        masks = {} if module is None else {n: m.cpu() for n, m in installed_masks(module).items()}
        return {"fraction": self.fraction, "masks": masks}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.fraction = state_dict["fraction"]
        self._pending = dict(state_dict["masks"]) or None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._module = self.target(pl_module)
