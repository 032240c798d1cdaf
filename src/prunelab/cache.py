"""Dense-model cache: a oneshot sweep trains the dense model once and prunes it many times.

The dense phase of a oneshot run depends only on data, model, optimiser, epochs, seed and
trainer numerics, never on strategy or k (DESIGN §3). Its Lightning checkpoint (weights, masks,
Adam state, loop counters) and its per-epoch CSV rows are stored under a hash of exactly
those settings. Builders take an exclusive ``fcntl`` lock per key, build into a private temp
dir and publish it with one atomic ``rename``, so concurrent jobs on one key train once and
never see a half-written entry, and a crash mid-build leaves nothing that looks finished.
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

from prunelab.results import config_hash

CACHE_VERSION = 1
CHECKPOINT = "dense.ckpt"
METRICS = "metrics.csv"
log = logging.getLogger(__name__)


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
