"""Lightning callbacks: when to prune each member, weight averaging, the fine-tune guard, and
a one-line summary per epoch (the periodic checkpoint of long jobs is ``resume.LastCheckpoint``).

Unlike Lightning's own ``ModelPruning``, ``PruningCallback`` never touches the output layer
unless asked, prunes *before* the evaluation that is reported (never after the last
validation), and logs every sparsity figure to the CSV log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor

from prunelab.config.schema import ScheduleConfig
from prunelab.criteria import CRITERIA, Batch
from prunelab.data import BatchLoader, scoring_batches
from prunelab.dst import update_topology, zero_optimizer_state
from prunelab.module import member_accuracy
from prunelab.nets import StackedMLP, fresh_weights
from prunelab.pruning import Sparsity, prunable_layers
from prunelab.results import save_state_atomic
from prunelab.selection import Method

log = logging.getLogger(__name__)


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

    The callback only asks the schedule (``config.schema.ScheduleConfig``): before each step,
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
        schedule: ScheduleConfig,
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
        self.score_batches = score_batches
        self.score_batch_size = score_batch_size
        self.data: BatchLoader | None = None
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
        self.data = loader

    def batches_for(self, members: Sequence[int], event: int, force: bool = False) -> list[Batch]:
        """Scoring batches of ``members`` at prune event ``event`` (none for a method that
        does not need data, unless ``force``); x is (M, B, in) over *all* members when seeds
        differ."""
        if not force and not any(self.methods[i].needs_data for i in members):
            return []
        if self.data is None:
            raise RuntimeError("a criterion needs data but the callback was given no loader")
        return scoring_batches(self.data.x, self.data.y, self.seeds, event,
                               self.score_batches, self.score_batch_size)  # fmt: skip

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

    def rewind(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Lottery: every member's surviving weights back to their snapshot (or fresh ones,
        drawn from each member's own reinit stream), and a fresh optimizer state."""
        fresh = None
        reinit = self.schedule.after_prune == "reinit"
        if reinit:
            weight = pl_module.net.layers[0].weight
            fresh = fresh_weights(pl_module.net.sizes, self.seeds, weight.device, weight.dtype)
        pl_module.rewind(fresh)
        log.info(
            "rewound %s to %s",
            "members" if len(self.seeds) > 1 else "the model",
            "fresh random weights (reinit control)" if reinit else "the snapshot",
        )

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
                self.rewind(trainer, pl_module)
        fraction = self.schedule.topology_update(step, spe)
        if fraction:
            self.move_weights(trainer, pl_module, fraction)

    def move_weights(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, fraction: float
    ) -> None:
        """Sparse training's drop-and-grow (``dst.update_topology``) of every member at once:
        ``fraction`` of each pruned layer's live weights move; the optimizer state of every
        dead and every newly grown weight is zeroed, in one pass per buffer; the count of
        grown weights is added to this epoch's ``topology/grown``."""
        net, step = pl_module.net, trainer.global_step
        drop = CRITERIA.get(self.schedule.drop)()
        grow = CRITERIA.get(self.schedule.grow)()
        batches: list[Batch] = []
        if drop.needs_data or grow.needs_data:
            batches = self.batches_for(range(len(self.methods)), step, force=True)
        pruned = [i for i, p in enumerate(prunable_layers(len(net.layers), self.prune_output)) if p]
        weights = [layer.weight.data for layer in net.layers]
        grown = update_topology(weights, net.all_masks(), pruned, drop, grow, fraction,
                                self.seeds, step, batches)  # fmt: skip
        moved = [net.layers[i] for i in pruned]  # only their masks changed
        fresh = [
            ~layer.mask | g.to(layer.mask.device) for layer, g in zip(moved, grown, strict=True)
        ]
        for opt in trainer.optimizers:
            zero_optimizer_state(opt, [layer.weight for layer in moved], fresh)
        self._grown = self._grown + sum(g.sum(dim=(1, 2)) for g in grown)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
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


class WeightAveraging(pl.Callback):
    """The dense model as the mean of the weights at the end of each of the dense phase's
    last ``epochs`` epochs (Polyak averaging; SWA without batch norm to recompute).

    A model trained at a high rate and averaged sits in a wider basin than one annealed to a
    point, which is what a one-shot prune needs: removing most of the weights at once is a
    large perturbation (docs/RESULTS.md, "Which dense phase"). Applied after the last step of
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
        weights = [layer.weight for layer in pl_module.net.layers]
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
    needs that rate to recover (docs/RESULTS.md measures both, "Why a guard"), and the members
    of a stack share one rate. The test split is never consulted.
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
        self.before = [layer.weight.detach().clone() for layer in pl_module.net.layers]
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
            for layer, before in zip(pl_module.net.layers, self.before, strict=True):
                layer.weight[idx] = before.to(layer.weight)[idx]
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


class EpochSummary(pl.Callback):
    """One readable line per epoch instead of a progress bar (sweeps write to files).

    One member: its figures. A stack: each figure's range over the members. Also times each
    epoch; ``epoch_times`` (the result's ``epoch_times_s``, and their median ``epoch_time_s``,
    what ``scripts/bench_gpu.py`` and ``scripts/bench_overhead.py`` compare with a bare
    PyTorch loop) span from one epoch's start to the next one's (or, for the last, to the end
    of training): training, validation, pruning, every callback, the log row, the
    learning-rate step and any checkpoint, which the line printed at the epoch's end cannot
    wait for. The printed seconds are the epoch's up to that line.
    """

    KEYS = ("train/loss", "train/acc", "val/acc", "test/acc", "sparsity/global")

    def __init__(self) -> None:
        super().__init__()
        self.epoch_times: list[float] = []
        self._started: float | None = None

    def _close_epoch(self) -> None:
        if self._started is not None:
            self.epoch_times.append(time.perf_counter() - self._started)
            self._started = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_epoch()
        self._started = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_epoch()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        m = pl_module.figures
        n = len(pl_module.net)
        parts = []
        for key in self.KEYS:
            values = [float(m[k]) for i in range(n) if (k := f"m{i}/{key}") in m]
            if len(values) == 1:
                parts.append(f"{key} {values[0]:.4f}")
            elif values:
                parts.append(f"{key} {min(values):.4f}–{max(values):.4f}")
        members = f"  {n} members" if n > 1 else ""
        # After the figures were read to the host, which waited for the device's work.
        started = self._started if self._started is not None else time.perf_counter()
        seconds = time.perf_counter() - started
        log.info(
            "epoch %d/%d%s  %s  %.2f s",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            members,
            "  ".join(parts),
            seconds,
        )


class EpochBar(TQDMProgressBar):
    """Lightning's progress bar for a single run in a terminal: the epoch, its steps, and the
    last finished epoch's loss and accuracies (member 0's; the module records figures once per
    epoch, so no step waits for the device to update the bar).

    One bar serves the run: none for validation, sanity checks or the final test (each would
    print a bar of its own, "Testing DataLoader 2" after ours). While it is shown, the log
    lines that go to the terminal are written through ``tqdm.write``, which clears the bar,
    prints the line and redraws the bar below it: a log line never starts in the middle of
    the bar's line."""

    KEYS = ("train/loss", "train/acc", "val/acc")

    def __init__(self) -> None:
        super().__init__()
        self._streams: list[tuple[logging.StreamHandler, Any]] = []

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        figures = getattr(pl_module, "figures", {})
        return {k: f"{figures[f'm0/{k}']:.4f}" for k in self.KEYS if f"m0/{k}" in figures}

    def init_sanity_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_validation_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_test_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        for handler in logging.getLogger().handlers:
            terminal = getattr(handler.stream, "isatty", lambda: False)()
            if type(handler) is logging.StreamHandler and terminal:
                self._streams.append((handler, handler.setStream(BarSafeStream(handler.stream))))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for handler, stream in self._streams:
            handler.setStream(stream)
        self._streams.clear()
        super().teardown(trainer, pl_module, stage)


class BarSafeStream:
    """A terminal stream for log lines while a progress bar is shown: each line goes through
    ``tqdm.write`` (bar cleared, line printed, bar redrawn)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        if text.strip("\n"):
            Tqdm.write(text.rstrip("\n"), file=self.stream)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return bool(self.stream.isatty())
