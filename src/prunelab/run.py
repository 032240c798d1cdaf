"""The one orchestrator: ``run_jobs(cfgs)`` trains a list of jobs as one stack.

A single run is a list of one (``run_job``); ``hydra/launcher=stacked`` hands over groups of
jobs that differ only in strategy, sparsity and seed (``group_jobs``). Either way the same
steps run, once: turn each composed config into a checked, typed job (``config.load``),
return the finished jobs whose folders hold a result of the same identity (and refuse a
folder holding another's), check the rest, resume from ``last.ckpt`` or start from the dense
cache, load the data onto the trainer's device, replay earlier log rows, build the members
(each seeded as its separate run would be), fit, test, and write each job's ``result.json``.

On a 2-core CPU a stack does not pay (``scripts/bench_train.py``); on a GPU it is the fast
path, since one small MLP leaves the device mostly idle.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger
from pytorch_lightning.plugins.environments import (
    ClusterEnvironment,
    LightningEnvironment,
    SLURMEnvironment,
)

from prunelab import cache
from prunelab.callbacks import (
    EpochBar,
    EpochSummary,
    FinetuneGuard,
    PruningCallback,
    SaveWeightsAt,
    WeightAveraging,
)
from prunelab.config import (
    Config,
    check_environment,
    check_max_members,
    check_sizes,
    check_stack,
    job_method,
    load,
    stack_key,
)
from prunelab.data import BatchLoader, RawDataset, dataset_summary, load_dataset, make_splits
from prunelab.errors import MismatchError, TrainingError
from prunelab.identity import config_hash, identity
from prunelab.logs import MemberLoggers, csv_log
from prunelab.module import PruningModule
from prunelab.nets import StackedMLP, seeded_mlp
from prunelab.results import (
    check_prior,
    job_result,
    numerics,
    save_result,
    write_error,
)
from prunelab.resume import LAST_CKPT, LAST_MANIFEST, LastCheckpoint, Rows, replay, resumed
from prunelab.resume import read_rows as read_log_rows
from prunelab.sparse import inference_speedup

log = logging.getLogger("prunelab")
STACK_DIR = ".stacked"
DEFAULT_DATA_DIR = "data"  # the schema's paths.data_dir without PRUNELAB_DATA_DIR
EXPANDED_CKPT = "dense-stacked.ckpt"
Outcome = dict[str, Any] | BaseException
# What trains the jobs of ``run_jobs`` that need training: ``train_stack``, or a workflow's
# (``prunelab.workflows``: IMP's levels, each an ordinary run of its own through here).
Train = Callable[[Sequence[Config], bool], list[dict[str, Any]]]

# Hydra's local launchers run a sweep's jobs in one process: load and normalise the data once.
cached_dataset = functools.lru_cache(maxsize=2)(load_dataset)
cached_splits = functools.lru_cache(maxsize=2)(make_splits)


def as_job(cfg: DictConfig | Config) -> Config:
    """A composed config as a checked, typed job (a job stays as it is)."""
    return cfg if isinstance(cfg, Config) else load(cfg)


def group_jobs(cfgs: Sequence[DictConfig | Config], max_members: int) -> list[list[int]]:
    """Indices of ``cfgs`` grouped by ``config.stack_key``, in order, ≤ ``max_members`` each;
    a job of several runs (``RUNS_LEVELS``) in a group of its own, after the others."""
    check_max_members(max_members)
    groups: dict[str, list[int]] = {}
    alone = []  # jobs of several runs each (schedule=imp) never share a stack
    for i, cfg in enumerate(cfgs):
        job = as_job(cfg)
        if job.schedule.RUNS_LEVELS:
            alone.append([i])
        else:
            groups.setdefault(stack_key(job), []).append(i)
    stacks = [
        g[j : j + max_members] for g in groups.values() for j in range(0, len(g), max_members)
    ]
    return [*stacks, *alone]


def run_job(cfg: DictConfig | Config) -> dict[str, Any]:
    """Train, prune and evaluate one job; its ``result.json`` content, or raise its error."""
    outcome = run_jobs([cfg])[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def run_jobs(
    cfgs: Sequence[DictConfig | Config], progress_bar: bool = False, train: Train | None = None
) -> list[Outcome]:
    """Train ``cfgs`` as one stack; per job, its result (also in its ``result.json``) or the
    exception that stopped it (also in its ``error.txt``, unless its folder belongs to
    another config's run).

    A job whose folder already holds a finished result of its identity returns it without
    training, so re-running an interrupted sweep only does what is missing; a folder that
    holds another identity's result stops the stack before any work (``on_mismatch``). A
    stack fails as a whole (bad config, diverged member): each unfinished job is then marked
    failed. ``progress_bar`` adds a terminal progress bar to the one-line epoch summaries;
    ``train`` trains the jobs in place of ``train_stack`` (a workflow's).
    """
    try:
        jobs = [as_job(c) for c in cfgs]
        outcomes: list[Outcome | None] = [prior_result(job) for job in jobs]
    except MismatchError as e:
        return [e] * len(cfgs)
    except Exception as e:
        for cfg in cfgs:
            record_failure(Path(str(cfg.paths.output_dir)), e)
        return [e] * len(cfgs)
    todo = [i for i, r in enumerate(outcomes) if r is None]
    if todo:
        todo_jobs = [jobs[i] for i in todo]
        try:
            results: Sequence[Outcome] = (train or train_stack)(todo_jobs, progress_bar)
        except MismatchError as e:
            results = [e] * len(todo_jobs)
        except Exception as e:
            for job in todo_jobs:
                record_failure(Path(job.paths.output_dir), e)
            results = [e] * len(todo_jobs)
        for i, r in zip(todo, results, strict=True):
            outcomes[i] = r
    return outcomes  # type: ignore[return-value]


def prior_result(job: Config) -> dict[str, Any] | None:
    """The finished result of this job's identity in its folder (``results.check_prior``)."""
    config = dataclasses.asdict(job)
    done = check_prior(Path(job.paths.output_dir), identity(config), config, job.on_mismatch)
    if done is not None:
        log.info("%s/result.json exists: returning it without training", job.paths.output_dir)
    return done


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
    dense: list[Path] | None = None  # each member's dense-cache entry


@dataclass(frozen=True)
class Stack:
    """The jobs of one stack, their folders, and what names the stack as a whole."""

    jobs: list[Config]
    outs: list[Path]
    workdir: Path
    identity: str  # of the stack: its members' identities, in order

    @property
    def base(self) -> Config:
        """The first job: every setting but the members' own is the same in all of them."""
        return self.jobs[0]

    @property
    def seeds(self) -> list[int]:
        return [job.seed for job in self.jobs]


def make_stack(jobs: Sequence[Config]) -> Stack:
    outs = [Path(job.paths.output_dir) for job in jobs]
    ids = [identity(dataclasses.asdict(job)) for job in jobs]
    return Stack(
        list(jobs), outs, stack_workdir(outs), ids[0] if len(ids) == 1 else config_hash(ids)
    )


def train_stack(jobs: Sequence[Config], progress_bar: bool = False) -> list[dict[str, Any]]:
    """``run_jobs`` for jobs that all need training."""
    check_stack(jobs)
    stack = make_stack(jobs)
    base = stack.base
    check_environment(base)
    torch.set_float32_matmul_precision(base.float32_matmul_precision)
    quiet_lightning()
    if base.schedule.RUNS_LEVELS:  # a workflow of runs, not one training
        raise ValueError(f"schedule={base.schedule.name} runs levels: start it with "
                         "prunelab.workflows.run_jobs")  # fmt: skip
    started = time.perf_counter(), time.time()
    stack.workdir.mkdir(parents=True, exist_ok=True)
    config = dataclasses.asdict(base)
    ckpt, epoch, rows = resumed(stack.workdir, [d / "metrics.csv" for d in stack.outs],
                                stack.identity, config, base.on_mismatch)  # fmt: skip
    raw = load_data(base)
    start = starting_point(stack, raw, ckpt, epoch, rows)  # reads old logs: before the loggers
    loggers = [logger_of(job) for job in jobs]
    for member_rows, logger in zip(start.rows, loggers, strict=True):
        replay(member_rows, logger)

    if len(jobs) > 1:
        log.info("stacked run of %d members → %s", len(jobs), stack.workdir)
    fit_started = time.perf_counter()
    checkpointing = Checkpointing(stack.identity, config)
    fitted = fit(stack, raw, loggers, base.schedule.total_epochs, start.ckpt, checkpointing,
                 progress_bar)  # fmt: skip
    trainer, module, pruning, summary, checkpoint = fitted
    fit_time = time.perf_counter() - fit_started
    device = trainer.strategy.root_device
    _, evals = loaders(base, raw, device, stack.seeds)
    trainer.test(module, dataloaders=[evals[s] for s in module.test_splits], verbose=False)
    for logger in loggers:
        logger.finalize("success")

    results = []
    writing = time.perf_counter()
    figures = pruning.figures(module)
    epoch_time = median_epoch_time(summary.epoch_times)
    env = numerics(device, module.net.layers[0].weight.dtype, base.trainer.precision)
    for i, (job, out) in enumerate(zip(jobs, stack.outs, strict=True)):
        net = module.net.unstack(i).cpu()
        run = {
            "dataset": raw.name,
            "data_source": raw.source,
            "data_sha256": raw.digest,
            "numerics": env,
            "inference": measure_inference(job, net),
            "fit_time_s": fit_time,
            "epoch_time_s": epoch_time,
            "epoch_times_s": summary.epoch_times,
            "checkpoint_time_s": checkpoint.saved_s if checkpoint else None,
            "dense_cache": cache_record(start.dense[i]) if start.dense else None,
            "resumed_after_epoch": start.resumed_after_epoch,
            "stacked": {"members": len(jobs), "index": i, "workdir": str(stack.workdir)},
        }
        final = final_metrics(module.figures, f"m{i}/")
        result = job_result(dataclasses.asdict(job), final, figures[i], run, started)
        save_result(out, result, net.state_dict() if job.save_model else None)
        log_result(result, out)
        results.append(result)
    if len(jobs) > 1:
        log.info("wrote %d results in %.1f s", len(jobs), time.perf_counter() - writing)
    for name in (LAST_CKPT, LAST_MANIFEST, EXPANDED_CKPT):
        (stack.workdir / name).unlink(missing_ok=True)
    return results


def logger_of(job: Config) -> Logger:
    """The job's logger (``logger=csv|tensorboard``), writing into its folder."""
    return hydra.utils.instantiate(dataclasses.asdict(job.logger))


def cache_record(entry: Path) -> dict[str, Any]:
    """Where a job's dense model came from, and the numeric environment that trained it."""
    manifest = cache.read_manifest(entry)
    return {"entry": str(entry), "numerics": manifest.get("numerics")}


def stack_workdir(job_dirs: Sequence[Path]) -> Path:
    """Where a stack keeps its checkpoints: the job's own dir for a stack of one, else a
    folder beside the jobs named after them (so re-running the same group resumes)."""
    if len(job_dirs) == 1:
        return job_dirs[0]
    return job_dirs[0].parent / STACK_DIR / config_hash({"jobs": sorted(map(str, job_dirs))}, 12)


def starting_point(
    stack: Stack, raw: RawDataset, ckpt: Path | None, epoch: int, rows: list[Rows]
) -> Start:
    """The stack's own ``last.ckpt`` (``ckpt``, after ``epoch``, with each member's ``rows``)
    if it left one; else, with dense epochs to train, the dense cache's entries of the
    members' seeds (trained first if absent) stacked over the members; else nothing."""
    if ckpt is not None:
        return Start(ckpt, rows, resumed_after_epoch=epoch + 1)
    base = stack.base
    if base.dense_cache and base.schedule.dense_epochs > 0:
        entries = {
            seed: dense_entry(with_seed(base, seed), raw) for seed in dict.fromkeys(stack.seeds)
        }
        members = [entries[seed] for seed in stack.seeds]  # each member from its seed's entry
        sources = [entry / cache.CHECKPOINT for entry in members]
        expanded = cache.expand(sources, stack.workdir / EXPANDED_CKPT)
        return Start(expanded, [read_log_rows(e / cache.METRICS) for e in members], dense=members)
    return Start(None, rows)


def with_seed(job: Config, seed: int) -> Config:
    """``job`` with its seed replaced: the job of another seed's dense phase."""
    return dataclasses.replace(job, seed=seed)


@dataclass(frozen=True)
class Checkpointing:
    """What a stack's ``last.json`` records: the identity it resumes under, and the config
    that names the keys a mismatch differs in."""

    identity: str
    config: dict[str, Any] | None


def fit(
    stack: Stack,
    raw: RawDataset,
    loggers: Sequence[Logger],
    max_epochs: int,
    ckpt: Path | None,
    checkpointing: Checkpointing,
    progress_bar: bool = False,
) -> Fitted:
    """Build ``stack``'s members and fit them to ``max_epochs``, from ``ckpt`` if given.

    Each member is initialised from its seed's ``init`` stream (``nets.seeded_mlp``), so
    member i starts exactly where the separate run of job i would. The data goes to the
    device the trainer puts the module on.
    """
    base = stack.base
    members = [seeded_mlp(base.model.sizes, job.seed) for job in stack.jobs]
    start_file = base.schedule.start_file
    if start_file is not None:  # an IMP level: weights and final masks from the level runner
        state = torch.load(start_file, weights_only=True)
        for member in members:
            member.load_state_dict(state)
    pruning = PruningCallback(
        [job_method(job) for job in stack.jobs],
        [job.sparsity for job in stack.jobs],
        stack.seeds,
        base.schedule,
        base.strategy.prune_output,
        base.strategy.layer_sparsity,
        names=[job.strategy.name for job in stack.jobs],
        score_batches=base.strategy.score_batches,
        score_batch_size=base.strategy.score_batch_size,
    )
    if start_file is not None:
        pruning.current = [job.sparsity for job in stack.jobs]
    summary = EpochSummary()
    callbacks: list[pl.Callback] = [pruning, summary]
    if base.schedule.saves_weights_at is not None:
        callbacks.append(SaveWeightsAt(*base.schedule.saves_weights_at))
    dense_epochs = base.schedule.dense_epochs
    averaged = base.optim.average_epochs(dense_epochs)
    if averaged:
        callbacks.append(WeightAveraging(averaged, dense_epochs))
    if guards_finetuning(base):  # after the pruning callback: it sees the final masks
        callbacks.append(FinetuneGuard(base.schedule.finetune_start, base.finetune_min_correct))
    checkpoint = None
    if base.checkpoint_every_n_epochs:
        checkpoint = LastCheckpoint(
            stack.workdir / LAST_CKPT,
            base.checkpoint_every_n_epochs,
            base.checkpoint_max_share,
            checkpointing.identity,
            checkpointing.config,
        )
        callbacks.append(checkpoint)
    settings = dataclasses.asdict(base.trainer)
    if progress_bar:
        settings["enable_progress_bar"] = True
        callbacks.append(EpochBar())
    trainer = pl.Trainer(
        **settings,
        max_epochs=max_epochs,
        logger=MemberLoggers(loggers),
        callbacks=callbacks,
        enable_checkpointing=False,
        default_root_dir=stack.workdir,
        plugins=[cluster_environment()],
    )
    train_loader, evals = loaders(base, raw, trainer.strategy.root_device, stack.seeds)
    pruning.use_data(train_loader)
    val_splits = ("val", "test") if base.eval_test_every_epoch else ("val",)
    module = PruningModule(
        StackedMLP(members),
        base.optim,
        base.schedule,
        val_splits=val_splits,
        steps_per_epoch=len(train_loader),
    )
    val = [evals[s] for s in module.val_splits]
    trainer.fit(module, train_loader, val, ckpt_path=ckpt, weights_only=True)
    return Fitted(trainer, module, pruning, summary, checkpoint)


def guards_finetuning(job: Config) -> bool:
    """Whether fine-tuning is checked against the model it started from (``FinetuneGuard``):
    when asked and the schedule has a fine-tune with a model to fall back to (a lottery
    ticket retrains from rewound weights and has none)."""
    return job.finetune_guard and job.schedule.guards_finetuning


def median_epoch_time(times: Sequence[float]) -> float | None:
    """Typical seconds per epoch of a fit: the median, leaving out the first epoch (warm-up:
    allocations, kernel selection) when there are others; None if no epoch ran."""
    steady = times[1:] or times
    return statistics.median(steady) if steady else None


def dense_entry(job: Config, raw: RawDataset) -> Path:
    """Folder of the dense-cache entry for ``job``, training it first if absent or unusable."""
    settings = cache.dense_settings(job, raw.digest)
    key = cache.dense_key(settings)
    meta: dict[str, Any] = {"settings": settings}  # build adds the numerics it trained with

    def build(workdir: Path) -> None:
        log.info("training the dense model (%d epochs) for the cache", job.schedule.dense_epochs)
        ckpt, _, [rows] = resumed(workdir, [workdir / cache.METRICS], key)
        csv = csv_log(workdir)
        replay(rows, csv)
        stack = Stack([job], [workdir], workdir, key)
        trainer = fit(stack, raw, [csv], job.schedule.dense_epochs, ckpt,
                      Checkpointing(key, settings)).trainer  # fmt: skip
        csv.finalize("success")
        trainer.save_checkpoint(workdir / cache.CHECKPOINT, weights_only=False)
        for name in (LAST_CKPT, LAST_MANIFEST):
            (workdir / name).unlink(missing_ok=True)
        meta["numerics"] = numerics(
            trainer.strategy.root_device, torch.float32, job.trainer.precision
        )

    entry = cache.get_or_build(Path(job.paths.cache_dir), key, build, meta,
                               check=cache.probe_checkpoint)  # fmt: skip
    log.info("dense model from cache %s", entry)
    return entry


def load_data(job: Config) -> RawDataset:
    """``job``'s dataset (loaded once per process), checked against the model's sizes."""
    data_dir = str(job.paths.data_dir)
    explicit = data_dir != DEFAULT_DATA_DIR  # named by the user: no silent fallback
    raw = cached_dataset(job.data.name, data_dir, job.data.download, explicit)
    log.info(dataset_summary(raw))
    check_sizes(list(job.model.sizes), raw.n_features, raw.n_classes, raw.name)
    return raw


def loaders(
    job: Config, raw: RawDataset, device: torch.device, seeds: Sequence[int]
) -> tuple[BatchLoader, dict[str, BatchLoader]]:
    """The training loader of a stack of members seeded ``seeds`` (each with its seed's batch
    order) and the evaluation loaders of ``job``, their tensors on ``device`` (normalised and
    moved once per process and device)."""
    data = job.data
    splits = cached_splits(raw, data.mean, data.std, data.limit, device)
    bs, n = data.eval_batch_size, data.eval_train_limit
    evals = {
        "train": BatchLoader(*(t[:n] for t in splits.train), bs),  # a fixed prefix
        "val": BatchLoader(*splits.val, bs),
        "test": BatchLoader(*splits.test, bs),
    }
    train_loader = BatchLoader(*splits.train, data.batch_size, shuffle=True, seeds=seeds)
    return train_loader, evals


def final_metrics(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """The test-stage figures (``<prefix>final/<split>/<metric>``), checked to be finite."""
    start = f"{prefix}final/"
    final = {k[len(start) :]: float(v) for k, v in metrics.items() if k.startswith(start)}
    for key, value in final.items():
        if not math.isfinite(value):
            raise TrainingError(f"final/{key} is {value}: the pruned model gives non-finite output")
    return final


def measure_inference(job: Config, net: Any) -> dict[str, Any] | None:
    """What this job's sparsity buys at inference, measured on the CPU
    (``sparse.inference_speedup``); None when ``inference_batch_size`` is null or the run
    is a quick look on a ``data.limit`` subset, whose time the timing would dominate."""
    batch = job.inference_batch_size
    if not batch or job.data.limit is not None:  # a quick look: no benchmark in it
        return None
    return inference_speedup(net, batch_size=batch)


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
        "without fine-tuning: add schedule.finetune_epochs=3 to recover it (what each length "
        "recovers: docs/RESULTS.md, Fine-tune length)"
    )


def cluster_environment() -> ClusterEnvironment:
    """The process's place in a cluster, chosen here so that Lightning need not guess.

    A job that SLURM started as a step (``srun``, as submitit does) is one task of it, and
    gets SLURM's environment without auto-requeue: submitit requeues on time limits and
    preemption, and one owner of the signals is enough. Anything else is one local process,
    also on a machine where ``srun`` merely exists (a login node): Lightning's own detection
    would warn there, on every run, that ``srun`` is not used.
    """
    interactive = os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive")  # salloc's shell
    if "SLURM_NTASKS" in os.environ and not interactive:
        return SLURMEnvironment(auto_requeue=False)
    return LightningEnvironment()


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
    # Lightning asks "is this SLURM?" again when it looks for a requeue checkpoint and warns
    # wherever srun exists (a login node); cluster_environment() has answered that already.
    warnings.filterwarnings("ignore", message=".*`srun` command is available on your system.*")
