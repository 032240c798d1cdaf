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
