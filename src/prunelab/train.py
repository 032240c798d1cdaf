"""``python -m prunelab.train``: the command line, and nothing else.

It checks the command line before Hydra starts (``config.check_argv``: every job it asks for,
typed and checked, and the folders they will write into), lets a worker of the
``local_gpus`` pool claim its GPU, and hands the composed job to the one orchestrator,
``run.run_jobs``, as a list of one. ``hydra/launcher=stacked`` calls the same orchestrator
with many jobs at once. User errors become one line on stderr and a non-zero exit; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from prunelab import gpus
from prunelab.config import CONF_DIR, check_argv, groups_help, load, settings_help
from prunelab.config.tree import run_name
from prunelab.errors import PrunelabError
from prunelab.results import RESULT_FILE

log = logging.getLogger("prunelab")

# `n_jobs: ${prunelab_gpu_count:}` in conf/hydra/launcher/local_gpus.yaml
OmegaConf.register_new_resolver("prunelab_gpu_count", gpus.gpu_count, replace=True)
# --help lists the groups and every setting from the config tree and the schema themselves.
OmegaConf.register_new_resolver("prunelab_groups", groups_help, replace=True)
OmegaConf.register_new_resolver("prunelab_settings", settings_help, replace=True)


def run_name_of(root: DictConfig) -> str:
    """``config.tree.run_name`` of a composed config: hydra.run.dir's
    ``${prunelab_run_name:}``, so a run's folder says what ran (``…_snip-init_k0.95``)."""
    schedule = root.schedule
    return run_name(str(root.strategy.name), str(schedule.name), float(root.sparsity),
                    schedule.get("levels"))  # fmt: skip


OmegaConf.register_new_resolver(
    "prunelab_run_name", lambda *, _root_: run_name_of(_root_), replace=True
)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_entry(cfg: DictConfig) -> float:
    """Run one job; its folder gets ``result.json``, or ``error.txt`` if it failed.

    In a sweep the exception goes back to Hydra, which records the job as failed and runs the
    rest; a single run prints user errors as one line and exits 1.
    """
    # Here, not at the top: Lightning and torch cost 5 s to import, which --help and a
    # refused command line need not pay (benchmarks/bench_cli.py measures it).
    from prunelab.finish import unrecovered_note
    from prunelab.workflows import run_jobs

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    if multirun and gpus.uses_gpu_pool(HydraConfig.get()):
        log.info("worker holds GPU %d", gpus.claim_gpu(gpus.gpu_count()))
    try:
        job = load(cfg)
    except PrunelabError as e:
        outcome: dict | BaseException = e
    else:
        [outcome] = run_jobs([job], progress_bar=wants_progress_bar(job.progress_bar, multirun))
    if not isinstance(outcome, BaseException):
        if not multirun and (note := unrecovered_note(outcome)):
            log.info(note)
        return outcome["test_acc"]
    if multirun or not isinstance(outcome, PrunelabError):
        raise outcome
    print(f"error: {outcome}", file=sys.stderr)
    sys.exit(1)


def wants_progress_bar(setting: str, multirun: bool) -> bool:
    """``progress_bar``: ``auto`` gives a single run in a terminal a progress bar; sweeps and
    output to files keep one line per epoch. Lightning's bar writes to stdout: that is the
    stream that must be a terminal."""
    setting = setting.lower()  # progress_bar=true arrives as the text "True"
    if setting == "auto":
        return not multirun and sys.stdout.isatty()
    return setting == "true"


# The folder of the sweep this process runs (``SweepFolder``), for the command's last line.
_sweeps: list[Path] = []


class SweepFolder(Callback):
    """Hydra callback: remember where a sweep writes, once it starts (after the GPU pool's
    check), so that ``main`` can end the command by saying where the results are and how to
    report them, whether every job finished or not."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _sweeps.append(Path(str(config.hydra.sweep.dir)))


def sweep_end(sweep: Path) -> str:
    """The last line of a sweep: its folder, how many jobs there finished, and the exact
    command that reports it (the folder as typed relative to here when it is below here)."""
    done = len(list(sweep.glob(f"*/{RESULT_FILE}")))
    shown = os.path.relpath(sweep) if sweep.resolve().is_relative_to(Path.cwd()) else sweep
    return (f"sweep folder {shown}: {done} finished job(s); report them with: "
            f"python -m prunelab.report {shlex.quote(str(shown))}")  # fmt: skip


def help_text() -> str:
    """``--help``: conf/config.yaml's ``hydra.help.template``, rendered here. Hydra renders
    it too, but first lists every option of every config group for placeholders this
    template does not use: most of a second before the first line."""
    return str(OmegaConf.load(CONF_DIR / "config.yaml").hydra.help.template)


def main() -> None:
    """Command-line entry point (``python -m prunelab.train``, ``prunelab-train``)."""
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(help_text())
        return
    try:
        check_argv(sys.argv[1:])
    except PrunelabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    try:
        _hydra_entry()
    finally:
        if _sweeps:  # after the launcher's own last words, on success or failure alike
            print(sweep_end(_sweeps.pop()), flush=True)


if __name__ == "__main__":
    # Run the importable module's entry, not __main__'s copy: launchers that ship the task to
    # other processes (joblib, submitit) then pickle it by reference.
    from prunelab import train as importable

    importable.main()
