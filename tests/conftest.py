"""Shared fixtures: Hydra configs composed in-process, written into tmp_path."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from prunelab.config import CONF_DIR
from prunelab.data import DATASETS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose the real config tree with overrides; output goes to ``tmp_path/run``."""

    def _make(*overrides: str) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(
                config_name="config",
                overrides=[
                    f"paths.output_dir={tmp_path / 'run'}",
                    f"paths.cache_dir={tmp_path / 'cache'}",
                    *overrides,
                ],
            )

    yield _make
    GlobalHydra.instance().clear()


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m prunelab.train ARGS`` in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "prunelab.train", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def patch_dataset(monkeypatch: pytest.MonkeyPatch, name: str, **changes: object) -> None:
    """Replace fields of a registered dataset for one test (its folders, its md5 sums)."""
    spec = DATASETS.get(name)
    monkeypatch.setitem(DATASETS._items, name, dataclasses.replace(spec, **changes))


@pytest.fixture
def no_system_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    """No dataset is found in a system folder (/usr/share/datasets) during the test."""
    for name in DATASETS.names():
        patch_dataset(monkeypatch, name, system_dirs=())


# Tally of the reliability suite: every bad input tried, and how many gave a clean error.
BAD_INPUT_TALLY = {"tried": 0, "clean": 0}


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if BAD_INPUT_TALLY["tried"]:
        terminalreporter.write_line(
            f"{BAD_INPUT_TALLY['tried']} bad inputs tried, {BAD_INPUT_TALLY['clean']} clean errors"
        )


# What `sinfo -h -o '%P|%c|%m|%G'` prints on a small cluster: a default CPU partition of 2-CPU
# nodes and a GPU partition.
FAKE_SINFO = "debug*|2|20000|(null)\ngpu|64|512000|gpu:a100:4(S:0-1)\ngpu|32|256000|gpu:a100:2\n"


def fake_slurm_path(folder: Path, sinfo: str = FAKE_SINFO, fail: str | None = None) -> str:
    """A PATH whose ``sinfo``, ``squeue``, ``sbatch`` and ``srun`` are stand-ins: ``sinfo``
    prints ``sinfo``, or every one fails with ``fail`` on stderr, as SLURM's own clients do
    when slurmctld is down. For the checks made before submission; a real cluster is in
    ``test_slurm_cluster.py``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("sinfo", "squeue", "sbatch", "srun"):
        body = f"echo '{fail}' >&2; exit 1" if fail else f"printf '{sinfo}'"
        script = folder / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"
