"""The one orchestrator: ``run_jobs(cfgs)`` trains a list of jobs as one stack.

A single run is a list of one (``run_job``); ``hydra/launcher=stacked`` hands over groups of
jobs that differ only in strategy, sparsity and seed (``group_jobs``). Either way the same
steps run, once: skip finished jobs, check the rest, load the data onto the trainer's device,
resume from ``last.ckpt`` or start from the dense cache, replay earlier log rows, build the
members (each seeded as its separate run would be), fit, test, and write each job's
``result.json``.

On a 2-core CPU a stack does not pay (``scripts/bench_train.py``); on a GPU it is the fast
path, since one small MLP leaves the device mostly idle.
"""

from __future__ import annotations

import functools
import logging
import math
import statistics
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.loggers import Logger

from prunelab import cache
from prunelab.callbacks import (
    EpochBar,
    EpochSummary,
    FinetuneGuard,
    LastCheckpoint,
    PruningCallback,
    WeightAveraging,
)
from prunelab.config import (
    check_max_members,
    check_sizes,
    check_stack,
    optim_settings,
    stack_key,
    total_epochs,
)
from prunelab.data import BatchLoader, RawDataset, dataset_summary, load_dataset, make_splits
from prunelab.errors import TrainingError
from prunelab.logs import MemberLoggers, csv_log
from prunelab.module import PruningModule
from prunelab.nets import MaskedMLP, StackedMLP
from prunelab.results import config_hash, job_result, read_result, save_result, write_error
from prunelab.resume import LAST_CKPT, Rows, read_rows, replay, resumed
from prunelab.sparse import inference_speedup

log = logging.getLogger("prunelab")
STACK_DIR = ".stacked"
DEFAULT_DATA_DIR = "data"  # conf/config.yaml's paths.data_dir without PRUNELAB_DATA_DIR
EXPANDED_CKPT = "dense-stacked.ckpt"
Outcome = dict[str, Any] | BaseException

# Hydra's local launchers run a sweep's jobs in one process: load and normalise the data once.
cached_dataset = functools.lru_cache(maxsize=2)(load_dataset)
cached_splits = functools.lru_cache(maxsize=2)(make_splits)


def group_jobs(cfgs: Sequence[DictConfig], max_members: int) -> list[list[int]]:
    """Indices of ``cfgs`` grouped by ``config.stack_key``, in order, ≤ ``max_members`` each."""
    check_max_members(max_members)
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        groups.setdefault(stack_key(cfg), []).append(i)
    return [g[j : j + max_members] for g in groups.values() for j in range(0, len(g), max_members)]


def run_job(cfg: DictConfig) -> dict[str, Any]:
    """Train, prune and evaluate one job; its ``result.json`` content, or raise its error."""
    outcome = run_jobs([cfg])[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def run_jobs(cfgs: Sequence[DictConfig], progress_bar: bool = False) -> list[Outcome]:
    """Train ``cfgs`` as one stack; per job, its result (also in its ``result.json``) or the
    exception that stopped it (also in its ``error.txt``).

    A job whose folder already holds a finished result returns it without training, so
    re-running an interrupted sweep only does what is missing. A stack fails as a whole (bad
    config, diverged member): each unfinished job is then marked failed. ``progress_bar``
    adds a terminal progress bar (``callbacks.EpochBar``) to the one-line epoch summaries.
    """
    outcomes: list[Outcome | None] = [read_result(Path(c.paths.output_dir)) for c in cfgs]
    for cfg, done in zip(cfgs, outcomes, strict=True):
        if done is not None:
            log.info("%s/result.json exists: returning it without training", cfg.paths.output_dir)
    todo = [i for i, r in enumerate(outcomes) if r is None]
    if todo:
        jobs = [cfgs[i] for i in todo]
        try:
            results: Sequence[Outcome] = train_stack(jobs, progress_bar)
        except Exception as e:
            for cfg in jobs:
                record_failure(Path(cfg.paths.output_dir), e)
            results = [e] * len(jobs)
        for i, r in zip(todo, results, strict=True):
            outcomes[i] = r
    return outcomes  # type: ignore[return-value]


def record_failure(job_dir: Path, error: BaseException) -> None:
    """Leave ``error.txt`` for the report, unless the job dir itself is what failed."""
    try:
        write_error(job_dir, error)
    except OSError as e:
        log.warning("could not write %s/error.txt: %s", job_dir, e)


class Fitted(NamedTuple):
    """What ``fit`` built and trained."""

    trainer: pl.Trainer
    module: PruningModule
    pruning: PruningCallback
    summary: EpochSummary
    checkpoint: LastCheckpoint | None


@dataclass(frozen=True)
class Start:
    """Where a stack's fit starts: a checkpoint or none, and each member's earlier log rows."""

    ckpt: Path | None
    rows: list[Rows]
    resumed_after_epoch: int | None = None
    dense: list[Path] | None = None  # each member's dense-cache checkpoint


def train_stack(cfgs: Sequence[DictConfig], progress_bar: bool = False) -> list[dict[str, Any]]:
    """``run_jobs`` for jobs that all need training."""
    check_stack(cfgs)
    base = cfgs[0]
    torch.set_float32_matmul_precision(base.get("float32_matmul_precision", "highest"))
    quiet_lightning()
    started = time.perf_counter(), time.time()
    raw = load_data(base)
    outs = [Path(c.paths.output_dir) for c in cfgs]
    workdir = stack_workdir(outs)
    workdir.mkdir(parents=True, exist_ok=True)
    seeds = [int(c.seed) for c in cfgs]
    start = starting_point(base, raw, workdir, outs, seeds)  # reads old logs: before the loggers
    loggers = [hydra.utils.instantiate(c.logger) for c in cfgs]
    for rows, logger in zip(start.rows, loggers, strict=True):
        replay(rows, logger)

    if len(cfgs) > 1:
        log.info("stacked run of %d members → %s", len(cfgs), workdir)
    fit_started = time.perf_counter()
    trainer, module, pruning, summary, checkpoint = fit(
        cfgs, raw, workdir, loggers, total_epochs(base), start.ckpt, progress_bar
    )
    fit_time = time.perf_counter() - fit_started
    _, evals = loaders(base, raw, trainer.strategy.root_device, seeds)
    trainer.test(module, dataloaders=[evals[s] for s in module.test_splits], verbose=False)
    for logger in loggers:
        logger.finalize("success")

    results = []
    writing = time.perf_counter()
    figures = pruning.figures(module)
    epoch_time = median_epoch_time(summary.epoch_times)
    for i, (cfg, out) in enumerate(zip(cfgs, outs, strict=True)):
        net = module.net.unstack(i).cpu()
        run = {
            "dataset": raw.name,
            "data_source": raw.source,
            "inference": measure_inference(cfg, net),
            "fit_time_s": fit_time,
            "epoch_time_s": epoch_time,
            "checkpoint_time_s": checkpoint.saved_s if checkpoint else None,
            "dense_cache": str(start.dense[i]) if start.dense else None,
            "resumed_after_epoch": start.resumed_after_epoch,
            "stacked": {"members": len(cfgs), "index": i, "workdir": str(workdir)},
        }
        final = final_metrics(module.figures, f"m{i}/")
        result = job_result(cfg, final, figures[i], run, started)
        save_result(out, result, net.state_dict() if cfg.save_model else None)
        log_result(result, out)
        results.append(result)
    if len(cfgs) > 1:
        log.info("wrote %d results in %.1f s", len(cfgs), time.perf_counter() - writing)
    for path in (workdir / LAST_CKPT, workdir / EXPANDED_CKPT):
        path.unlink(missing_ok=True)
    return results


def stack_workdir(job_dirs: Sequence[Path]) -> Path:
    """Where a stack keeps its checkpoints: the job's own dir for a stack of one, else a
    folder beside the jobs named after them (so re-running the same group resumes)."""
    if len(job_dirs) == 1:
        return job_dirs[0]
    return job_dirs[0].parent / STACK_DIR / config_hash({"jobs": sorted(map(str, job_dirs))}, 12)


def starting_point(
    base: DictConfig, raw: RawDataset, workdir: Path, job_dirs: Sequence[Path], seeds: list[int]
) -> Start:
    """The stack's own ``last.ckpt`` if it left one; else, with dense epochs to train, the
    dense cache's entries of the members' seeds (trained first if absent) stacked over the
    members; else nothing."""
    ckpt, epoch, rows = resumed(workdir, [d / "metrics.csv" for d in job_dirs])
    if ckpt is not None:
        return Start(ckpt, rows, resumed_after_epoch=epoch + 1)
    if base.dense_cache and base.schedule.epochs > 0:
        entries = {seed: dense_entry(with_seed(base, seed), raw) for seed in dict.fromkeys(seeds)}
        members = [entries[seed] for seed in seeds]  # each member from its seed's entry
        sources = [entry / cache.CHECKPOINT for entry in members]
        ckpt = cache.expand(sources, workdir / EXPANDED_CKPT)
        return Start(ckpt, [read_rows(e / cache.METRICS) for e in members], dense=sources)
    return Start(None, rows)


def with_seed(cfg: DictConfig, seed: int) -> DictConfig:
    """``cfg`` with its seed replaced: the config of another seed's dense phase."""
    out = cfg.copy()
    with open_dict(out):
        out.seed = seed
    return out


def fit(
    cfgs: Sequence[DictConfig],
    raw: RawDataset,
    workdir: Path,
    loggers: Sequence[Logger],
    max_epochs: int,
    ckpt: Path | None,
    progress_bar: bool = False,
) -> Fitted:
    """Build the stack of ``cfgs`` and fit it to ``max_epochs``, from ``ckpt`` if given.

    Each member is initialised right after seeding with its job's seed, so member i starts
    exactly where the separate run of job i would. The data goes to the device the trainer
    puts the module on.
    """
    base = cfgs[0]
    members = []
    for cfg in cfgs:
        pl.seed_everything(cfg.seed, workers=False, verbose=False)
        members.append(MaskedMLP(list(cfg.model.sizes)))
    pruning = pruning_callback(cfgs)
    summary = EpochSummary()
    callbacks: list[pl.Callback] = [pruning, summary]
    if base.optim.get("average_epochs", 0):
        callbacks.append(WeightAveraging(base.optim.average_epochs, base.schedule.epochs))
    if guards_finetuning(base):  # after the pruning callback: it sees the final masks
        start = base.schedule.epochs + base.schedule.get("ramp_epochs", 0)
        callbacks.append(FinetuneGuard(start, base.get("finetune_min_gain", 0.0)))
    checkpoint = None
    if base.checkpoint_every_n_epochs:
        every, share = base.checkpoint_every_n_epochs, base.get("checkpoint_max_share", 1.0)
        checkpoint = LastCheckpoint(workdir / LAST_CKPT, every, share)
        callbacks.append(checkpoint)
    settings: dict[str, Any] = OmegaConf.to_container(base.trainer)  # type: ignore[assignment]
    if progress_bar:
        settings["enable_progress_bar"] = True
        callbacks.append(EpochBar())
    trainer = pl.Trainer(
        **settings,
        max_epochs=max_epochs,
        logger=MemberLoggers(loggers),
        callbacks=callbacks,
        enable_checkpointing=False,
        default_root_dir=workdir,
    )
    train_loader, evals = loaders(base, raw, trainer.strategy.root_device, [c.seed for c in cfgs])
    val_splits = ("val", "test") if base.eval_test_every_epoch else ("val",)
    module = PruningModule(
        StackedMLP(members),
        **optim_settings(base),
        val_splits=val_splits,
        steps_per_epoch=len(train_loader),
    )
    val = [evals[s] for s in module.val_splits]
    trainer.fit(module, train_loader, val, ckpt_path=ckpt, weights_only=True)
    return Fitted(trainer, module, pruning, summary, checkpoint)


def guards_finetuning(cfg: DictConfig) -> bool:
    """Whether fine-tuning is checked against the model it started from (``FinetuneGuard``):
    when asked and there is fine-tuning, but not for a lottery ticket, whose retraining
    starts from rewound weights and has nothing to fall back to."""
    return (
        bool(cfg.get("finetune_guard", False))
        and cfg.schedule.finetune_epochs > 0
        and cfg.schedule.name != "lottery"
    )


def median_epoch_time(times: Sequence[float]) -> float | None:
    """Typical seconds per epoch of a fit: the median, leaving out the first epoch (warm-up:
    allocations, kernel selection) when there are others; None if no epoch ran."""
    steady = times[1:] or times
    return statistics.median(steady) if steady else None


def dense_entry(cfg: DictConfig, raw: RawDataset) -> Path:
    """Folder of the dense-cache entry for ``cfg``, training it first if absent."""

    def build(workdir: Path) -> None:
        log.info("training the dense model (%d epochs) for the cache", cfg.schedule.epochs)
        ckpt, _, [rows] = resumed(workdir, [workdir / cache.METRICS])
        csv = csv_log(workdir)
        replay(rows, csv)
        trainer = fit([cfg], raw, workdir, [csv], cfg.schedule.epochs, ckpt).trainer
        csv.finalize("success")
        trainer.save_checkpoint(workdir / cache.CHECKPOINT, weights_only=False)
        (workdir / LAST_CKPT).unlink(missing_ok=True)

    key = cache.dense_key(cache.dense_settings(cfg))
    entry = cache.get_or_build(Path(cfg.paths.cache_dir), key, build)
    log.info("dense model from cache %s", entry)
    return entry


def pruning_callback(cfgs: Sequence[DictConfig]) -> PruningCallback:
    """The pruning callback of a stack of ``cfgs`` (member i is job ``cfgs[i]``; they share
    all but strategy, sparsity and seed, ``config.check_stack``)."""
    cfg = cfgs[0]
    return PruningCallback(
        [c.strategy.name for c in cfgs],
        [c.sparsity for c in cfgs],
        prune_after_epochs=cfg.schedule.epochs,
        prune_output=cfg.strategy.prune_output,
        seeds=[c.seed for c in cfgs],
        ramp_epochs=cfg.schedule.get("ramp_epochs", 0),
        prune_every_steps=cfg.schedule.get("prune_every_steps", 1),
        schedule=cfg.schedule.name,
        layer_sparsity=cfg.strategy.get("layer_sparsity"),
        reinit=bool(cfg.schedule.get("reinit", False)),
    )


def load_data(cfg: DictConfig) -> RawDataset:
    """``cfg``'s dataset (loaded once per process), checked against the model's sizes."""
    data_dir = str(cfg.paths.data_dir)
    explicit = data_dir != DEFAULT_DATA_DIR  # named by the user: no silent fallback
    raw = cached_dataset(cfg.data.name, data_dir, cfg.data.download, explicit)
    log.info(dataset_summary(raw))
    check_sizes(list(cfg.model.sizes), raw.n_features, raw.n_classes, raw.name)
    return raw


def loaders(
    cfg: DictConfig, raw: RawDataset, device: torch.device, seeds: Sequence[int]
) -> tuple[BatchLoader, dict[str, BatchLoader]]:
    """The training loader of a stack of members seeded ``seeds`` (each with its seed's batch
    order) and the evaluation loaders of ``cfg``, their tensors on ``device`` (normalised and
    moved once per process and device)."""
    splits = cached_splits(raw, cfg.data.mean, cfg.data.std, cfg.data.limit, device)
    bs, n = cfg.data.eval_batch_size, cfg.data.eval_train_limit
    evals = {
        "train": BatchLoader(*(t[:n] for t in splits.train), bs),  # a fixed prefix
        "val": BatchLoader(*splits.val, bs),
        "test": BatchLoader(*splits.test, bs),
    }
    train_loader = BatchLoader(*splits.train, cfg.data.batch_size, shuffle=True, seeds=seeds)
    return train_loader, evals


def final_metrics(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """The test-stage figures (``<prefix>final/<split>/<metric>``), checked to be finite."""
    start = f"{prefix}final/"
    final = {k[len(start) :]: float(v) for k, v in metrics.items() if k.startswith(start)}
    for key, value in final.items():
        if not math.isfinite(value):
            raise TrainingError(f"final/{key} is {value}: the pruned model gives non-finite output")
    return final


def measure_inference(cfg: DictConfig, net: MaskedMLP) -> dict[str, Any] | None:
    """What this config's sparsity buys at inference, measured on the CPU
    (``sparse.inference_speedup``); None when ``inference_batch_size`` is null."""
    batch = cfg.inference_batch_size
    return inference_speedup(net, batch_size=batch) if batch else None


def log_result(result: dict[str, Any], job_dir: Path) -> None:
    log.info(
        "%s k=%.3g: test acc %.4f (train %.4f, val %.4f) → %s",
        result["strategy"],
        result["sparsity"],
        result["test_acc"],
        result["train_acc"],
        result["val_acc"],
        job_dir / "result.json",
    )


def unrecovered_note(result: dict[str, Any]) -> str | None:
    """For a model pruned one-shot and never fine-tuned (the challenge's setting, and the
    default of a single run), that its accuracy is the unrecovered one and how to recover it;
    None otherwise. A single run ends with it (``train.py``); a sweep's jobs do not repeat it.
    """
    if result["schedule"] != "oneshot" or result["finetune_epochs"] or not result["sparsity"]:
        return None
    return (
        f"test acc {result['test_acc']:.4f} is the unrecovered accuracy of a one-shot prune "
        "without fine-tuning: add schedule.finetune_epochs=3 to recover it (units at k=0.9: "
        "22.9 → 97.3 % in docs/RESULTS.md)"
    )


def quiet_lightning() -> None:
    """Drop Lightning's start-up chatter; this module logs what a run did instead."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("pytorch_lightning.accelerators.cuda").setLevel(logging.WARNING)
    # The loaders slice in-memory tensors on purpose: there are no workers to add.
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    # The run dir already holds Hydra's files; the CSV logger only ever replaces metrics.csv.
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
