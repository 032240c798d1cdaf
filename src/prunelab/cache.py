"""Dense-model cache: a oneshot sweep trains the dense model once and prunes it many times.

The dense phase of a run depends on the data (its settings and its content), the model,
the optimiser, the dense epochs and learning-rate horizon, the seed and the trainer's
numerics, never on strategy or k (``dense_settings``). Its Lightning checkpoint (weights,
masks, Adam state, loop counters; a stack of one member) and its per-epoch CSV rows are
stored under a hash of exactly those settings, with a manifest (``entry.json``: the sha256 of
each file, the settings, the numeric environment that built it). Builders take an exclusive
``fcntl`` lock per key, build into a private temp dir and publish it with one atomic
``rename``, so concurrent jobs on one key train once and never see a half-written entry, and
a crash mid-build leaves nothing that looks finished. An entry whose files no longer match
its manifest (truncated, replaced, unreadable) is set aside, renamed and never deleted, and
built again. A stack of M jobs resumes from the entries ``expand``-ed over M members.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from prunelab.config import Config
from prunelab.identity import config_hash
from prunelab.module import CHECKPOINT_FORMAT
from prunelab.results import atomic_path, set_aside, sha256_file, write_json_atomic

# 2: checkpoints of a stack of one, weights (1, out, in); version 1 had no member axis.
# 3: the learning-rate scheduler counts steps, not epochs.
# 4: independent random streams (init and batch order from streams.seed_for); a manifest.
CACHE_VERSION = 4
# The settings of a job's identity that its dense phase never reads, so jobs that differ only
# in them share one entry (tests/test_cache.py perturbs every other setting and checks that
# the key changes): what happens at and after pruning, and the final evaluation.
AFTER_THE_DENSE_PHASE = (
    "strategy",
    "sparsity",
    "schedule.name",  # what it changes in the dense phase is in lr_epochs and rewind_epoch
    "schedule.finetune_epochs",
    "schedule.ramp_epochs",  # (iterative's reaches the dense phase through lr_epochs)
    "schedule.prune_every_epochs",
    "schedule.reinit",
    # sparse training (set, rigl) has no dense phase; IMP's levels are runs of their own
    "schedule.update_every_steps",
    "schedule.drop_fraction",
    "schedule.end_fraction",
    "schedule.drop",
    "schedule.grow",
    "schedule.levels",
    "schedule.level_fraction",
    "schedule.rewind_step",
    "schedule.controls",
    # a sensitivity scan prunes the dense model it finds; how it scans is not the dense phase
    "schedule.grid",
    "schedule.max_drop",
    "schedule.max_members",
    "optim.finetune_lr",
    "finetune_guard",
    "finetune_min_correct",
    "data.eval_train_limit",  # the final train accuracy only
    "trainer.num_sanity_val_steps",  # validates before training; logs and trains nothing
    "trainer.devices",  # one device per job, always
)
CHECKPOINT = "dense.ckpt"
METRICS = "metrics.csv"
MANIFEST = "entry.json"
log = logging.getLogger("prunelab")
# Entries whose files were checked against their manifest in this process, by their
# checkpoint's (path, size, mtime): a sweep of 60 jobs hashes each entry once.
_verified: set[tuple[str, int, int]] = set()


def dense_settings(job: Config, data_digest: str) -> dict[str, Any]:
    """Everything the dense phase of a job depends on, in this process: the cache key's input.

    Strategy, k, fine-tuning and the pruning window are absent on purpose (what lets a
    sweep share the model), except where they reach the dense phase: the learning-rate
    horizon (iterative decays its rate over its window) and the lottery's weight snapshot.
    ``data_digest`` is the dataset's content (``data.RawDataset.digest``), so another file
    in ``paths.data_dir`` never meets a model trained on the first.
    """
    schedule = job.schedule
    return {
        "data": {
            "name": job.data.name,
            "digest": data_digest,
            "mean": job.data.mean,
            "std": job.data.std,
            "batch_size": job.data.batch_size,
            "eval_batch_size": job.data.eval_batch_size,  # the cached rows' losses
            "limit": job.data.limit,
            **({"augment": True} if job.data.augment else {}),
        },
        "trainer": {
            "accelerator": job.trainer.accelerator,
            "precision": job.trainer.precision,
            "deterministic": job.trainer.deterministic,
        },
        "sizes": list(job.model.sizes),
        # any model but the plain MLP (whose key stays as it was): name, bias and arguments
        **({} if is_plain_mlp(job) else {"model": dataclasses.asdict(job.model)}),
        # finetune_lr acts only after the dense phase: runs that differ in it share it.
        "optim": {k: v for k, v in dataclasses.asdict(job.optim).items() if k != "finetune_lr"},
        "epochs": schedule.dense_epochs,
        "lr_epochs": schedule.lr_epochs,
        "rewind_epoch": schedule.rewind_to,  # its checkpoint holds the lottery's snapshot
        "seed": job.seed,
        "eval_test_every_epoch": job.eval_test_every_epoch,
        "float32_matmul_precision": job.float32_matmul_precision,
        # The same config trained with another thread count or torch gives other bits: a
        # model from the cache must be the one this process would have trained.
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def is_plain_mlp(job: Config) -> bool:
    """The challenge's MLP, as every job was before models were plug-ins."""
    m = job.model
    return m.name == "mlp" and not m.bias and not m.args


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


def entry_problem(entry: Path, check: Callable[[Path], None] | None = None) -> str | None:
    """Why the cache entry ``entry`` cannot be used, or None if it can: absent, without a
    readable manifest of this cache version, a file that no longer has its recorded sha256,
    or one that ``check`` (e.g. a test load of the checkpoint) refuses."""
    ckpt = entry / CHECKPOINT
    if not ckpt.is_file():
        return "absent"
    stat = ckpt.stat()
    stamp = (str(ckpt), stat.st_size, stat.st_mtime_ns)
    if stamp in _verified:
        return None
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        files = manifest["files"]
        version = manifest["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no readable manifest"
    if version != CACHE_VERSION:
        return f"cache version {version}, this prunelab's is {CACHE_VERSION}"
    for name, digest in files.items():
        path = entry / name
        if not path.is_file() or sha256_file(path) != digest:
            return f"{name} does not match its recorded sha256"
    if check is not None:
        try:
            check(entry)
        except Exception as e:
            return f"it fails to load ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
    _verified.add(stamp)
    return None


def get_or_build(
    cache_dir: Path,
    key: str,
    build: Callable[[Path], None],
    meta: dict[str, Any] | None = None,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Return the folder of entry ``key``, calling ``build(work_dir)`` first if it is absent
    or fails its check (``entry_problem``; such an entry is set aside, renamed, and the
    reason logged in one line).

    ``build`` must write ``dense.ckpt`` (and may write ``metrics.csv``) into ``work_dir``,
    ``.<key>.building`` in the cache dir; the manifest (each file's sha256, plus ``meta``)
    is written beside them, then the folder is renamed into place, so the entry's existence
    means "complete". A build that dies leaves its work dir for the next builder of the key
    (who holds the lock), so a long build can resume from whatever checkpoint it left there.
    """
    entry = cache_dir / key
    if entry_problem(entry, check) is None:
        return entry
    with exclusive_lock(cache_dir / f"{key}.lock"):
        problem = entry_problem(entry, check)
        if problem is None:  # built by another job while we waited
            log.info("dense model %s built by another job; reusing it", key)
            return entry
        if entry.exists():
            aside = set_aside(entry, "corrupt")
            log.warning("dense-cache entry %s failed its check (%s): set aside as %s and "
                        "trained again", entry, problem, aside.name)  # fmt: skip
        work = cache_dir / f".{key}.building"
        work.mkdir(parents=True, exist_ok=True)
        build(work)
        if not (work / CHECKPOINT).is_file():
            raise RuntimeError(f"dense build for {key} wrote no {CHECKPOINT}")
        files = {p.name: sha256_file(p) for p in (work / CHECKPOINT, work / METRICS)
                 if p.is_file()}  # fmt: skip
        write_json_atomic(work / MANIFEST, {"version": CACHE_VERSION, "files": files,
                                            **(meta or {})})  # fmt: skip
        os.replace(work, entry)
        if check is not None:
            check(entry)
    return entry


def read_manifest(entry: Path) -> dict[str, Any]:
    """An entry's manifest (``get_or_build`` checked it); empty if it cannot be read."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint we wrote, as tensors and plain values: never code (``weights_only``)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def probe_checkpoint(entry: Path) -> None:
    """Raise unless the entry's checkpoint loads, memory-mapped (cheap, reads no weights)."""
    torch.load(entry / CHECKPOINT, map_location="cpu", weights_only=True, mmap=True)


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
    loaded = {p: load_checkpoint(p) for p in dict.fromkeys(sources)}
    members = [loaded[p] for p in sources]
    ckpt = members[0]

    def cat(values: list[Any]) -> Any:
        first = values[0]
        # a tensor with a member axis (weights, masks, biases, their moments) is ≥ 2-D;
        # a step count, 0-D, is the same in every source
        return torch.cat(values) if isinstance(first, torch.Tensor) and first.dim() >= 2 else first

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
