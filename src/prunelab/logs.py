"""Loggers made of loggers: one per member of a stack, and CSV plus another format for one job.

The module and the pruning callbacks log ``m<i>/<key>``; ``MemberLoggers`` hands ``<key>`` to
member i's logger (its job's ``metrics.csv``), and keys without a member prefix (``epoch``)
to all of them. Each job's log then reads like that of a run of one, whatever the stack size.
``CsvAndTensorBoard``, ``CsvAndMlflow`` and ``CsvAndWandb`` (``logger=tensorboard|mlflow|
wandb``) are one job's logger writing the CSV and one more format, each into the job's own
folder: the CSV is what the report, the dense cache and resume read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytorch_lightning.loggers import CSVLogger, Logger

if TYPE_CHECKING:
    import wandb

MEMBER_KEY = re.compile(r"^m(\d+)/(.*)$")


def csv_log(save_dir: str | Path) -> CSVLogger:
    """A job's ``metrics.csv`` directly in ``save_dir``, every row on disk as it is logged (a
    killed run that resumes keeps its curves). ``logger=csv``, the default, is this."""
    return CSVLogger(save_dir, name="", version="", flush_logs_every_n_steps=1)


class FanOut(Logger):
    """A logger made of ``loggers``: saving and finalizing go to all of them, hyperparameters
    to none (each job's ``.hydra/config.yaml`` already holds its full config). Subclasses say
    where metrics go."""

    def __init__(self, loggers: Sequence[Logger]) -> None:
        super().__init__()
        self.loggers = list(loggers)

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def save(self) -> None:
        for logger in self.loggers:
            logger.save()

    def finalize(self, status: str) -> None:
        for logger in self.loggers:
            logger.finalize(status)


class MemberLoggers(FanOut):
    """Routes ``m<i>/<key>`` to ``loggers[i]`` as ``<key>``; unprefixed keys go to all."""

    @property
    def name(self) -> str:
        return "members"

    def finalize(self, status: str) -> None:
        """Lightning says "success" at the end of each stage (the fit, then the final test),
        not of the job: that only flushes, so a run-based logger (mlflow, wandb) is not closed
        before the final figures. ``run.train_stack`` finalizes each member's logger once, at
        the job's end; a failure ends them here."""
        if status == "success":
            self.save()
        else:
            super().finalize(status)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        shared: dict[str, float] = {}
        own: dict[int, dict[str, float]] = {}
        for key, value in metrics.items():
            match = MEMBER_KEY.match(key)
            if match:
                own.setdefault(int(match[1]), {})[match[2]] = value
            else:
                shared[key] = value
        for i, values in own.items():
            self.loggers[i].log_metrics({**shared, **values}, step)


class CsvPlus(FanOut):
    """One job's logger: its ``metrics.csv`` (first) plus one more format, every row to both.
    The CSV is what the report, the dense cache and resume read, whatever else is written."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step)


class CsvAndTensorBoard(CsvPlus):
    """``logger=tensorboard``: TensorBoard event files in ``<save_dir>/tensorboard`` *and*
    ``metrics.csv``. Needs ``pip install "prunelab[tb]"``."""

    def __init__(self, save_dir: str) -> None:
        from pytorch_lightning.loggers import TensorBoardLogger

        super().__init__(
            [
                csv_log(save_dir),
                TensorBoardLogger(
                    save_dir, name="tensorboard", version="", default_hp_metric=False
                ),
            ]
        )

    @property
    def name(self) -> str:
        return "csv+tensorboard"


def job_names(save_dir: str | Path) -> tuple[Path, str, str]:
    """``save_dir`` as an absolute path, its folder's name (the job: ``weight_k0.9`` or a
    sweep's ``sparsity=0.9,strategy=weight``) and its parent's (the sweep), which name the
    job's run in MLflow and W&B."""
    folder = Path(save_dir).resolve()
    return folder, folder.name, folder.parent.name


class CsvAndMlflow(CsvPlus):
    """``logger=mlflow``: an MLflow run in a local file store, ``<save_dir>/mlruns`` (no
    server), *and* the ``metrics.csv`` the report, the dense cache and resume read. Needs
    ``pip install "prunelab[mlflow]"`` (mlflow-skinny is enough).

    Each job has its own store, so a stack's members and a sweep's jobs are runs of their
    own; a resumed job starts a new run, which ``resume.replay`` fills from epoch 0.
    """

    EXPERIMENT = "prunelab"

    def __init__(self, save_dir: str) -> None:
        # Recent MLflow refuses a file store unless asked for one, and sends usage telemetry
        # unless told not to: logger=mlflow asks for the one, and is local, so no network.
        # setdefault: a user's own setting wins.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow.tracking import MlflowClient
        from pytorch_lightning.loggers import MLFlowLogger

        folder, job, _ = job_names(save_dir)
        uri = (folder / "mlruns").as_uri()
        client = MlflowClient(uri)
        if client.get_experiment_by_name(self.EXPERIMENT) is None:  # else Lightning warns
            client.create_experiment(self.EXPERIMENT)
        self.tracking_uri = uri
        super().__init__(
            [
                csv_log(save_dir),
                MLFlowLogger(experiment_name=self.EXPERIMENT, run_name=job, tracking_uri=uri),
            ]
        )

    @property
    def name(self) -> str:
        return "csv+mlflow"


def wandb_settings() -> wandb.Settings:
    """W&B settings for a run that never leaves the machine and never waits for anyone:
    offline (no login, no API key), silent, stdout left alone, and none of the extras that
    run git or probe the hardware."""
    import wandb

    return wandb.Settings(
        mode="offline",
        silent=True,
        console="off",
        disable_git=True,
        disable_code=True,
        save_code=False,
        disable_job_creation=True,
        x_disable_stats=True,
        x_disable_machine_info=True,
    )


class CsvAndWandb(CsvPlus):
    """``logger=wandb``: an offline W&B run in ``<save_dir>/wandb/offline-run-*`` (``wandb
    sync`` uploads it later), *and* the ``metrics.csv`` the report, the dense cache and
    resume read. Needs ``pip install "prunelab[wandb]"``.

    Each logger holds its own run (``reinit="create_new"``): Lightning's ``WandbLogger``
    alone would hand every member of a stack the process's one global run. Runs are named
    after the job's folder and grouped by the sweep's.
    """

    PROJECT = "prunelab"

    def __init__(self, save_dir: str) -> None:
        os.environ.setdefault("WANDB_ERROR_REPORTING", "false")  # no crash reports either
        import wandb
        from pytorch_lightning.loggers import WandbLogger

        folder, job, sweep = job_names(save_dir)
        folder.mkdir(parents=True, exist_ok=True)  # else wandb writes to a temp dir
        self.run = wandb.init(
            dir=folder,
            project=self.PROJECT,
            group=sweep,
            name=job,
            reinit="create_new",
            settings=wandb_settings(),
        )
        # As WandbLogger does for a run it starts: the x axis is the trainer's step.
        self.run.define_metric("trainer/global_step")
        self.run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
        super().__init__([csv_log(save_dir), WandbLogger(experiment=self.run)])

    @property
    def name(self) -> str:
        return "csv+wandb"

    def finalize(self, status: str) -> None:
        """Finish the run too (WandbLogger leaves that to the process's exit): its files are
        complete once the job is, and a sweep in one process does not hold every run open."""
        super().finalize(status)
        self.run.finish(exit_code=0 if status == "success" else 1)
