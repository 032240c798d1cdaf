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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from prunelab.config import lr_epochs, rewind_epoch
from prunelab.module import CHECKPOINT_FORMAT
from prunelab.results import atomic_path, config_hash

# 2: checkpoints of a stack of one, weights (1, out, in); version 1 had no member axis.
# 3: the learning-rate scheduler counts steps, not epochs.
CACHE_VERSION = 3
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
    if rewind_epoch(cfg) is not None:  # its checkpoint holds the lottery's weight snapshot
        settings["rewind_epoch"] = rewind_epoch(cfg)
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


def expand(sources: Sequence[Path], target: Path) -> Path:
    """A checkpoint of a stack whose member i starts from the one-member checkpoint
    ``sources[i]`` (the dense-cache entry of its seed).

    Every weight, mask and per-weight optimizer buffer (the tensors with a member axis) is
    concatenated over the members; the rest (epoch, step counts, scheduler) is the first
    source's, equal in all of them (same data, schedule and epochs). So a stack of M jobs
    resumes exactly as each of them would from its own source. A stack of one resumes from
    its source itself (returned as it is); the stack's is written atomically to ``target``.
    """
    if len(sources) == 1:
        return sources[0]
    loaded = {
        p: torch.load(p, map_location="cpu", weights_only=True) for p in dict.fromkeys(sources)
    }
    members = [loaded[p] for p in sources]
    ckpt = members[0]

    def cat(values: list[Any]) -> Any:
        first = values[0]
        return torch.cat(values) if isinstance(first, torch.Tensor) and first.dim() == 3 else first

    ckpt["state_dict"] = {k: cat([m["state_dict"][k] for m in members]) for k in ckpt["state_dict"]}
    for j, opt in enumerate(ckpt.get("optimizer_states", [])):
        opt["state"] = {
            i: {k: cat([m["optimizer_states"][j]["state"][i][k] for m in members]) for k in st}
            for i, st in opt["state"].items()
        }
    ckpt["callbacks"] = {}  # the dense phase's pruning callback never pruned
    ckpt["prunelab"] = {"format": CHECKPOINT_FORMAT, "members": len(sources)}
    with atomic_path(target) as tmp:
        torch.save(ckpt, tmp)
    return target
