"""The interface every schedule implements, and the base the built-in ones extend.

A schedule is an algorithm with its settings: its dataclass fields are the settings Hydra
composes ``conf/schedule/<name>.yaml`` into (typed and range-checked by ``config.checks``
from their ``setting`` metadata), its methods what the rest of prunelab asks:

- the pruning callback (``callbacks.pruning``): when to prune and to what k (``target``,
  ``prunes_after``), when masks are lifted (``releases_before``), what follows a prune
  (``after_prune``: a rewind or a reinit), the topology updates of sparse training
  (``topology_update``, ``idle``), how loudly it logs (``QUIET_PRUNES``, ``MOVES_WEIGHTS``);
- the module: the learning rate's horizon (``lr_epochs``, ``lr_offset``), the rewind
  snapshot's epoch (``rewind_to``), where fine-tuning starts (``finetune_start``);
- the orchestrator: how long to train (``total_epochs``), the dense phase the cache shares
  (``dense_epochs``), a start file, a saved rewind point, the fine-tune guard;
- the config: what is wrong with the settings together (``problems``), how runs are named
  (``USUAL_STRATEGY``, ``RUNS_LEVELS``), and which workflow trains a job of several runs
  (``WORKFLOW``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from prunelab.schedules.ramps import target_sparsity
from prunelab.settings import setting

SCHEDULE_HELP = "the schedule; pick it with schedule=…"


def schedule_name(kind: str) -> str:
    """The ``name`` setting of the schedule ``kind``: its default, what ``schedule=`` picks."""
    return setting(kind, SCHEDULE_HELP, label="schedule")  # type: ignore[no-any-return]


@dataclass
class Schedule:
    """When pruning happens, to what sparsity, and what follows a prune: one class per
    schedule, which the pruning callback, the module, the orchestrator and the dense cache
    only ask.

    The base trains dense for ``epochs``, prunes once to k at the first step after them
    (``target``), then fine-tunes ``finetune_epochs`` with the masks fixed. A schedule
    overrides what differs: a window of epochs in which masks change (``window_epochs``,
    ``target``, ``releases_before``, ``prunes_after``), a rewind after the prune
    (``after_prune``), the learning rate's horizon (``lr_epochs``). A new schedule is a
    subclass in a module of its own with a YAML in conf/schedule/, registered in
    ``SCHEDULES`` or named by import path in ``schedule.name`` (``tests/plugin_methods``)."""

    name: str = setting(help=SCHEDULE_HELP, label="schedule")
    epochs: int = setting(5, "dense training epochs before pruning", low=0)
    finetune_epochs: int = setting(0, "epochs of training after pruning, masks fixed", low=0)
    # The name ``schedule=`` picks it by in ``SCHEDULES`` (a plug-in's import path instead).
    KIND: ClassVar[str] = ""
    # Repeated prunes (one per epoch of a window) are logged at DEBUG, the final one at INFO.
    QUIET_PRUNES: ClassVar[bool] = False
    # Moves live weights during training (``topology_update``): sparse training's schedules.
    MOVES_WEIGHTS: ClassVar[bool] = False
    # A job of several trainings, one per level, each a result of its own (``levels``).
    RUNS_LEVELS: ClassVar[bool] = False
    # A job of several ordinary runs that its workflow trains above the orchestrator, never
    # in a stack with others: the workflow's name in ``prunelab.workflows`` (``levels``:
    # IMP's; ``sensitivity``: a scan's dense run, then the scan), None for one training.
    WORKFLOW: ClassVar[str | None] = None
    # Where the schedule itself is the method (sparse training, IMP): the strategy it usually
    # starts from. Its runs and report rows are then named after the schedule
    # (``config.tree.method_name``: ``rigl``, or ``rigl-weight`` from another strategy).
    USUAL_STRATEGY: ClassVar[str | None] = None

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
