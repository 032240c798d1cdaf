"""Dense-model cache: a oneshot sweep trains the dense model once and prunes it many times.

The dense phase of a run depends only on data, model, optimiser, epochs, seed and trainer
numerics, never on strategy or k (``dense_settings``). Its Lightning checkpoint (weights,
masks, Adam state, loop counters; a stack of one member) and its per-epoch CSV rows are stored
under a hash of exactly those settings. Builders take an exclusive ``fcntl`` lock per key,
build into a private temp dir and publish it with one atomic ``rename``, so concurrent jobs on
one key train once and never see a half-written entry, and a crash mid-build leaves nothing
that looks finished. A stack of M jobs resumes from the entry ``expand``-ed over M members.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from prunelab.config import lr_epochs
from prunelab.module import CHECKPOINT_FORMAT
from prunelab.results import atomic_path, config_hash

# 2: checkpoints of a stack of one, weights (1, out, in); version 1 had no member axis.
CACHE_VERSION = 2
CHECKPOINT = "dense.ckpt"
METRICS = "metrics.csv"
log = logging.getLogger(__name__)


def dense_settings(cfg: DictConfig) -> dict[str, Any]:
    """Everything the dense phase of a run depends on: the cache key's input.

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


def dense_key(settings: dict[str, Any]) -> str:
    """Stable key of the settings the dense model depends on (and the cache format)."""
    return config_hash({"v": CACHE_VERSION, **settings}, length=20)


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if absent) for the block.

    ``flock`` locks die with their process, so a killed builder never leaves a stale lock.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def get_or_build(cache_dir: Path, key: str, build: Callable[[Path], None]) -> Path:
    """Return the folder of entry ``key``, calling ``build(work_dir)`` first if it is absent.

    ``build`` must write ``dense.ckpt`` (and may write ``metrics.csv``) into ``work_dir``,
    ``.<key>.building`` in the cache dir. It is renamed into place only after ``build``
    returns, so the entry's existence means "complete". A build that dies leaves its work dir
    for the next builder of the key (who holds the lock), so a long build can resume from
    whatever checkpoint it left there.
    """
    entry = cache_dir / key
    if (entry / CHECKPOINT).is_file():
        return entry
    with exclusive_lock(cache_dir / f"{key}.lock"):
        if (entry / CHECKPOINT).is_file():  # built by another job while we waited
            log.info("dense model %s built by another job; reusing it", key)
            return entry
        if entry.exists():  # left by something other than get_or_build: not trustworthy
            shutil.rmtree(entry)
        work = cache_dir / f".{key}.building"
        work.mkdir(parents=True, exist_ok=True)
        build(work)
        if not (work / CHECKPOINT).is_file():
            raise RuntimeError(f"dense build for {key} wrote no {CHECKPOINT}")
        os.replace(work, entry)
    return entry


def expand(source: Path, target: Path, members: int) -> Path:
    """A checkpoint of ``members`` copies of the one-member checkpoint ``source``.

    Every weight, mask and per-weight optimizer buffer (the tensors with a member axis) is
    repeated over it, so a stack of M jobs resumes exactly as each of them would from
    ``source``. A stack of one resumes from ``source`` itself (returned as it is); the copy is
    written atomically to ``target`` otherwise.
    """
    if members == 1:
        return source
    ckpt = torch.load(source, map_location="cpu", weights_only=True)

    def rep(t: Any) -> Any:
        return t.repeat(members, 1, 1) if isinstance(t, torch.Tensor) and t.dim() == 3 else t

    ckpt["state_dict"] = {k: rep(v) for k, v in ckpt["state_dict"].items()}
    for opt in ckpt.get("optimizer_states", []):
        opt["state"] = {i: {k: rep(v) for k, v in st.items()} for i, st in opt["state"].items()}
    ckpt["callbacks"] = {}  # the dense phase's pruning callback never pruned
    ckpt["prunelab"] = {"format": CHECKPOINT_FORMAT, "members": members}
    with atomic_path(target) as tmp:
        torch.save(ckpt, tmp)
    return target
