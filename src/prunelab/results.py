"""A job's durable output: ``result.json``, written atomically, read back defensively.

``result.json`` is the last thing a job writes (``save_result``), after its ``model.pt``. It
is written to a temporary file in the same folder, fsynced, then renamed over the target, so a
crash at any moment leaves either no file or a complete one; a reader never sees half a
result. Its presence means "this job is done".
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from prunelab import __version__

RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"
MODEL_FILE = "model.pt"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; once the block has written it, fsync and rename it
    over ``path``. If the block fails, or the process dies, ``path`` is untouched.

    The one place where the tool writes a file that must never be seen half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, payload: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON (no NaN allowed: a NaN accuracy is a failure, not a result)."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_error(job_dir: Path, error: BaseException) -> None:
    """Leave the traceback of a failed job in its own dir, where the report will find it.

    The first line is the error itself, so ``head -1 */error.txt`` lists why jobs failed.
    """
    text = f"{type(error).__name__}: {error}\n\n" + "".join(traceback.format_exception(error))
    write_text_atomic(Path(job_dir) / ERROR_FILE, text)


def save_state_atomic(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` a tensor-only state atomically; it loads with weights_only=True."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_result(job_dir: Path) -> dict[str, Any] | None:
    """The finished result of a job, or None if it has none (absent or unreadable)."""
    path = Path(job_dir) / RESULT_FILE
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and result.get("status") == "ok" else None


@functools.lru_cache(maxsize=8)
def git_sha(start: Path | None = None) -> str:
    """HEAD of the checkout this code runs from, with ``-dirty`` if it has local edits.

    Asked once per process: the code a process runs is the code it loaded at its start, and
    two ``git`` calls per result cost a 60-member stack seconds.
    """
    cwd = start or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def config_hash(cfg: dict[str, Any], length: int = 16) -> str:
    """Short stable hash of a resolved config (keys sorted), to tell runs apart."""
    blob = json.dumps(cfg, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def job_result(
    cfg: DictConfig,
    final: dict[str, float],
    figures: dict[str, float],
    run: dict[str, Any],
    started: tuple[float, float],
) -> dict[str, Any]:
    """The ``result.json`` content of one finished job: what it was, what it scored (``final``
    test-stage figures, sparsity ``figures``), how it ran (``run``) and how to redo it."""
    return {
        "status": "ok",
        "strategy": cfg.strategy.name,
        "sparsity": float(cfg.sparsity),
        "schedule": cfg.schedule.name,
        "epochs": cfg.schedule.epochs,
        "finetune_epochs": cfg.schedule.finetune_epochs,
        "ramp_epochs": cfg.schedule.get("ramp_epochs", 0),
        "seed": cfg.seed,
        **{key.replace("/", "_"): value for key, value in final.items()},
        "figures": figures,
        **run,
        "wall_time_s": time.perf_counter() - started[0],
        "started_at": started[1],
        "finished_at": time.time(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        **provenance(cfg),
    }


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


def save_result(job_dir: Path, result: dict[str, Any], model: dict[str, Any] | None) -> None:
    """Write the job's ``model.pt`` (if given) and then its result, both atomically; the
    result last, since its presence is what marks the job finished."""
    if model is not None:
        save_state_atomic(job_dir / MODEL_FILE, {k: v.cpu() for k, v in model.items()})
    write_json_atomic(job_dir / RESULT_FILE, result)
    (job_dir / ERROR_FILE).unlink(missing_ok=True)
