"""Shared fixtures: Hydra configs composed in-process, written into tmp_path."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import logging
import os
import subprocess
import sys
import traceback
import types
from collections.abc import Callable, Iterator
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


@dataclasses.dataclass
class Ran:
    """What a command-line call left: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Put every logger's handlers, level and flags back as they were after the block, and
    close the handlers the block added (Hydra configures logging per job: a console handler
    on the stream of the moment and a file handler in the job folder)."""
    manager = logging.Logger.manager
    loggers = [logging.root, *(v for v in manager.loggerDict.values()
                               if isinstance(v, logging.Logger))]  # fmt: skip
    saved = {lg: (lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers}
    disable = logging.root.manager.disable
    try:
        yield
    finally:
        for lg in [logging.root, *manager.loggerDict.values()]:
            if not isinstance(lg, logging.Logger):
                continue
            handlers, level, propagate, disabled = saved.get(lg, ([], logging.NOTSET, True,
                                                                  False))  # fmt: skip
            for h in lg.handlers:
                if h not in handlers:
                    h.close()
            lg.handlers[:] = handlers
            lg.level, lg.propagate, lg.disabled = level, propagate, disabled
        logging.disable(disable)


def train_cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> Ran:
    """``python -m prunelab.train ARGS`` in this process, through the command line's own
    entry (``prunelab.train.main``: the argv checks, Hydra, the launcher, the orchestrator),
    with its exit status and output as a subprocess would give them.

    Why not a subprocess: each new interpreter spends about 5 s importing Lightning, and the
    suite started over a hundred of them. What only a process shows (``python -m``'s entry, a
    kill, a terminal, an installed wheel) is tested with ``run_cli``.
    """
    from hydra.core.global_hydra import GlobalHydra

    from prunelab import train

    out, err = io.StringIO(), io.StringIO()
    old_env = {k: os.environ.get(k) for k in (env or {})}
    old_argv, old_cwd = sys.argv, Path.cwd()
    code: int = 0
    with logging_restored():
        try:
            os.environ.update(env or {})
            os.chdir(cwd)
            sys.argv = ["prunelab.train", *args]
            GlobalHydra.instance().clear()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    train.main()
                except SystemExit as e:  # what the process would exit with
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                except Exception:  # uncaught: the interpreter prints it and exits 1
                    traceback.print_exc()
                    code = 1
        finally:
            GlobalHydra.instance().clear()
            sys.argv = old_argv
            os.chdir(old_cwd)
            for k, v in old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return Ran(code, out.getvalue(), err.getvalue())


def study_presets() -> dict[str, str]:
    """Every study preset (``studies/<question>/conf/experiment/<name>.yaml``) by name: its
    study."""
    return {p.stem: p.parents[2].name for p in ROOT.glob("studies/*/conf/experiment/*.yaml")}


def study_searchpath(study: str) -> str:
    """The override that puts a study's presets on Hydra's search path, as its run.sh does."""
    return f"hydra.searchpath=[file://{ROOT / 'studies' / study / 'conf'}]"


def load_script(name: str) -> types.ModuleType:
    """``<folder>/<name>.py`` of the repository (``tools/gpu_check_verdict``) as a module
    (those folders are no packages), to call its functions or its ``main`` in this process."""
    path = ROOT / f"{name}.py"
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_main(module: types.ModuleType, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """``python <folder>/<module>.py ARGS`` through its ``main``, in this process: the exit
    status it would give (argparse's 2 for a bad argument)."""
    monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *args])
    try:
        module.main()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``python -m prunelab.train ARGS`` in a subprocess, as a user would: for what only a
    process shows (``train_cli`` does the rest in this process)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "prunelab.train", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ``python -m prunelab.train`` that SIGKILLs itself at the n-th rename of a temp file onto a
# job's result.json: "before" it (the temp file written, not renamed) or right "after" it.
# A kill at a chosen point, not a race against the machine's speed.
_KILLED_AT_RESULT = """
import os, signal, sys
from pathlib import Path

real_replace = os.replace
n, when = int(os.environ["KILL_AT_RESULT"]), os.environ["KILL_WHEN"]
written = 0

def replace(src, dst):
    global written
    if Path(dst).name != "result.json":
        return real_replace(src, dst)
    written += 1
    if written == n and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
    if written == n and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)

os.replace = replace
sys.argv = ["prunelab.train", *sys.argv[1:]]
from prunelab.train import main
main()
"""


def run_cli_killed_at_result(*args: str, n: int, when: str) -> subprocess.CompletedProcess:
    """``python -m prunelab.train ARGS`` in a process killed (SIGKILL) at the ``n``-th write
    of a ``result.json``, ``when`` = "before" or "after" its rename into place."""
    assert when in ("before", "after"), when
    return subprocess.run(
        [sys.executable, "-c", _KILLED_AT_RESULT, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "KILL_AT_RESULT": str(n), "KILL_WHEN": when},
    )  # fmt: skip


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
