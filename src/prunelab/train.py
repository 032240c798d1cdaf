"""``python -m prunelab.train``: compose objects from the config, fit, test, write the result.

Thin on purpose (DESIGN §1): the science lives in ``pruning.py``, the timing of pruning in
``callbacks.py``. ``train(cfg)`` is a plain function that tests call with a composed config;
``main()`` wraps it for the command line and turns user errors into one line on stderr.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from prunelab import __version__
from prunelab.callbacks import EpochSummary, PruningCallback
from prunelab.data import BatchLoader, dataset_summary, load_dataset, make_splits
from prunelab.errors import ConfigError, PrunelabError
from prunelab.model import PruningModule
from prunelab.pruning import check_sparsity, get_strategy
from prunelab.results import (
    MODEL_FILE,
    RESULT_FILE,
    config_hash,
    git_sha,
    read_result,
    save_state_atomic,
    write_json_atomic,
)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
SCHEDULES = ("oneshot",)
log = logging.getLogger("prunelab")


def check_config(cfg: DictConfig) -> None:
    """Refuse a bad config before any data is loaded or any epoch is spent."""
    get_strategy(cfg.strategy.name)
    check_sparsity(cfg.sparsity)
    sched = cfg.schedule
    if sched.name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {sched.name!r}; choose one of: {', '.join(SCHEDULES)}")
    for key in ("epochs", "finetune_epochs"):
        value = sched[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(
                f"schedule.{key} must be a whole number ≥ 0, got {value!r} (e.g. schedule.{key}=2)"
            )
    if sched.epochs + sched.finetune_epochs == 0:
        raise ConfigError("schedule.epochs + schedule.finetune_epochs is 0: nothing to train")


def check_sizes(sizes: list[int], n_features: int, n_classes: int, dataset: str) -> None:
    """The MLP's first and last sizes must match the data's inputs and classes."""
    if sizes[0] != n_features or sizes[-1] != n_classes:
        fixed = [n_features, *sizes[1:-1], n_classes]
        raise ConfigError(
            f"model.sizes {sizes} does not fit {dataset} ({n_features} inputs, {n_classes} "
            f"classes); use model.sizes=[{','.join(map(str, fixed))}]"
        )


def _quiet_lightning() -> None:
    """Drop Lightning's start-up chatter; this module logs what a run did instead."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("pytorch_lightning.accelerators.cuda").setLevel(logging.WARNING)
    # The loaders slice in-memory tensors on purpose: there are no workers to add.
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    # The run dir already holds Hydra's files; the CSV logger only ever replaces metrics.csv.
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, prune and evaluate one model; return (and write) its ``result.json`` content.

    A run whose output dir already holds a finished result returns it without training, so
    re-running an interrupted sweep only does what is missing.
    """
    out = Path(cfg.paths.output_dir)
    done = read_result(out)
    if done is not None:
        log.info("%s exists: returning it without training", out / RESULT_FILE)
        return done
    check_config(cfg)
    _quiet_lightning()
    started = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=False, verbose=False)

    raw = load_dataset(cfg.data.name, cfg.paths.data_dir, cfg.data.download)
    log.info(dataset_summary(raw))
    sizes = list(cfg.model.sizes)
    check_sizes(sizes, raw.n_features, raw.n_classes, raw.name)
    device = "cuda" if cfg.trainer.accelerator in ("gpu", "cuda") else "cpu"
    splits = make_splits(raw, cfg.data.mean, cfg.data.std, cfg.data.limit, device)

    module = PruningModule(sizes, cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.name)
    if not cfg.eval_test_every_epoch:
        module.val_splits = ("val",)
    bs = cfg.data.batch_size
    train_loader = BatchLoader(*splits.train, bs, shuffle=True, seed=cfg.seed)
    eval_loaders = {name: BatchLoader(*getattr(splits, name), bs) for name in module.test_splits}

    pruning = PruningCallback(
        cfg.strategy.name,
        cfg.sparsity,
        prune_after_epochs=cfg.schedule.epochs,
        prune_output=cfg.strategy.prune_output,
        seed=cfg.seed,
    )
    trainer = pl.Trainer(
        **OmegaConf.to_container(cfg.trainer),
        max_epochs=cfg.schedule.epochs + cfg.schedule.finetune_epochs,
        logger=hydra.utils.instantiate(cfg.logger),
        callbacks=[pruning, EpochSummary()],
        enable_checkpointing=False,
        default_root_dir=out,
    )
    trainer.fit(
        module,
        train_dataloaders=train_loader,
        val_dataloaders=[eval_loaders[s] for s in module.val_splits],
    )
    trainer.test(module, dataloaders=[eval_loaders[s] for s in module.test_splits], verbose=False)
    if trainer.logger is not None:
        trainer.logger.finalize("success")

    final = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("final/")}
    resolved = OmegaConf.to_container(cfg, resolve=True)
    result: dict[str, Any] = {
        "status": "ok",
        "strategy": cfg.strategy.name,
        "sparsity": float(cfg.sparsity),
        "schedule": cfg.schedule.name,
        "epochs": cfg.schedule.epochs,
        "finetune_epochs": cfg.schedule.finetune_epochs,
        "seed": cfg.seed,
        "dataset": raw.name,
        "data_source": raw.source,
        **{
            f"{split}_{m}": final[f"final/{split}/{m}"]
            for split in module.test_splits
            for m in ("acc", "loss")
        },
        "figures": pruning.figures(module),
        "wall_time_s": time.perf_counter() - started,
        "git_sha": git_sha(),
        "prunelab_version": __version__,
        "torch_version": torch.__version__,
        "config_hash": config_hash({k: v for k, v in resolved.items() if k != "paths"}),
        "config": resolved,
    }
    if cfg.save_model:
        state = {k: v.cpu() for k, v in module.net.state_dict().items()}
        save_state_atomic(out / MODEL_FILE, state)
    write_json_atomic(out / RESULT_FILE, result)
    log.info(
        "%s k=%.3g: test acc %.4f (train %.4f, val %.4f) → %s",
        result["strategy"],
        result["sparsity"],
        result["test_acc"],
        result["train_acc"],
        result["val_acc"],
        out / RESULT_FILE,
    )
    return result


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_entry(cfg: DictConfig) -> float:
    try:
        return train(cfg)["test_acc"]
    except PrunelabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def check_group_choices(argv: list[str], conf_dir: Path = CONF_DIR) -> None:
    """Reject ``group=name`` overrides naming a config that does not exist, in one line.

    Hydra's own message for this spans a dozen lines; checked here, before Hydra starts.
    Sweep lists (``strategy=weight,neuron``) are checked item by item.
    """
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        group = conf_dir / key
        if "." in key or "@" in key or not group.is_dir():
            continue
        known = sorted(p.stem for p in group.glob("*.yaml"))
        for choice in value.split(","):
            if choice and choice not in known:
                raise ConfigError(f"unknown {key} {choice!r}; choose one of: {', '.join(known)}")


def main() -> None:
    """Command-line entry point (``python -m prunelab.train``, ``prunelab-train``)."""
    try:
        check_group_choices(sys.argv[1:])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    _hydra_entry()


if __name__ == "__main__":
    main()
