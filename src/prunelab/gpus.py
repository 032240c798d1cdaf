"""One GPU per worker for local multi-GPU sweeps (``hydra/launcher=local_gpus``).

Hydra's joblib launcher runs ``n_jobs`` worker processes and hands each job to a free worker;
workers are reused, so ``job.num % n_gpus`` gives two live workers the same GPU. Instead each
worker claims a GPU with an exclusive ``fcntl`` lock on ``gpu-<i>.lock`` the first time it
runs a job and holds it until it exits (locks die with their process), then sets
``CUDA_VISIBLE_DEVICES`` before CUDA starts. More workers than GPUs would leave one waiting
forever, so that is refused before any job starts (``config.check_workers``).
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from prunelab.config import check_workers
from prunelab.errors import ConfigError

FAKE_ENV = "PRUNELAB_FAKE_GPU_COUNT"  # tests: pretend this many GPUs exist
LOCK_DIR_ENV = "PRUNELAB_GPU_LOCK_DIR"
_held: tuple[int, IO[str]] | None = None


def gpu_count() -> int:
    """GPUs this machine shows (``$PRUNELAB_FAKE_GPU_COUNT`` overrides, for tests)."""
    fake = os.environ.get(FAKE_ENV)
    if fake is not None:
        return int(fake)
    import torch

    return torch.cuda.device_count()


def lock_dir() -> Path:
    """Shared by every sweep of this user on this machine, so concurrent sweeps coordinate."""
    default = Path(tempfile.gettempdir()) / f"prunelab-gpu-locks-{os.getuid()}"
    return Path(os.environ.get(LOCK_DIR_ENV, default))


def claim_gpu(n_gpus: int, poll_s: float = 0.5) -> int:
    """This process's GPU index: claimed once, held until the process exits."""
    global _held
    if _held is not None:
        return _held[0]
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        for i in range(n_gpus):
            f = (folder / f"gpu-{i}.lock").open("a")
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            _held = (i, f)
            os.environ["CUDA_VISIBLE_DEVICES"] = str(i)
            return i
        time.sleep(poll_s)  # all taken, e.g. by another sweep on this machine


def uses_gpu_pool(hydra_cfg: Any) -> bool:
    """Whether this job runs under the joblib launcher (``hydra/launcher=local_gpus``)."""
    target = str(OmegaConf.select(hydra_cfg, "launcher._target_") or "")
    return "JoblibLauncher" in target


class GpuPoolCheck(Callback):
    """Hydra callback: before a local-GPU sweep launches anything, check n_jobs ≤ GPUs."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not uses_gpu_pool(config.hydra):
            return
        try:
            check_workers(int(config.hydra.launcher.n_jobs), gpu_count())
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
