"""Stacked training: M models trained as one, for GPUs that one small MLP leaves idle.

Every weight gets a leading member axis, ``(M, out, in)``, and one batched matmul runs all M
members on the same batch. The loss is the *sum* of the members' mean cross-entropies, so each
member's gradient is exactly its own, and Adam, being elementwise, then updates each member as
its separate run would: a stacked run equals M separate runs with the same seed and batches
(``tests/test_stacked.py``). Each member has its own strategy, k, mask, pruning callback,
``metrics.csv`` and ``result.json``, so the report cannot tell the difference.

``hydra/launcher=stacked`` turns a sweep into stacked runs: jobs that differ only in strategy
and sparsity (same seed, schedule, data, optimiser) share one run. On a 2-core CPU this does
not pay (``scripts/bench_train.py``); on a GPU it is the fast path.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger
from torch import Tensor, nn

from prunelab import cache
from prunelab import train as tr  # the single-run pieces, shared
from prunelab.errors import ConfigError, TrainingError
from prunelab.model import MaskedMLP, build_optimizers, check_optim, set_loader_epoch
from prunelab.results import atomic_path, config_hash, read_result, write_error
from prunelab.sparse import compact

log = logging.getLogger("prunelab")

STACK_DIR = ".stacked"
# Keys in which the members of one stacked run may differ (each has its own folder and
# logger); everything else must be equal.
MEMBER_KEYS = ("strategy", "sparsity", "paths", "logger", "save_model")


class StackedLayer(nn.Module):
    """M bias-free linear layers, ``weight`` and boolean ``mask`` of shape (M, out, in)."""

    def __init__(self, weight: Tensor, mask: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (B, in) shared by all members, or (M, B, in); returns (M, B, out)."""
        return torch.matmul(x, (self.weight * self.mask).transpose(1, 2))


class StackedMLP(nn.Module):
    """M ``MaskedMLP`` of the same sizes as one module; ``forward`` gives (M, B, classes)."""

    def __init__(self, members: Sequence[MaskedMLP]) -> None:
        super().__init__()
        if not members:
            raise ValueError("a stacked model needs at least one member")
        self.sizes = list(members[0].sizes)
        if any(list(m.sizes) != self.sizes for m in members):
            raise ValueError("stacked members must all have the same sizes")
        self.layers = nn.ModuleList(
            StackedLayer(
                torch.stack([m.layers[i].weight.detach() for m in members]).clone(),
                torch.stack([m.layers[i].mask for m in members]).clone(),
            )
            for i in range(len(self.sizes) - 1)
        )

    def __len__(self) -> int:
        return self.layers[0].weight.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)

    def unstack(self, i: int) -> MaskedMLP:
        """A standalone copy of member ``i`` (for pruning, figures, export, saving)."""
        with torch.device("meta"):  # no init: no time spent, no RNG drawn
            net = MaskedMLP(self.sizes)
        weight = self.layers[0].weight
        net = net.to_empty(device=weight.device).to(weight.dtype)
        with torch.no_grad():
            for src, dst in zip(self.layers, net.layers, strict=True):
                dst.weight.copy_(src.weight[i])
                dst.mask.copy_(src.mask[i])
        return net

    @torch.no_grad()
    def load_member(self, i: int, net: MaskedMLP) -> None:
        """Write ``net``'s weights and masks into member ``i``."""
        for src, dst in zip(net.layers, self.layers, strict=True):
            dst.weight[i].copy_(src.weight)
            dst.mask[i].copy_(src.mask)

    def member(self, i: int) -> Member:
        return Member(self, i)


@dataclass(frozen=True)
class Member:
    """One member of a ``StackedMLP`` with ``MaskedMLP``'s pruning interface, which is all
    ``callbacks.PruningCallback`` needs: the same code prunes a member and a lone model."""

    stack: StackedMLP
    index: int

    def prune(self, strategy: str, k: float, prune_output: bool = False, seed: int = 0) -> None:
        net = self.stack.unstack(self.index)
        net.prune(strategy, k, prune_output, seed)
        self.stack.load_member(self.index, net)

    @torch.no_grad()
    def release(self) -> None:
        for layer in self.stack.layers:
            layer.mask[self.index].fill_(True)

    def sparsity(self, k: float, prune_output: bool = False) -> dict[str, float]:
        return self.stack.unstack(self.index).sparsity(k, prune_output)


class StackedModule(pl.LightningModule):
    """Trains a :class:`StackedMLP`; logs ``m<i>/<split>/{loss,acc}`` once per epoch.

    Per-member sums are kept on the device and logged at epoch end: logging M members every
    step would cost more than the step itself on a GPU.
    """

    def __init__(
        self,
        members: Sequence[MaskedMLP],
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        lr_schedule: str = "constant",
        dense_epochs: int = 0,
        finetune_lr_scale: float = 1.0,
        total_epochs: int | None = None,
        val_splits: tuple[str, ...] = ("val", "test"),
    ) -> None:
        super().__init__()
        check_optim(optimizer, lr_schedule, lr)
        self.save_hyperparameters(ignore=["members"])
        self.net = StackedMLP(members)
        self.val_splits = val_splits
        self.test_splits: tuple[str, ...] = ("train", "val", "test")
        self.last_losses: Tensor | None = None  # (M,) of the last training step, for tests
        self._sums: dict[str, Tensor] = {}
        self._test_nets: list[nn.Module] = []

    def _accumulate(self, split: str, logits: Tensor, y: Tensor) -> Tensor:
        """Per-member mean loss (M,) of this batch; adds loss and correct counts to the sums."""
        m, b, c = logits.shape
        per_sample = F.cross_entropy(logits.reshape(m * b, c), y.repeat(m), reduction="none")
        losses = per_sample.view(m, b).mean(dim=1)
        correct = (logits.argmax(dim=-1) == y).sum(dim=1)
        count = losses.new_full((m,), b)
        batch = torch.stack([losses.detach() * b, correct.to(losses.dtype), count])
        self._sums[split] = self._sums[split] + batch if split in self._sums else batch
        return losses

    def _log_sums(self, prefix: str, splits: Sequence[str]) -> None:
        for split in splits:
            sums = self._sums.pop(split, None)
            if sums is None:
                continue
            loss, acc = (sums[0] / sums[2]).tolist(), (sums[1] / sums[2]).tolist()
            for i in range(len(loss)):
                self.log(f"m{i}/{prefix}{split}/loss", loss[i], on_epoch=True)
                self.log(f"m{i}/{prefix}{split}/acc", acc[i], on_epoch=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def on_train_epoch_start(self) -> None:
        set_loader_epoch(self)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        losses = self._accumulate("train", self.net(x), y)
        if not torch.isfinite(losses).all():
            bad = [i for i, v in enumerate(losses.tolist()) if not math.isfinite(v)]
            raise TrainingError(
                f"loss of stacked member(s) {bad} became non-finite at epoch "
                f"{self.current_epoch}, step {self.global_step}: training diverged; lower "
                f"optim.lr (now {self.hparams.lr})"
            )
        self.last_losses = losses.detach()
        return losses.sum()

    def on_train_epoch_end(self) -> None:
        self._log_sums("", ["train"])

    def validation_step(
        self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        x, y = batch
        self._accumulate(self.val_splits[dataloader_idx], self.net(x), y)

    def on_validation_epoch_end(self) -> None:
        self._log_sums("", self.val_splits)

    def on_test_start(self) -> None:
        # After the pruning callbacks' on_test_start: each member is at its final k.
        self._test_nets = [compact(self.net.unstack(i)).eval() for i in range(len(self.net))]

    def test_step(
        self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        x, y = batch
        logits = torch.stack([net(x) for net in self._test_nets])
        self._accumulate(self.test_splits[dataloader_idx], logits, y)

    def on_test_epoch_end(self) -> None:
        self._log_sums("final/", self.test_splits)
        self._test_nets = []

    def configure_optimizers(self) -> dict[str, Any]:
        return build_optimizers(self.net.parameters(), self.hparams)


class MemberLoggers(Logger):
    """Routes ``m<i>/<key>`` to member i's own logger as ``<key>``; unprefixed keys (epoch)
    go to every member. Each member's ``metrics.csv`` then reads like a separate run's."""

    PREFIX = re.compile(r"^m(\d+)/(.*)$")

    def __init__(self, loggers: Sequence[Logger]) -> None:
        super().__init__()
        self.members = list(loggers)

    @property
    def name(self) -> str:
        return "stacked"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass  # each job's .hydra/config.yaml already holds its full config

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        shared: dict[str, float] = {}
        own: dict[int, dict[str, float]] = {}
        for key, value in metrics.items():
            match = self.PREFIX.match(key)
            if match:
                own.setdefault(int(match[1]), {})[match[2]] = value
            else:
                shared[key] = value
        for i, values in own.items():
            self.members[i].log_metrics({**shared, **values}, step)

    def save(self) -> None:
        for logger in self.members:
            logger.save()

    def finalize(self, status: str) -> None:
        for logger in self.members:
            logger.finalize(status)


def stack_key(cfg: DictConfig) -> str:
    """Jobs with equal keys can share one stacked run: equal in all but ``MEMBER_KEYS``."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    return config_hash({k: v for k, v in resolved.items() if k not in MEMBER_KEYS}, length=12)


def group_jobs(cfgs: Sequence[DictConfig], max_members: int) -> list[list[int]]:
    """Indices of ``cfgs`` grouped by ``stack_key``, in order, at most ``max_members`` each."""
    if max_members < 1:
        raise ConfigError(
            f"hydra.launcher.max_members must be ≥ 1, got {max_members} (e.g. max_members=64)"
        )
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        groups.setdefault(stack_key(cfg), []).append(i)
    return [g[j : j + max_members] for g in groups.values() for j in range(0, len(g), max_members)]


def stack_checkpoint(source: Path, target: Path, n_members: int) -> None:
    """Write a copy of a one-model Lightning checkpoint (the dense cache's) with every weight,
    mask and per-weight optimizer buffer repeated over ``n_members``: the stacked run resumes
    from it exactly as each separate run resumes from the original."""
    ckpt = torch.load(source, map_location="cpu", weights_only=True)

    def rep(t: Any) -> Any:
        return t.unsqueeze(0).repeat(n_members, *[1] * t.dim()) if t.dim() >= 2 else t

    ckpt["state_dict"] = {
        k: rep(v) for k, v in ckpt["state_dict"].items() if k.startswith("net.layers.")
    }
    for opt in ckpt.get("optimizer_states", []):
        opt["state"] = {i: {k: rep(v) for k, v in st.items()} for i, st in opt["state"].items()}
    ckpt["callbacks"] = {}  # the dense build's pruning callback never pruned
    ckpt.pop("hyper_parameters", None)
    with atomic_path(target) as tmp:
        torch.save(ckpt, tmp)


def train_stacked(cfgs: Sequence[DictConfig]) -> list[dict[str, Any] | BaseException]:
    """Train the jobs ``cfgs`` (equal ``stack_key``) as one stacked run; per job, its result
    (also written to its ``result.json``) or the exception that stopped it.

    Finished jobs are returned as they are and left out of the stack; a stack that fails as a
    whole (bad config, diverged member) marks each unfinished job failed with ``error.txt``.
    """
    out: list[dict[str, Any] | BaseException | None] = [
        read_result(Path(c.paths.output_dir)) for c in cfgs
    ]
    todo = [i for i, r in enumerate(out) if r is None]
    if not todo:
        return out  # type: ignore[return-value]
    members = [cfgs[i] for i in todo]
    try:
        results = _train_members(members)
    except Exception as e:
        for cfg in members:
            write_error(Path(cfg.paths.output_dir), e)
        results = [e] * len(members)
    for i, r in zip(todo, results, strict=True):
        out[i] = r
    return out  # type: ignore[return-value]


def _train_members(cfgs: Sequence[DictConfig]) -> list[dict[str, Any]]:
    """``train.train`` for M jobs at once (see ``train_stacked``)."""
    base = cfgs[0]
    keys = {stack_key(c) for c in cfgs}
    if len(keys) > 1:
        raise ConfigError(
            "stacked jobs must differ only in strategy and sparsity; group them with "
            "stacked.group_jobs (hydra/launcher=stacked does)"
        )
    for cfg in cfgs:
        tr.check_config(cfg)
        tr.check_writable_dir(Path(cfg.paths.output_dir))
    tr.set_matmul_precision(base)
    tr.quiet_lightning()
    started = time.perf_counter(), time.time()
    data = tr.load_run_data(base)
    n = len(cfgs)
    outs = [Path(c.paths.output_dir) for c in cfgs]
    workdir = outs[0].parent / STACK_DIR / config_hash({"jobs": sorted(map(str, outs))}, 12)
    workdir.mkdir(parents=True, exist_ok=True)

    resume, epoch = tr.resume_point(workdir)
    earlier = [tr.read_rows(o / "metrics.csv", epoch) if resume else [] for o in outs]
    ckpt = resume
    dense_ckpt = None
    if resume is None and base.dense_cache and base.schedule.epochs > 0:
        entry = tr.cached_dense(base, data.sizes, data.train_loader, data.evals)
        dense_ckpt = entry / cache.CHECKPOINT
        ckpt = workdir / "dense-stacked.ckpt"
        stack_checkpoint(dense_ckpt, ckpt, n)
        earlier = [tr.read_rows(entry / cache.METRICS)] * n
    loggers = [hydra.utils.instantiate(c.logger) for c in cfgs]
    for rows, logger in zip(earlier, loggers, strict=True):
        tr.log_rows(rows, logger)

    singles = []
    for cfg in cfgs:  # each member starts where its separate run would
        pl.seed_everything(cfg.seed, workers=False, verbose=False)
        singles.append(MaskedMLP(data.sizes))
    module = StackedModule(
        singles,
        **tr.optim_settings(base),
        val_splits=("val", "test") if base.eval_test_every_epoch else ("val",),
    )
    pruning = [tr.pruning_callback(c, member=i) for i, c in enumerate(cfgs)]
    callbacks = [*pruning, StackedSummary()]
    trainer = tr.build_trainer(
        base, workdir, tr.total_epochs(base), callbacks, MemberLoggers(loggers)
    )
    log.info("stacked run of %d members → %s", n, workdir)
    fit_started = time.perf_counter()
    tr.fit(trainer, module, data.train_loader, data.evals, ckpt)
    fit_time = time.perf_counter() - fit_started
    trainer.test(module, dataloaders=[data.evals[s] for s in module.test_splits], verbose=False)
    for logger in loggers:
        logger.finalize("success")

    results = []
    for i, cfg in enumerate(cfgs):
        net = module.net.unstack(i)
        run = {
            "fit_time_s": fit_time,
            "dense_cache": str(dense_ckpt) if dense_ckpt else None,
            "resumed_after_epoch": epoch + 1 if resume else None,
            "stacked": {"members": n, "index": i, "workdir": str(workdir)},
        }
        final = tr.final_metrics(trainer.callback_metrics, prefix=f"m{i}/")
        result = tr.job_result(cfg, data.raw, final, pruning[i].figures(module), net, run, started)
        tr.save_result(cfg, result, net)
        results.append(result)
    for path in (workdir / tr.LAST_CKPT, workdir / "dense-stacked.ckpt"):
        path.unlink(missing_ok=True)
    return results


class StackedSummary(pl.Callback):
    """One line per epoch for a stacked run: the members' test (or val) accuracy range."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        m = trainer.callback_metrics
        for split in ("test", "val"):
            accs = [float(v) for k, v in m.items() if re.fullmatch(rf"m\d+/{split}/acc", k)]
            if accs:
                log.info(
                    "epoch %d/%d  %d members  %s/acc min %.4f  mean %.4f  max %.4f",
                    trainer.current_epoch + 1,
                    trainer.max_epochs,
                    len(accs),
                    split,
                    min(accs),
                    sum(accs) / len(accs),
                    max(accs),
                )
                return
