"""``python -m prunelab.train``: compose objects from the config, fit, test, write the result.

Thin on purpose (DESIGN §1): the science lives in ``pruning.py``, the timing of pruning in
``schedules.py`` (applied by ``callbacks.py``), the dense-model cache in ``cache.py``.
``train(cfg)`` is a plain function that tests call with a composed config; ``main()`` wraps
it for the command line and turns user errors into one line on stderr.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger, Logger

from prunelab import __version__, cache, gpus
from prunelab.callbacks import EpochSummary, LastCheckpoint, PruningCallback
from prunelab.data import (
    BatchLoader,
    RawDataset,
    Splits,
    dataset_summary,
    load_dataset,
    make_splits,
)
from prunelab.errors import ConfigError, PrunelabError, TrainingError
from prunelab.model import MaskedMLP, PruningModule
from prunelab.pruning import check_sparsity, get_strategy
from prunelab.results import (
    ERROR_FILE,
    MODEL_FILE,
    RESULT_FILE,
    config_hash,
    git_sha,
    read_result,
    save_state_atomic,
    write_error,
    write_json_atomic,
)
from prunelab.schedules import SCHEDULES, lr_horizon
from prunelab.sparse import inference_speedup

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
LAST_CKPT = "last.ckpt"
log = logging.getLogger("prunelab")


def check_config(cfg: DictConfig) -> None:
    """Refuse a bad config before any data is loaded or any epoch is spent."""
    get_strategy(cfg.strategy.name)
    check_sparsity(cfg.sparsity)
    sched = cfg.schedule
    if sched.name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {sched.name!r}; choose one of: {', '.join(SCHEDULES)}")
    for key, low in (("epochs", 0), ("finetune_epochs", 0), ("ramp_epochs", 0),
                     ("prune_every_steps", 1)):  # fmt: skip
        value = sched.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(
                f"schedule.{key} must be a whole number ≥ {low}, got {value!r} "
                f"(e.g. schedule.{key}=2)"
            )
    if sched.name in ("gradual", "iterative") and sched.ramp_epochs < 1:
        raise ConfigError(
            f"schedule.ramp_epochs must be ≥ 1 for the {sched.name} schedule "
            "(e.g. schedule.ramp_epochs=5)"
        )
    if total_epochs(cfg) == 0:
        raise ConfigError("schedule.epochs + schedule.finetune_epochs is 0: nothing to train")
    precision = cfg.get("float32_matmul_precision", "highest")
    if precision not in ("highest", "high", "medium"):
        raise ConfigError(
            f"unknown float32_matmul_precision {precision!r}; choose highest, high (TF32) or medium"
        )


def total_epochs(cfg: DictConfig) -> int:
    """Dense, pruning-window (gradual, iterative) and fine-tune epochs."""
    s = cfg.schedule
    return s.epochs + s.get("ramp_epochs", 0) + s.finetune_epochs


def check_sizes(sizes: list[int], n_features: int, n_classes: int, dataset: str) -> None:
    """The MLP's first and last sizes must match the data's inputs and classes."""
    if sizes[0] != n_features or sizes[-1] != n_classes:
        fixed = [n_features, *sizes[1:-1], n_classes]
        raise ConfigError(
            f"model.sizes {sizes} does not fit {dataset} ({n_features} inputs, {n_classes} "
            f"classes); use model.sizes=[{','.join(map(str, fixed))}]"
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


# `n_jobs: ${prunelab_gpu_count:}` in conf/hydra/launcher/local_gpus.yaml
OmegaConf.register_new_resolver("prunelab_gpu_count", gpus.gpu_count, replace=True)

# Hydra's local launchers run a sweep's jobs in one process: load and normalise the data once.
cached_dataset = functools.lru_cache(maxsize=2)(load_dataset)
cached_splits = functools.lru_cache(maxsize=2)(make_splits)


def build_module(cfg: DictConfig, sizes: list[int]) -> PruningModule:
    """The LightningModule a run trains; the dense-cache builder uses the very same one."""
    module = PruningModule(sizes, **optim_settings(cfg))
    if not cfg.eval_test_every_epoch:
        module.val_splits = ("val",)
    return module


def optim_settings(cfg: DictConfig) -> dict[str, Any]:
    """The optimiser and learning-rate keyword arguments of a training module, from ``cfg``."""
    o = cfg.optim
    return {
        "lr": o.lr,
        "weight_decay": o.weight_decay,
        "optimizer": o.name,
        "lr_schedule": o.lr_schedule,
        "dense_epochs": lr_epochs(cfg),
        "finetune_lr_scale": o.finetune_lr_scale,
        "total_epochs": total_epochs(cfg),
    }


def lr_epochs(cfg: DictConfig) -> int:
    """Epochs of the main learning-rate schedule (``schedules.lr_horizon``)."""
    s = cfg.schedule
    return lr_horizon(s.name, s.epochs, s.get("ramp_epochs", 0))


def build_trainer(
    cfg: DictConfig, out: Path, max_epochs: int, callbacks: list[pl.Callback], logger: Logger
) -> pl.Trainer:
    """The Trainer every fit uses; with ``checkpoint_every_n_epochs`` it keeps ``last.ckpt``."""
    if cfg.checkpoint_every_n_epochs:
        callbacks = [*callbacks, LastCheckpoint(out / LAST_CKPT, cfg.checkpoint_every_n_epochs)]
    return pl.Trainer(
        **OmegaConf.to_container(cfg.trainer),
        max_epochs=max_epochs,
        logger=logger,
        callbacks=callbacks,
        enable_checkpointing=False,
        default_root_dir=out,
    )


def resume_point(folder: Path) -> tuple[Path | None, int]:
    """``(last.ckpt, its epoch)`` if ``folder`` holds a readable one, else ``(None, -1)``.

    An unreadable checkpoint (a foreign file; ours are written atomically) is removed, and
    training starts over rather than failing on it.
    """
    path = folder / LAST_CKPT
    if not path.is_file():
        return None, -1
    try:
        epoch = int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except Exception as e:
        log.warning("ignoring unreadable %s (%s); starting over", path, e)
        path.unlink()
        return None, -1
    log.info("resuming from %s (epoch %d done)", path, epoch + 1)
    return path, epoch


def read_rows(metrics_csv: Path, up_to_epoch: int | None = None) -> list[dict[str, float]]:
    """Per-epoch rows of a CSV log (those of epochs ≤ ``up_to_epoch``), for ``log_rows``."""
    try:
        rows = pd.read_csv(metrics_csv, on_bad_lines="skip")
    except (OSError, ValueError):  # absent, empty, or cut mid-write by a kill
        return []
    if up_to_epoch is not None:
        rows = rows[rows["epoch"] <= up_to_epoch]
    return [{k: float(v) for k, v in row.items() if pd.notna(v)} for row in rows.to_dict("records")]


def pruning_callback(cfg: DictConfig, member: int | None = None) -> PruningCallback:
    """The pruning callback of ``cfg``'s strategy, k and schedule (for one stacked member)."""
    return PruningCallback(
        cfg.strategy.name,
        cfg.sparsity,
        prune_after_epochs=cfg.schedule.epochs,
        prune_output=cfg.strategy.prune_output,
        seed=cfg.seed,
        ramp_epochs=cfg.schedule.get("ramp_epochs", 0),
        prune_every_steps=cfg.schedule.get("prune_every_steps", 1),
        schedule=cfg.schedule.name,
        member=member,
    )


def dense_settings(cfg: DictConfig) -> dict[str, Any]:
    """Everything the dense phase of a oneshot run depends on: the dense-cache key's input.

    Strategy and sparsity are absent on purpose: that is what lets a sweep share the model.
    """
    pick = {
        "data": ["name", "mean", "std", "batch_size", "limit"],
        "trainer": ["accelerator", "precision", "deterministic"],
    }
    settings = {
        **{g: {k: cfg[g].get(k) for k in keys} for g, keys in pick.items()},
        "sizes": list(cfg.model.sizes),
        # finetune_lr_scale acts only after the dense phase: runs that differ in it share it.
        "optim": {k: v for k, v in cfg.optim.items() if k != "finetune_lr_scale"},
        "epochs": cfg.schedule.epochs,
        "seed": cfg.seed,
        "eval_test_every_epoch": cfg.eval_test_every_epoch,
    }
    # Each absent at its default, so that adding it left older keys valid.
    if lr_epochs(cfg) != cfg.schedule.epochs:
        settings["lr_epochs"] = lr_epochs(cfg)
    if cfg.get("float32_matmul_precision", "highest") != "highest":
        settings["float32_matmul_precision"] = cfg.float32_matmul_precision
    return settings


def log_rows(rows: list[dict[str, float]], logger: Logger) -> None:
    """Write rows read by ``read_rows`` into ``logger``: the dense phase's rows from the cache,
    or a resumed run's own earlier rows, so curves always start at epoch 0."""
    for row in rows:
        values = dict(row)
        step = int(values.pop("step"))
        if values:
            logger.log_metrics(values, step=step)


def eval_loaders(cfg: DictConfig, splits: Splits) -> dict[str, BatchLoader]:
    """Loaders for the evaluated splits; train is a fixed prefix (``data.eval_train_limit``)."""
    bs, n = cfg.data.eval_batch_size, cfg.data.eval_train_limit
    return {
        "train": BatchLoader(*(t[:n] for t in splits.train), bs),
        "val": BatchLoader(*splits.val, bs),
        "test": BatchLoader(*splits.test, bs),
    }


def fit(
    trainer: pl.Trainer,
    module: PruningModule,
    train_loader: BatchLoader,
    evals: dict[str, BatchLoader],
    ckpt: Path | None = None,
) -> None:
    val = [evals[s] for s in module.val_splits]
    trainer.fit(module, train_loader, val, ckpt_path=ckpt, weights_only=True)


def cached_dense(
    cfg: DictConfig, sizes: list[int], train_loader: BatchLoader, evals: dict[str, BatchLoader]
) -> Path:
    """Folder of the dense-phase cache entry for ``cfg``, training it first if absent."""

    def build(workdir: Path) -> None:
        log.info("training the dense model (%d epochs) for the cache", cfg.schedule.epochs)
        resume, epoch = resume_point(workdir)
        earlier = read_rows(workdir / cache.METRICS, epoch) if resume else []
        pl.seed_everything(cfg.seed, workers=False, verbose=False)
        module = build_module(cfg, sizes)
        csv = CSVLogger(workdir, name="", version="", flush_logs_every_n_steps=1)
        log_rows(earlier, csv)
        callbacks = [pruning_callback(cfg), EpochSummary()]
        trainer = build_trainer(cfg, workdir, cfg.schedule.epochs, callbacks, csv)
        fit(trainer, module, train_loader, evals, resume)
        csv.finalize("success")
        trainer.save_checkpoint(workdir / cache.CHECKPOINT)
        (workdir / LAST_CKPT).unlink(missing_ok=True)

    key = cache.dense_key(dense_settings(cfg))
    entry = cache.get_or_build(Path(cfg.paths.cache_dir), key, build)
    log.info("dense model from cache %s", entry)
    return entry


@dataclass(frozen=True)
class RunData:
    """The dataset of a run, normalised and split, with its loaders (on the run's device)."""

    raw: RawDataset
    sizes: list[int]
    train_loader: BatchLoader
    evals: dict[str, BatchLoader]


def load_run_data(cfg: DictConfig) -> RunData:
    """Load (once per process), check against the model, split and wrap ``cfg``'s data."""
    raw = cached_dataset(cfg.data.name, str(cfg.paths.data_dir), cfg.data.download)
    log.info(dataset_summary(raw))
    sizes = list(cfg.model.sizes)
    check_sizes(sizes, raw.n_features, raw.n_classes, raw.name)
    device = "cuda" if cfg.trainer.accelerator in ("gpu", "cuda") else "cpu"
    splits = cached_splits(raw, cfg.data.mean, cfg.data.std, cfg.data.limit, device)
    train_loader = BatchLoader(*splits.train, cfg.data.batch_size, shuffle=True, seed=cfg.seed)
    return RunData(raw, sizes, train_loader, eval_loaders(cfg, splits))


def set_matmul_precision(cfg: DictConfig) -> None:
    """Apply ``float32_matmul_precision`` (``high`` = TF32 on Ampere+ GPUs)."""
    torch.set_float32_matmul_precision(cfg.get("float32_matmul_precision", "highest"))


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, prune and evaluate one model; return (and write) its ``result.json`` content.

    A run whose output dir already holds a finished result returns it without training, so
    re-running an interrupted sweep only does what is missing. With ``dense_cache`` on, the
    dense phase is trained once per key (see ``cache.py``) and every run resumes from it.
    """
    out = Path(cfg.paths.output_dir)
    done = read_result(out)
    if done is not None:
        log.info("%s exists: returning it without training", out / RESULT_FILE)
        return done
    check_config(cfg)
    check_writable_dir(out)
    set_matmul_precision(cfg)
    quiet_lightning()
    started = time.perf_counter(), time.time()
    data = load_run_data(cfg)

    resume, epoch = resume_point(out)
    earlier = read_rows(out / "metrics.csv", epoch) if resume else []  # before the logger
    dense_ckpt = None
    if resume is None and cfg.dense_cache and cfg.schedule.epochs > 0:
        entry = cached_dense(cfg, data.sizes, data.train_loader, data.evals)
        dense_ckpt = entry / cache.CHECKPOINT
        earlier = read_rows(entry / cache.METRICS)
    logger = hydra.utils.instantiate(cfg.logger)
    log_rows(earlier, logger)

    pl.seed_everything(cfg.seed, workers=False, verbose=False)
    module = build_module(cfg, data.sizes)
    pruning = pruning_callback(cfg)
    trainer = build_trainer(cfg, out, total_epochs(cfg), [pruning, EpochSummary()], logger)
    fit_started = time.perf_counter()
    fit(trainer, module, data.train_loader, data.evals, resume or dense_ckpt)
    fit_time = time.perf_counter() - fit_started
    trainer.test(module, dataloaders=[data.evals[s] for s in module.test_splits], verbose=False)
    logger.finalize("success")

    run = {
        "fit_time_s": fit_time,
        "dense_cache": str(dense_ckpt) if dense_ckpt else None,
        "resumed_after_epoch": epoch + 1 if resume else None,
    }
    final = final_metrics(trainer.callback_metrics)
    result = job_result(cfg, data.raw, final, pruning.figures(module), module.net, run, started)
    save_result(cfg, result, module.net)
    return result


def final_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The test-stage figures (``<prefix>final/<split>/<metric>``), checked to be finite."""
    start = f"{prefix}final/"
    final = {k[len(start) :]: float(v) for k, v in metrics.items() if k.startswith(start)}
    for key, value in final.items():
        if not math.isfinite(value):
            raise TrainingError(f"final/{key} is {value}: the pruned model gives non-finite output")
    return final


def job_result(
    cfg: DictConfig,
    raw: RawDataset,
    final: dict[str, float],
    figures: dict[str, float],
    net: MaskedMLP,
    run: dict[str, Any],
    started: tuple[float, float],
) -> dict[str, Any]:
    """The ``result.json`` content of one finished job (separate or stacked)."""
    return {
        "status": "ok",
        "strategy": cfg.strategy.name,
        "sparsity": float(cfg.sparsity),
        "schedule": cfg.schedule.name,
        "epochs": cfg.schedule.epochs,
        "finetune_epochs": cfg.schedule.finetune_epochs,
        "ramp_epochs": cfg.schedule.get("ramp_epochs", 0),
        "seed": cfg.seed,
        "dataset": raw.name,
        "data_source": raw.source,
        **{key.replace("/", "_"): value for key, value in final.items()},
        "figures": figures,
        "inference": measure_inference(cfg, net),
        **run,
        "wall_time_s": time.perf_counter() - started[0],
        "started_at": started[1],
        "finished_at": time.time(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        **provenance(cfg),
    }


def save_result(cfg: DictConfig, result: dict[str, Any], net: MaskedMLP) -> None:
    """Write the job's model (if asked) and then its result, atomically; the result last,
    since its presence is what marks the job finished."""
    out = Path(cfg.paths.output_dir)
    if cfg.save_model:
        state = {k: v.cpu() for k, v in net.state_dict().items()}
        save_state_atomic(out / MODEL_FILE, state)
    write_json_atomic(out / RESULT_FILE, result)
    (out / ERROR_FILE).unlink(missing_ok=True)
    (out / LAST_CKPT).unlink(missing_ok=True)
    log.info(
        "%s k=%.3g: test acc %.4f (train %.4f, val %.4f) → %s",
        result["strategy"],
        result["sparsity"],
        result["test_acc"],
        result["train_acc"],
        result["val_acc"],
        out / RESULT_FILE,
    )


def measure_inference(cfg: DictConfig, net: MaskedMLP) -> dict[str, Any] | None:
    """What this config's sparsity buys at inference, measured (``sparse.inference_speedup``)
    on the CPU, on a copy: the trained net stays where it is."""
    batch = cfg.inference_batch_size
    if not batch:
        return None
    return inference_speedup(copy.deepcopy(net).cpu(), batch_size=batch)


def provenance(cfg: DictConfig) -> dict[str, Any]:
    """What a result needs to be reproduced: code version, library version, full config."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    return {
        "git_sha": git_sha(),
        "prunelab_version": __version__,
        "torch_version": torch.__version__,
        "config_hash": config_hash({k: v for k, v in resolved.items() if k != "paths"}),
        "config": resolved,
    }


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_entry(cfg: DictConfig) -> float:
    """Run one job; on failure leave ``error.txt`` in its dir for the report, then fail.

    In a sweep the exception goes back to Hydra, which records the job as failed and runs the
    rest; a single run prints user errors as one line and exits 1.
    """
    out = Path(cfg.paths.output_dir)
    try:
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN and gpus.uses_gpu_pool(hydra_cfg):
            log.info("worker holds GPU %d", gpus.claim_gpu(gpus.gpu_count()))
        return train(cfg)["test_acc"]
    except Exception as e:
        write_error(out, e)
        if not isinstance(e, PrunelabError):
            raise
        print(f"error: {e}", file=sys.stderr)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise
        sys.exit(1)


def check_writable_dir(path: Path, what: str = "output dir") -> None:
    """Refuse, in one line, a folder that cannot be created or written.

    Checked before any work so that a week-long sweep does not die at its first result.
    """
    path = Path(path)
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(
            f"cannot create {what} {path}: {probe} is a file, not a folder; choose another "
            "(hydra.run.dir=… or hydra.sweep.dir=…)"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write to {what} {path} ({probe} is not writable); choose another"
        )


def check_argv(argv: list[str], conf_dir: Path = CONF_DIR) -> None:
    """Reject bad command-line overrides in one line, before Hydra starts.

    Hydra's own messages for these span a dozen lines or come too late: a config group
    choice that does not exist (``strategy=magnitude``; sweep lists item by item), a sweep
    list naming one value twice (two jobs would share one folder), and a run or sweep dir
    that cannot be written.
    """
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        items = value.split(",")
        if len(items) > 1 and len(set(items)) < len(items):
            dup = sorted({v for v in items if items.count(v) > 1})
            raise ConfigError(
                f"{key}={value} lists {', '.join(dup)} more than once; give each value once"
            )
        if key in ("hydra.run.dir", "hydra.sweep.dir"):
            check_writable_dir(Path(value), key)
        group = conf_dir / key
        # hydra/* groups also hold the plugins' options (joblib, submitit_local, …)
        if "." in key or "@" in key or key.startswith("hydra/") or not group.is_dir():
            continue
        known = sorted(p.stem for p in group.glob("*.yaml"))
        for choice in items:
            if choice and choice not in known:
                raise ConfigError(f"unknown {key} {choice!r}; choose one of: {', '.join(known)}")


def main() -> None:
    """Command-line entry point (``python -m prunelab.train``, ``prunelab-train``)."""
    try:
        check_argv(sys.argv[1:])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    _hydra_entry()


if __name__ == "__main__":
    # Run the importable module's entry, not __main__'s copy: launchers that ship the task to
    # other processes (joblib, submitit) then pickle it by reference.
    from prunelab import train as importable

    importable.main()
