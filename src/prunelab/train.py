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
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from prunelab import gpus
from prunelab.config import CONF_DIR, check_argv, groups_help, load, settings_help
from prunelab.errors import PrunelabError
from prunelab.run import run_jobs, unrecovered_note

log = logging.getLogger("prunelab")

# `n_jobs: ${prunelab_gpu_count:}` in conf/hydra/launcher/local_gpus.yaml
OmegaConf.register_new_resolver("prunelab_gpu_count", gpus.gpu_count, replace=True)
# --help lists the groups and every setting from the config tree and the schema themselves.
OmegaConf.register_new_resolver("prunelab_groups", groups_help, replace=True)
OmegaConf.register_new_resolver("prunelab_settings", settings_help, replace=True)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_entry(cfg: DictConfig) -> float:
    """Run one job; its folder gets ``result.json``, or ``error.txt`` if it failed.

    In a sweep the exception goes back to Hydra, which records the job as failed and runs the
    rest; a single run prints user errors as one line and exits 1.
    """
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


def main() -> None:
    """Command-line entry point (``python -m prunelab.train``, ``prunelab-train``)."""
    try:
        check_argv(sys.argv[1:])
    except PrunelabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    _hydra_entry()


if __name__ == "__main__":
    # Run the importable module's entry, not __main__'s copy: launchers that ship the task to
    # other processes (joblib, submitit) then pickle it by reference.
    from prunelab import train as importable

    importable.main()
