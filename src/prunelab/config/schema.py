"""Every setting of a job: its default, type, range and meaning, in one place.

The dataclasses below are the schema of the Hydra config tree. They are registered in
Hydra's ConfigStore (``register``): ``conf/config.yaml`` starts its defaults list with the
root schema, and each ``conf/schedule/*.yaml`` with its schedule's, so Hydra composes every
YAML group *into* these types, with these defaults. The YAML files hold only what a group
choice or a preset changes (MNIST's mean, a preset's epochs, a sweep's grid).

Ranges and choices sit in each field's metadata (``setting``) and are enforced by
``config.checks``, which also refuses what Hydra lets through: a ``+key`` this schema lacks,
``save_model=2`` (OmegaConf reads any integer as a bool), a NaN. Derived values (total
epochs, the learning rate's horizon) are properties of the schedules, so no caller
recomputes them from raw keys.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from prunelab.registry import Registry
from prunelab.schedules import (
    cosine_fraction,
    iterative_prunes_after,
    iterative_releases_at,
    target_sparsity,
)

CHALLENGE_SIZES = [784, 1000, 1000, 500, 200, 10]
# Choices that belong to the schema's own vocabulary; criteria, allocations, schedules and
# datasets are checked against their registries (``config.checks.REGISTRIES``) instead.
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("cosine", "constant")
MATMUL_PRECISIONS = ("highest", "high", "medium")
PRECISIONS = ("32-true", "64-true", "bf16-mixed", "16-mixed")
ACCELERATORS = ("cpu", "gpu", "cuda")


def setting(
    default: Any = MISSING,
    help: str = "",
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple[Any, ...] | None = None,
    example: str | None = None,
    label: str | None = None,
) -> Any:
    """A schema field: its default, a one-line ``help``, and the constraints ``checks``
    enforces: a range (``low``/``high``, open or closed ends; for a list, of each item),
    ``choices``, the ``example`` that error messages suggest, and the ``label`` they name it
    by (``strategy`` for ``strategy.name``)."""
    meta = {
        "help": help,
        "low": low,
        "high": high,
        "low_open": low_open,
        "high_open": high_open,
        "choices": choices,
        "example": example,
        "label": label,
    }
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    name: str = setting(help="the dataset; pick it with data=mnist|fashion_mnist", label="data")
    mean: float = setting(help="per-pixel mean of the training set, subtracted from inputs")
    std: float = setting(
        help="per-pixel std of the training set, inputs are divided by it", low=0, low_open=True
    )
    batch_size: int = setting(512, "training batch size", low=1)
    eval_batch_size: int = setting(10000, "evaluation batch size (no gradients)", low=1)
    eval_train_limit: int | None = setting(
        10000,
        "the reported train accuracy is measured on the first N training images "
        "(null = all of them)",
        low=1,
    )
    limit: int | None = setting(
        None,
        "cap every split (train, val, test) at N samples, for quick runs; null = all",
        low=1,
        example="data.limit=2000",
    )
    download: bool = setting(True, "try the canonical mirrors (checksummed) if no offline copy")


@dataclass
class ModelConfig:
    sizes: list[int] = setting(
        CHALLENGE_SIZES,
        "inputs, hidden layers, classes of the bias-free ReLU MLP",
        low=1,
        example="model.sizes=[784,1000,1000,500,200,10]",
    )


@dataclass
class StrategyConfig:
    """How masks are chosen: a criterion scores each weight or unit, an allocation spreads
    the sparsity over the pruned layers (``selection``). ``strategy=…`` picks a named pair
    from conf/strategy/ (weight = magnitude + uniform, snip = snip + global, …); either half
    can be overridden, and a plug-in named by import path (package.module:Class)."""

    name: str = setting(
        help="the strategy's name, which the report labels its results by; pick one with "
        "strategy=…",
        label="strategy",
        example="strategy=weight",
    )
    criterion: str = setting(
        help="how each weight or unit is scored (higher = kept): magnitude, unit_l2, random, "
        "random_unit, snip, grasp, synflow, taylor, taylor_unit, activation, apoz, "
        "activation_out, lamp, gradient, or a plug-in package.module:Class",
        label="strategy.criterion",
        example="strategy.criterion=snip",
    )
    allocation: str = setting(
        "uniform",
        "how the sparsity is spread over the pruned layers: uniform (k in each), global (one "
        "threshold over all), erk (Erdős–Rényi-Kernel), lamp (LAMP's per-layer counts)",
        label="strategy.allocation",
        example="strategy.allocation=global",
    )
    shuffle: bool = setting(
        False,
        "control: keep the per-layer counts the method chose but draw the kept weights at "
        "random within each layer (Frankle et al. 2021's layerwise shuffle)",
    )
    score_batches: int = setting(
        1,
        "training batches a data-driven criterion (snip, grasp, taylor, activation…) scores "
        "on, drawn from the run's own `score` stream",
        low=1,
    )
    score_batch_size: int = setting(100, "images per scoring batch", low=1)
    prune_output: bool = setting(False, "prune the output layer too (the challenge never does)")
    layer_sparsity: list[float] | None = setting(
        None,
        "one sparsity per pruned layer in place of `sparsity`, which must then be 0 (the "
        "dense reference) or their weighted mean (allocation=uniform only)",
        low=0,
        high=1,
        high_open=True,
        example="strategy.layer_sparsity=[0.92,0.91,0.74]",
    )


@dataclass
class ScheduleConfig:
    """When pruning happens, to what sparsity, and what follows a prune: one class per
    schedule, which the pruning callback, the orchestrator and the dense cache only ask.

    The base trains dense for ``epochs``, prunes once to k at the first step after them
    (``target``), then fine-tunes ``finetune_epochs`` with the masks fixed. A schedule
    overrides what differs: a window of epochs in which masks change (``window_epochs``,
    ``target``, ``releases_before``, ``prunes_after``), a rewind after the prune
    (``after_prune``), the learning rate's horizon (``lr_epochs``). A new schedule is a
    subclass registered in ``SCHEDULES`` (or named by import path in ``schedule.name``)."""

    KIND: ClassVar[str] = ""
    # Repeated prunes (one per epoch of a window) are logged at DEBUG, the final one at INFO.
    QUIET_PRUNES: ClassVar[bool] = False
    # Moves live weights during training (``topology_update``): sparse training's schedules.
    MOVES_WEIGHTS: ClassVar[bool] = False
    # A job of several trainings, one per level, each a result of its own (``levels``).
    RUNS_LEVELS: ClassVar[bool] = False
    # Where the schedule itself is the method (sparse training, IMP): the strategy it usually
    # starts from. Its runs and report rows are then named after the schedule
    # (``config.tree.method_name``: ``rigl``, or ``rigl-weight`` from another strategy).
    USUAL_STRATEGY: ClassVar[str | None] = None
    name: str = setting(help="the schedule; pick it with schedule=…", label="schedule")
    epochs: int = setting(5, "dense training epochs before pruning", low=0)
    finetune_epochs: int = setting(0, "epochs of training after pruning, masks fixed", low=0)

    @property
    def dense_epochs(self) -> int:
        """Epochs trained before the first prune: the dense phase the dense cache shares."""
        return self.epochs

    @property
    def window_epochs(self) -> int:
        """Epochs between the dense phase and fine-tuning in which masks change."""
        return 0

    @property
    def total_epochs(self) -> int:
        return self.dense_epochs + self.window_epochs + self.finetune_epochs

    @property
    def finetune_start(self) -> int:
        """The epoch fine-tuning (masks fixed, ``finetune_lr``) starts at."""
        return self.total_epochs - self.finetune_epochs

    @property
    def lr_epochs(self) -> int:
        """Epochs of the main learning-rate schedule; fine-tuning restarts it after them."""
        return self.dense_epochs

    @property
    def lr_offset(self) -> float:
        """Epochs of the main learning-rate schedule already behind the run's first step: a
        level of iterative magnitude pruning retrains from its rewind point on."""
        return 0.0

    @property
    def start_file(self) -> str | None:
        """A ``MaskedMLP`` state dict of weights and masks (``levels.level_start``) the run
        starts from, its masks final from the first step; None: fresh weights from the seed."""
        return None

    @property
    def saves_weights_at(self) -> tuple[int, str] | None:
        """(step, file): save the weights as they are before that optimizer step."""
        return None

    @property
    def rewind_to(self) -> int | None:
        """The epoch whose weights a lottery ticket is rewound to; None for the others."""
        return None

    @property
    def after_prune(self) -> str | None:
        """What happens to the surviving weights right after the prune: None (they stay),
        ``rewind`` (to the snapshot of epoch ``rewind_to``) or ``reinit`` (fresh ones)."""
        return None

    @property
    def guards_finetuning(self) -> bool:
        """Whether a fine-tune may be undone (``callbacks.FinetuneGuard``): only where there
        is one, and a model from before it to fall back to."""
        return self.finetune_epochs > 0 and self.after_prune is None

    def steps_between_prunes(self, steps_per_epoch: int) -> int:
        """Optimizer steps between two mask updates of the pruning window."""
        return 1

    def target(self, step: int, steps_per_epoch: int, k: float) -> float | None:
        """The sparsity masks must have before optimizer step ``step`` (None: dense still);
        the callback prunes whenever it differs from the masks' current one."""
        return target_sparsity(
            step,
            steps_per_epoch,
            k,
            self.dense_epochs,
            self.window_epochs,
            self.steps_between_prunes(steps_per_epoch),
        )

    def releases_before(self, step: int, steps_per_epoch: int) -> bool:
        """Whether every mask is lifted before step ``step`` (pruned weights regrow)."""
        return False

    def prunes_after(self, steps_done: int, steps_per_epoch: int) -> bool:
        """Whether masks are recomputed at the final k once ``steps_done`` steps are done."""
        return False

    def topology_update(self, step: int, steps_per_epoch: int) -> float | None:
        """The share of live weights to move (drop, then grow as many) before step
        ``step``; None where the topology stays (every schedule but sparse training)."""
        return None

    def idle(self, steps_per_epoch: int) -> str | None:
        """Why this schedule will do nothing in a run of ``steps_per_epoch`` steps an epoch,
        as a one-line warning, or None: known only once the data is (sparse training whose
        first topology update falls after its last)."""
        return None

    def problems(self) -> list[str]:
        """What is wrong with these settings together, as one-line messages."""
        if self.total_epochs == 0:
            return ["schedule.epochs + schedule.finetune_epochs is 0: nothing to train"]
        return []


@dataclass
class OneshotSchedule(ScheduleConfig):
    """Train dense, prune once to `sparsity`, then optionally fine-tune with the masks fixed."""

    KIND: ClassVar[str] = "oneshot"
    name: str = setting("oneshot", "the schedule; pick it with schedule=…", label="schedule")


@dataclass
class AtInitSchedule(ScheduleConfig):
    """Pruning at initialisation (SNIP, GraSP, SynFlow…): prune the freshly initialised net
    to `sparsity` before its first step, then train the sparse net for `epochs` epochs on the
    main learning-rate schedule (no dense phase, no dense cache)."""

    KIND: ClassVar[str] = "init"
    name: str = setting("init", "the schedule; pick it with schedule=…", label="schedule")
    epochs: int = setting(10, "epochs of training of the net pruned at step 0", low=1)

    @property
    def dense_epochs(self) -> int:
        return 0

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.finetune_epochs

    @property
    def lr_epochs(self) -> int:
        return self.epochs


@dataclass
class DynamicSparseSchedule(AtInitSchedule):
    """Sparse training from scratch with a moving topology (SET, RigL): the net starts at
    `sparsity` before its first step (the strategy's mask: random + erk as RigL), and every
    update_every_steps steps drops drop_fraction of each layer's live weights (lowest
    `drop` scores) and grows as many (highest `grow` scores), the fraction decaying by a
    cosine to 0 at end_fraction of training; grown weights start at 0 with a fresh optimizer
    state, and each layer's live count never changes. Defaults from google-research/rigl's
    MNIST script (ΔT = 100, drop fraction 0.3, cosine) and the RigL paper (end at 75 %)."""

    KIND: ClassVar[str] = "set"
    MOVES_WEIGHTS: ClassVar[bool] = True
    USUAL_STRATEGY: ClassVar[str | None] = "random_weight"  # with allocation=erk, as RigL
    name: str = setting("set", "the schedule; pick it with schedule=…", label="schedule")
    epochs: int = setting(20, "epochs of sparse training from scratch", low=1)
    update_every_steps: int = setting(100, "optimizer steps between topology updates (ΔT)", low=1)
    drop_fraction: float = setting(
        0.3, "share of each layer's live weights moved at the first update", low=0, high=1
    )
    end_fraction: float = setting(
        0.75,
        "updates stop after this share of the training steps (the drop fraction reaches 0 "
        "there by a cosine)",
        low=0,
        high=1,
        low_open=True,
    )
    drop: str = setting("magnitude", "criterion whose lowest live weights are dropped")
    grow: str = setting(
        "random", "criterion whose highest dead weights are grown: random (SET), gradient (RigL)"
    )

    def end_step(self, steps_per_epoch: int) -> int:
        """The step from which the topology stays fixed."""
        return round(self.end_fraction * self.epochs * steps_per_epoch)

    def topology_update(self, step: int, steps_per_epoch: int) -> float | None:
        end = self.end_step(steps_per_epoch)
        if step <= 0 or step >= end or step % self.update_every_steps:
            return None
        return cosine_fraction(step, end, self.drop_fraction)

    def idle(self, steps_per_epoch: int) -> str | None:
        end = self.end_step(steps_per_epoch)
        if self.update_every_steps < end:
            return None
        return (
            f"schedule={self.name} will move no weight: its first topology update is due at "
            f"step {self.update_every_steps} (schedule.update_every_steps) but updates stop at "
            f"step {end} (schedule.end_fraction={self.end_fraction:g} of "
            f"{self.epochs * steps_per_epoch} steps), so it trains its first mask as it is; "
            "lower schedule.update_every_steps or train for more steps"
        )

    def problems(self) -> list[str]:
        # here, not at the top: the schema stays importable without torch's start-up cost
        from prunelab.criteria import CRITERIA

        out = []
        for key in ("drop", "grow"):
            name = getattr(self, key)
            if name not in CRITERIA:
                out.append(f"unknown schedule.{key} criterion {name!r}; choose one of: "
                           f"{', '.join(CRITERIA.names())}")  # fmt: skip
            elif CRITERIA.get(name).unit:
                out.append(f"schedule.{key}={name} scores units; sparse training moves "
                           "single weights (use magnitude, random or gradient)")  # fmt: skip
        return out + super().problems()


@dataclass
class RigLSchedule(DynamicSparseSchedule):
    """RigL (Evci et al. 2020): SET's schedule, growing the dead weights with the largest
    dense-gradient magnitude (``criteria.DenseGradient``) on strategy.score_batches batches
    of strategy.score_batch_size images of the run's score stream."""

    KIND: ClassVar[str] = "rigl"
    name: str = setting("rigl", "the schedule; pick it with schedule=…", label="schedule")
    grow: str = setting(
        "gradient", "criterion whose highest dead weights are grown: random (SET), gradient (RigL)"
    )


@dataclass
class GradualSchedule(ScheduleConfig):
    """Zhu & Gupta (2017): a cubic ramp from 0 to `sparsity` over ramp_epochs, masks
    recomputed every prune_every_epochs, then fine-tuning with the masks fixed."""

    KIND: ClassVar[str] = "gradual"
    name: str = setting("gradual", "the schedule; pick it with schedule=…", label="schedule")
    finetune_epochs: int = setting(2, "epochs of training after pruning, masks fixed", low=0)
    ramp_epochs: int = setting(3, "epochs of the cubic ramp from 0 to `sparsity`", low=1)
    prune_every_epochs: float = setting(
        0.1,
        "masks are recomputed every this many epochs of the ramp (at least every step; "
        "1 = once per epoch)",
        low=0,
        low_open=True,
    )

    @property
    def window_epochs(self) -> int:
        return self.ramp_epochs

    def steps_between_prunes(self, steps_per_epoch: int) -> int:
        """``prune_every_epochs`` in steps of this data and batch size, at least one."""
        return max(1, round(self.prune_every_epochs * steps_per_epoch))


@dataclass
class IterativeSchedule(ScheduleConfig):
    """The original challenge's "train with pruning": each of ramp_epochs epochs trains every
    weight (pruned ones regrow from 0) and prunes back to `sparsity` after its last step, so
    every epoch is evaluated at exactly k; the learning rate spans epochs + ramp_epochs."""

    KIND: ClassVar[str] = "iterative"
    QUIET_PRUNES: ClassVar[bool] = True
    name: str = setting("iterative", "the schedule; pick it with schedule=…", label="schedule")
    epochs: int = setting(0, "dense training epochs before the window (0: from the start)", low=0)
    ramp_epochs: int = setting(10, "epochs trained with pruning back to k after each", low=1)

    @property
    def window_epochs(self) -> int:
        return self.ramp_epochs

    @property
    def lr_epochs(self) -> int:
        # Iterative pruning *is* training: its window gets the main schedule too.
        return self.epochs + self.ramp_epochs

    def target(self, step: int, steps_per_epoch: int, k: float) -> float | None:
        return None  # every prune happens after a window epoch's last step (prunes_after)

    def releases_before(self, step: int, steps_per_epoch: int) -> bool:
        return iterative_releases_at(step, steps_per_epoch, self.epochs, self.ramp_epochs)

    def prunes_after(self, steps_done: int, steps_per_epoch: int) -> bool:
        return iterative_prunes_after(steps_done, steps_per_epoch, self.epochs, self.ramp_epochs)


def rewind_problems(rewind_epoch: int, epochs: int) -> list[str]:
    """A rewind point must lie inside the dense training it rewinds into (lottery, IMP)."""
    if rewind_epoch >= epochs:
        return [
            f"schedule.rewind_epoch={rewind_epoch} must be below schedule.epochs={epochs} "
            "(0 rewinds to the initial weights)"
        ]
    return []


@dataclass
class LotterySchedule(ScheduleConfig):
    """Frankle & Carbin (2019), one-shot: train dense, prune, rewind the survivors to their
    values at the start of epoch rewind_epoch (0: the init) and retrain finetune_epochs on the
    dense phase's learning-rate schedule with a fresh optimizer; reinit=true draws fresh
    initial weights instead (the control)."""

    KIND: ClassVar[str] = "lottery"
    name: str = setting("lottery", "the schedule; pick it with schedule=…", label="schedule")
    epochs: int = setting(10, "dense training epochs before pruning", low=1)
    finetune_epochs: int = setting(10, "retraining epochs of the rewound ticket", low=1)
    rewind_epoch: int = setting(
        0, "rewind the survivors to the start of this dense epoch (0: the initial weights)", low=0
    )
    reinit: bool = setting(False, "the control: the ticket's mask with fresh initial weights")

    @property
    def rewind_to(self) -> int | None:
        return self.rewind_epoch

    @property
    def after_prune(self) -> str | None:
        return "reinit" if self.reinit else "rewind"

    def problems(self) -> list[str]:
        return rewind_problems(self.rewind_epoch, self.epochs) + super().problems()


IMP_ARMS = ("ticket", "random", "reinit")


@dataclass
class IMPSchedule(ScheduleConfig):
    """Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; open_lth's
    lottery levels): train `epochs` epochs dense (level 0), then at each of `levels` levels
    remove level_fraction of the weights that remain (the strategy's criterion and
    allocation: per layer with uniform, over all pruned layers with global), rewind the
    survivors to their values at rewind_epoch (or rewind_step) of the dense training and
    retrain the rest of the budget. Every level, and with controls=true its two controls (a
    random mask with the level's per-layer sparsity on the same rewound weights; the level's
    mask on fresh initial weights), is a run of its own under levels/ in the job's folder,
    resumed level by level (``prunelab.levels``). `sparsity` is unused: level L keeps
    (1 − level_fraction)^L of the pruned layers' weights."""

    KIND: ClassVar[str] = "imp"
    RUNS_LEVELS: ClassVar[bool] = True
    USUAL_STRATEGY: ClassVar[str | None] = "weight"
    name: str = setting("imp", "the schedule; pick it with schedule=…", label="schedule")
    epochs: int = setting(10, "the training budget: epochs of the dense level and of each", low=1)
    levels: int = setting(10, "prune-rewind-retrain levels after the dense training", low=1)
    level_fraction: float = setting(
        0.2,
        "share of the remaining weights each level removes",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
    )
    rewind_epoch: int = setting(
        0, "rewind the survivors to the start of this epoch (0: init)", low=0
    )
    rewind_step: int | None = setting(
        None,
        "rewind to this optimizer step of the dense training instead (overrides rewind_epoch)",
        low=0,
    )
    controls: bool = setting(True, "also train both controls at every level")

    def level_sparsity(self, level: int) -> float:
        """The sparsity of level ``level``: 1 − (1 − level_fraction)^level."""
        return 1.0 - (1.0 - self.level_fraction) ** level

    def rewind_steps(self, steps_per_epoch: int) -> int:
        """The optimizer step whose weights the levels rewind to."""
        if self.rewind_step is not None:
            return self.rewind_step
        return self.rewind_epoch * steps_per_epoch

    @property
    def total_epochs(self) -> int:
        return self.epochs

    def problems(self) -> list[str]:
        late = (
            [] if self.rewind_step is not None else rewind_problems(self.rewind_epoch, self.epochs)
        )
        return late + super().problems()


@dataclass
class LevelSchedule(AtInitSchedule):
    """One training of an IMP job (``levels``), never chosen on the command line: the masks
    are set before the first step (``start``: a file of weights and masks the level runner
    wrote) and never change; the rate follows the main schedule of `lr_horizon` epochs from
    epoch `offset` on (a ticket retrains from its rewind point). The dense level instead saves
    its weights at step `capture_step` to `capture` (the rewind point of every later level)."""

    KIND: ClassVar[str] = "imp-level"
    name: str = setting("imp-level", "an IMP level", label="schedule")
    level: int = setting(0, "the level (0: the dense training)", low=0)
    arm: str = setting("ticket", "ticket, random (mask control) or reinit (init control)",
                       choices=IMP_ARMS)  # fmt: skip
    lr_horizon: int = setting(1, "epochs of the main learning-rate schedule", low=1)
    offset: float = setting(0.0, "epochs of that schedule behind the first step", low=0)
    start: str | None = setting(None, "weights and masks to start from (levels ≥ 1)")
    capture_step: int | None = setting(None, "the dense level's rewind point", low=0)
    capture: str | None = setting(None, "where the dense level saves the rewind point")

    @property
    def lr_epochs(self) -> int:
        return self.lr_horizon

    @property
    def lr_offset(self) -> float:
        return self.offset

    @property
    def start_file(self) -> str | None:
        return self.start

    @property
    def saves_weights_at(self) -> tuple[int, str] | None:
        if self.capture_step is None or self.capture is None:
            return None
        return self.capture_step, self.capture

    def target(self, step: int, steps_per_epoch: int, k: float) -> float | None:
        return None  # the masks come with the start state


def is_schedule(obj: object) -> bool:
    return (
        isinstance(obj, type) and issubclass(obj, ScheduleConfig) and dataclasses.is_dataclass(obj)
    )


SCHEDULES: Registry[type[ScheduleConfig]] = Registry("schedule", "schedule", is_schedule)
for _cls in (
    OneshotSchedule,
    AtInitSchedule,
    GradualSchedule,
    IterativeSchedule,
    LotterySchedule,
    DynamicSparseSchedule,
    RigLSchedule,
    IMPSchedule,
):
    SCHEDULES.add(_cls.KIND, _cls)


@dataclass
class OptimConfig:
    """The optimizer. The dense-phase defaults (Adam at a constant 2e-3, the dense model the
    mean of the weights of its last 60 % of epochs) are the recipe measured best on the dense
    model and on one-shot pruning (docs/RESULTS.md, "Which dense phase"); fine-tuning keeps
    its own rate and schedule."""

    name: str = setting("adam", "the optimizer", choices=OPTIMIZERS, label="optim.name")
    lr: float = setting(
        2e-3, "the dense phase's learning rate", low=0, low_open=True, example="optim.lr=1e-3"
    )
    weight_decay: float = setting(0.0, "weight decay (decoupled for adamw)", low=0)
    lr_schedule: str = setting(
        "constant",
        "rate over the dense epochs: constant, or cosine (to ~0 at the last one)",
        choices=LR_SCHEDULES,
    )
    average_fraction: float = setting(
        0.6,
        "the dense model = the mean of the weights at the end of its last epochs, this share "
        "of them (0.6: the last 6 of 10; 0: off)",
        low=0,
        high=1,
        example="optim.average_fraction=0.6",
    )
    finetune_lr: float = setting(
        1e-3,
        "the rate after pruning (fine-tuning, the gradual ramp), whatever the dense phase's",
        low=0,
        low_open=True,
        example="optim.finetune_lr=1e-3",
    )
    finetune_lr_schedule: str = setting(
        "cosine",
        "after pruning: cosine (restart at finetune_lr, decay step by step to ~0) or constant",
        choices=LR_SCHEDULES,
    )

    @property
    def finetune_scale(self) -> float:
        """The fine-tuning rate as a multiple of the dense rate (``module.lr_factor``)."""
        return self.finetune_lr / self.lr

    def average_epochs(self, dense_epochs: int) -> int:
        """How many of ``dense_epochs`` epochs the dense model averages (0: none)."""
        return round(self.average_fraction * dense_epochs)


@dataclass
class TrainerConfig:
    """Keyword arguments of ``pytorch_lightning.Trainer``; pick a set with trainer=cpu|gpu."""

    accelerator: str = setting("cpu", "cpu or gpu", choices=ACCELERATORS, example="trainer=gpu")
    devices: int = setting(1, "devices per job (prunelab trains on one)", low=1, high=1)
    precision: str = setting(
        "32-true", "Lightning precision: bf16 autocast is bf16-mixed", choices=PRECISIONS
    )
    deterministic: bool = setting(True, "deterministic kernels (same bits on every run)")
    enable_progress_bar: bool = setting(False, "Lightning's own bar (see progress_bar)")
    enable_model_summary: bool = setting(False, "print Lightning's model summary")
    log_every_n_steps: int = setting(50, "Lightning's logging interval", low=1)
    num_sanity_val_steps: int = setting(0, "validation steps before training", low=0)


@dataclass
class LoggerConfig:
    """How a job's curves are written; pick it with logger=csv|tensorboard."""

    _target_: str = setting("prunelab.logs.csv_log", "the logger's factory")
    save_dir: str = setting("${paths.output_dir}", "where its files go")


@dataclass
class PathsConfig:
    data_dir: str = setting(
        "${oc.env:PRUNELAB_DATA_DIR,data}", "IDX files of the dataset (else the bundled copy)"
    )
    cache_dir: str = setting(
        "${oc.env:PRUNELAB_CACHE_DIR,outputs/cache/dense}", "the dense cache's entries"
    )
    output_dir: str = setting("${hydra:runtime.output_dir}", "the job's folder (set by Hydra)")


@dataclass
class Config:
    """A job: what to train and prune, how, and where its files go."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    # Any, not ScheduleConfig: a plug-in schedule's YAML has keys the base lacks; ``checks``
    # types the node with the class its ``schedule.name`` names.
    schedule: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    sparsity: float = setting(
        0.9,
        "fraction of the weights (or units, for a unit criterion) removed: in each pruned "
        "layer (allocation=uniform) or over all of them together (global, erk, lamp)",
        low=0,
        high=1,
        high_open=True,
        example="sparsity=0.9 for 90 %",
    )
    seed: int = setting(0, "the run's seed: its init, batch orders and random masks", low=0)
    optim: OptimConfig = field(default_factory=OptimConfig)
    finetune_guard: bool = setting(
        True,
        "undo a fine-tune that did not get finetune_min_correct more validation images "
        "right than the model had right after pruning",
    )
    finetune_min_correct: int = setting(
        10,
        "validation images a fine-tune must get right beyond those the model had right after "
        "pruning to be kept",
        low=0,
    )
    progress_bar: str = setting(
        "auto",
        "a progress bar besides the epoch lines: auto = for a single run whose output "
        "is a terminal",
        choices=("auto", "true", "false"),
    )
    float32_matmul_precision: str = setting(
        "highest",
        "float32 matmuls on GPUs: highest (exact fp32), high (TF32), medium",
        choices=MATMUL_PRECISIONS,
    )
    eval_test_every_epoch: bool = setting(
        True, "evaluate the test split after every epoch (the test-accuracy-vs-epoch curves)"
    )
    save_model: bool = setting(True, "save the final weights and masks as model.pt")
    dense_cache: bool = setting(True, "train each dense phase once and prune copies of it")
    inference_batch_size: int | None = setting(
        64,
        "time the pruned model's inference export against the dense one at this batch "
        "size; null to skip; skipped too when data.limit is set (a quick look: the timing "
        "would take most of its time and say nothing new)",
        low=1,
    )
    checkpoint_every_n_epochs: int = setting(
        0,
        "keep last.ckpt every N epochs so a killed job resumes (0: off)",
        low=0,
        example="checkpoint_every_n_epochs=5",
    )
    checkpoint_max_share: float = setting(
        0.05,
        "skip a checkpoint while saving would exceed this share of the training time",
        low=0,
        low_open=True,
        high=1,
    )
    on_mismatch: str = setting(
        "stop",
        "a job folder holding results of another config: stop (say which keys "
        "differ) or rerun (train again, keeping the old files in .superseded-<id>/)",
        choices=("stop", "rerun"),
    )
    paths: PathsConfig = field(default_factory=PathsConfig)


ROOT_SCHEMA = "prunelab_schema"
SCHEDULE_SCHEMA_GROUP = "prunelab_schema/schedule"


def register() -> None:
    """Put the schema in Hydra's ConfigStore: the root as ``prunelab_schema`` (first in
    ``conf/config.yaml``'s defaults) and each schedule as ``prunelab_schema/schedule/<name>``
    (first in ``conf/schedule/<name>.yaml``'s). Idempotent."""
    store = ConfigStore.instance()
    store.store(name=ROOT_SCHEMA, node=Config)
    for name in SCHEDULES.names():
        store.store(group=SCHEDULE_SCHEMA_GROUP, name=name, node=SCHEDULES.get(name))


def type_hints(cls: type) -> dict[str, Any]:
    """The resolved annotation of every field of ``cls`` (annotations are strings here)."""
    return typing.get_type_hints(cls)


def schema_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def setting_keys() -> dict[str, list[str]]:
    """Every setting a job can have, dotted (``optim.lr``), with the schedules that have it
    for a ``schedule.`` key ([] for the others): what a mistyped key may have meant."""
    keys: dict[str, list[str]] = {}

    def add(cls: type, prefix: str) -> None:
        hints = type_hints(cls)
        for name in schema_fields(cls):
            if dataclasses.is_dataclass(hints[name]):
                add(hints[name], f"{prefix}{name}.")
            elif not (cls is Config and name == "schedule"):  # each schedule's own, below
                keys[f"{prefix}{name}"] = []

    add(Config, "")
    for kind in SCHEDULES.names():
        for name in schema_fields(SCHEDULES.get(kind)):
            keys.setdefault(f"schedule.{name}", []).append(kind)
    return keys


def setting_hint(key: str) -> Any:
    """The type a dotted setting of the schema has (None for a schedule's own key, whose
    class depends on the schedule, and for a key the schema lacks)."""
    cls: Any = Config
    *parents, leaf = key.split(".")
    for part in parents:
        cls = type_hints(cls).get(part) if dataclasses.is_dataclass(cls) else None
    return type_hints(cls).get(leaf) if dataclasses.is_dataclass(cls) else None
