"""A job's durable output: ``result.json``, written atomically, read back defensively.

``result.json`` is the last thing a job writes (``save_result``), after its ``model.pt``. It
is written to a temporary file in the same folder, fsynced, then renamed over the target, so a
crash at any moment leaves either no file or a complete one; a reader never sees half a
result. Its presence means "this job is done", *for the config whose identity it records*
(``identity.py``): ``check_prior`` returns it only to a job of the same identity, and either
stops a job of another identity or moves the old files aside (``supersede``). Files that
fail a check are renamed, never deleted (``set_aside``). ``numerics`` records the numeric
environment a result was computed in.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import subprocess
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prunelab import __version__
from prunelab.errors import MismatchError
from prunelab.identity import IDENTITY_VERSION, differences, identity
from prunelab.lazy import lazy_import

torch = lazy_import("torch", __name__, "torch")

RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.csv"
log = logging.getLogger("prunelab")


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


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def utc_stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def set_aside(path: Path, why: str) -> Path:
    """Rename ``path`` (a file or a folder) to ``<name>.<why>-<UTC time>`` beside it, never
    deleting it: a checkpoint or cache entry that failed its check stays for inspection."""
    path = Path(path)
    target = path.with_name(f"{path.name}.{why}-{utc_stamp()}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{why}-{utc_stamp()}-{n}")
    os.replace(path, target)
    return target


# A long job's last checkpoint and its manifest (``resume.py`` writes and resumes them).
LAST_CKPT = "last.ckpt"
LAST_MANIFEST = "last.json"
# What a finished or interrupted job leaves in its folder, besides Hydra's own files.
# The last three are logger=tensorboard's, logger=mlflow's and logger=wandb's folders.
JOB_FILES = (RESULT_FILE, METRICS_FILE, MODEL_FILE, ERROR_FILE, LAST_CKPT, LAST_MANIFEST,
             "tensorboard", "mlruns", "wandb")  # fmt: skip
SUPERSEDED = ".superseded-"


def supersede(folder: Path, old_identity: str | None) -> Path:
    """Move an earlier run's files out of the way, into ``.superseded-<its identity>/`` of the
    same folder (``on_mismatch=rerun``): the new run starts clean, the old one stays whole."""
    target = folder / f"{SUPERSEDED}{old_identity or 'unversioned'}"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{SUPERSEDED}{old_identity or 'unversioned'}-{n}"
    target.mkdir()
    for name in JOB_FILES:
        if (folder / name).exists():
            os.replace(folder / name, target / name)
    log.info("%s held another config's run: moved its files to %s", folder, target.name)
    return target


def check_prior(
    job_dir: Path, identity: str, config: dict[str, Any], on_mismatch: str, act: bool = True
) -> dict[str, Any] | None:
    """The finished result ``job_dir`` holds for this ``identity``, or None if it holds none.

    A result of another identity is never returned: the job stops with one line naming the
    settings that differ (``MismatchError``), or, with ``on_mismatch="rerun"``, its files are
    superseded (``act=False``: only checked, nothing moved) and the job trains again.
    """
    result = read_result(job_dir)
    if result is None or result.get("identity") == identity:
        return result
    if on_mismatch != "rerun":
        raise MismatchError(mismatch_message(job_dir, "a result", result, config))
    if act:
        supersede(Path(job_dir), result.get("identity"))
    return None


def read_checkpoint_manifest(folder: Path) -> dict[str, Any] | None:
    """``folder``'s ``last.json`` (what its ``last.ckpt`` is and which config wrote it), or
    None if it cannot be read."""
    try:
        manifest = json.loads((Path(folder) / LAST_MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def foreign_checkpoint(folder: Path, manifest: dict[str, Any], config: dict[str, Any]) -> str:
    """The one line that refuses ``folder``'s checkpoint, written by another config (its
    ``manifest``), for a run of ``config``."""
    made_by = {"identity_version": None, "config": None, **manifest.get("made_by", {})}
    return mismatch_message(folder, "a checkpoint", made_by, config)


def check_prior_checkpoint(
    job_dir: Path, identity: str, config: dict[str, Any], on_mismatch: str
) -> None:
    """Refuse ``job_dir`` if its ``last.ckpt`` was written by another config (its
    ``last.json`` names another identity), unless ``on_mismatch="rerun"``: checked with the
    command line, before Hydra sets the job up or a sweep's earlier jobs train (the run
    itself would stop there too, in ``resume.resume_point``). Only the manifest is read;
    whether the checkpoint is sound is the resume's to check."""
    if on_mismatch == "rerun" or not (Path(job_dir) / LAST_CKPT).is_file():
        return
    manifest = read_checkpoint_manifest(job_dir)
    if manifest is not None and manifest.get("identity") != identity:
        raise MismatchError(foreign_checkpoint(Path(job_dir), manifest, config))


def mismatch_message(
    folder: Path, what: str, made_by: dict[str, Any], config: dict[str, Any]
) -> str:
    """Why ``folder``'s ``what`` (made by a run whose record is ``made_by``) is not this
    config's, and the two ways forward, in one line."""
    version = made_by.get("identity_version")
    diffs = differences(made_by.get("config"), config) if made_by.get("config") else []
    if version != IDENTITY_VERSION:
        why = (
            f"made by an older prunelab (identity version {version or 1}, now "
            f"{IDENTITY_VERSION}), whose numbers this code does not reproduce"
        )
    elif diffs:
        shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        why = f"of another config ({shown})"
    else:
        why = "of another config"
    return (
        f"{folder} holds {what} {why}; use another folder (hydra.run.dir=… or "
        "hydra.sweep.dir=…), or add on_mismatch=rerun to train it again, keeping the old files "
        f"in {SUPERSEDED}<identity>/ there"
    )


def numerics(device: torch.device, dtype: torch.dtype, precision: str) -> dict[str, Any]:
    """The numeric environment a result was computed in: the same config can give other
    bits on another device, dtype, matmul precision, thread count or torch version
    (docs/results/index.md measures what one thread instead of two does to the headline claims)."""
    cuda = device.type == "cuda"
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else cpu_name(),
        "dtype": str(dtype).removeprefix("torch."),
        "trainer_precision": precision,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda if cuda else None,
    }


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def job_result(
    config: dict[str, Any],
    final: dict[str, float],
    figures: dict[str, float],
    run: dict[str, Any],
    started: tuple[float, float],
) -> dict[str, Any]:
    """The ``result.json`` content of one finished job: what it was (its resolved
    ``config``, ``dataclasses.asdict`` of its settings), what it scored (``final`` test-stage
    figures, sparsity ``figures``), how it ran (``run``) and how to redo it."""
    schedule = config["schedule"]
    return {
        "status": "ok",
        "strategy": config["strategy"]["name"],
        "sparsity": float(config["sparsity"]),
        "schedule": schedule["name"],
        "epochs": schedule["epochs"],
        "finetune_epochs": schedule["finetune_epochs"],
        "ramp_epochs": schedule.get("ramp_epochs", 0),
        "seed": config["seed"],
        **{key.replace("/", "_"): value for key, value in final.items()},
        "figures": figures,
        **run,
        "wall_time_s": time.perf_counter() - started[0],
        "started_at": started[1],
        "finished_at": time.time(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        **provenance(config),
    }


def provenance(config: dict[str, Any]) -> dict[str, Any]:
    """What a result needs to be reproduced and recognised: code and library versions, the
    full config, and its identity (``identity.identity``)."""
    return {
        "git_sha": git_sha(),
        "prunelab_version": __version__,
        "torch_version": torch.__version__,
        "identity": identity(config),
        "identity_version": IDENTITY_VERSION,
        "config": config,
    }


def save_result(job_dir: Path, result: dict[str, Any], model: dict[str, Any] | None) -> None:
    """Write the job's ``model.pt`` (if given) and then its result, both atomically; the
    result last, since its presence is what marks the job finished."""
    if model is not None:
        save_state_atomic(job_dir / MODEL_FILE, {k: v.cpu() for k, v in model.items()})
    write_json_atomic(job_dir / RESULT_FILE, result)
    (job_dir / ERROR_FILE).unlink(missing_ok=True)
