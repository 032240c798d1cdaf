"""logger=mlflow and logger=wandb against the real packages: a tiny run's figures read back
through each tool's own API or records equal the ``metrics.csv`` it still writes, each member
of a stack gets a run of its own, nothing reaches the network, and a missing package is one
line naming the extra. (logger=tensorboard: tests/test_package.py.)"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from prunelab.results import RESULT_FILE

from .conftest import train_cli

# A small MLP on 600 images: a run takes about half a second once Lightning is imported.
QUICK = ("data.limit=600", "schedule.epochs=2", "model.sizes=[784,64,32,10]",
         "inference_batch_size=null", "dense_cache=false", "save_model=false")  # fmt: skip


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network and nothing written outside ``tmp_path``, whatever the logger sets itself:
    W&B offline and silent, its config and cache here; MLflow's file store allowed (as the
    logger allows it) and its telemetry off."""
    for key, value in {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DISABLE_GIT": "true",
        "WANDB_ERROR_REPORTING": "false",
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def train(tmp_path: Path, *args: str) -> Path:
    """One quick run (or a stacked sweep, with ``-m``) in ``tmp_path``; its folder."""
    folder = tmp_path / "run"
    where = f"hydra.sweep.dir={folder}" if "-m" in args else f"hydra.run.dir={folder}"
    ran = train_cli(*args, *QUICK, where, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return folder


def csv_curve(job: Path, key: str) -> dict[int, float]:
    """``key`` by step, as the job's ``metrics.csv`` holds it."""
    rows = pd.read_csv(job / "metrics.csv").dropna(subset=[key])
    assert len(rows), f"{key} is not in {job}/metrics.csv"
    return dict(zip(rows["step"].astype(int), rows[key], strict=True))


def mlflow_run(job: Path) -> tuple[Any, Any]:
    """The job's one MLflow run and a client of its store, through MLflow's own API."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(job / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("prunelab")
    [run] = client.search_runs([experiment.experiment_id])
    return client, run


def test_logger_mlflow_keeps_the_csv_figures_in_a_local_store(tmp_path):
    job = train(tmp_path, "logger=mlflow")
    client, run = mlflow_run(job)
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    for key in ("train/loss", "test/acc", "final/test/acc"):
        history = client.get_metric_history(run.info.run_id, key)
        assert {m.step: m.value for m in history} == csv_curve(job, key), key
    result = json.loads((job / RESULT_FILE).read_text())
    assert run.data.metrics["final/test/acc"] == pytest.approx(result["test_acc"])


# The .wandb file: a LevelDB-style log of 32 KiB blocks after a 7-byte file header; each record
# is behind a 7-byte header (crc32, length, type) and may be cut across blocks.
BLOCK, HEADER, FULL, LAST = 32768, 7, 1, 4


def wandb_records(job: Path) -> list[Any]:
    """The records of the job's one offline W&B run, parsed with wandb's own protobufs (the
    SDK has no offline reader: ``wandb sync`` sends the file as it is)."""
    from wandb.proto import wandb_internal_pb2 as pb

    [path] = job.glob("wandb/offline-run-*/run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    records, chunk, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # a block's tail too short for a header: padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk += data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (FULL, LAST):
            records.append(pb.Record.FromString(chunk))
            chunk = b""
    return records


def wandb_curve(records: list[Any], key: str) -> dict[int, float]:
    """``key`` by trainer step, from the run's history records."""
    curve = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json)
                   for i in record.history.item}  # fmt: skip
            if key in row:
                curve[int(row["trainer/global_step"])] = row[key]
    return curve


def kinds(records: list[Any]) -> dict[str, Any]:
    """The last record of each type."""
    return {record.WhichOneof("record_type"): record for record in records}


def test_logger_wandb_writes_an_offline_run_with_the_csv_figures(tmp_path):
    job = train(tmp_path, "logger=wandb")
    records = kinds(wandb_records(job))
    assert records["run"].run.display_name == "run"
    assert records["run"].run.project == "prunelab"
    assert records["exit"].exit.exit_code == 0, "the run was finished, not left to the exit"
    for key in ("train/loss", "test/acc", "final/test/acc"):
        assert wandb_curve(wandb_records(job), key) == csv_curve(job, key), key


@pytest.mark.parametrize("logger", ["mlflow", "wandb"])
def test_each_member_of_a_stack_has_a_run_of_its_own(tmp_path, logger):
    """A stack trains its members in one process: W&B's one global run must not be shared,
    and each run holds its own member's figures (the sparsities differ, so do the curves)."""
    sweep = train(tmp_path, "-m", "hydra/launcher=stacked", "sparsity=0.5,0.9", f"logger={logger}")
    jobs = sorted(p.parent for p in sweep.glob(f"*/{RESULT_FILE}"))
    assert [job.name.rsplit(",")[-1] for job in jobs] == ["sparsity=0.5", "sparsity=0.9"]
    assert "stacked run of 2 members" in (sweep / "stacked.log").read_text()
    curves = []
    for job in jobs:
        if logger == "mlflow":
            client, run = mlflow_run(job)
            assert run.info.run_name == job.name
            history = client.get_metric_history(run.info.run_id, "final/test/acc")
            curve = {m.step: m.value for m in history}
        else:
            records = wandb_records(job)
            assert kinds(records)["run"].run.display_name == job.name
            curve = wandb_curve(records, "final/test/acc")
        assert curve == csv_curve(job, "final/test/acc")
        curves.append(curve)
    assert curves[0] != curves[1]


@pytest.mark.parametrize(
    ("logger", "extra", "modules"),
    [
        ("mlflow", "mlflow", ["mlflow"]),
        ("wandb", "wandb", ["wandb"]),
        ("tensorboard", "tb", ["tensorboard", "tensorboardX"]),
    ],
    ids=["mlflow", "wandb", "tensorboard"],
)
def test_a_logger_without_its_package_says_which_extra_to_install(
    tmp_path, monkeypatch, logger, extra, modules
):
    for module in modules:  # None in sys.modules: what importlib finds of a missing package
        monkeypatch.setitem(sys.modules, module, None)
    ran = train_cli(*QUICK, f"logger={logger}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert ran.returncode != 0
    [line] = ran.stderr.strip().splitlines()
    install = f'pip install "prunelab[{extra}]"'
    assert line == f"error: logger={logger} needs the {extra} extra: {install}"
    assert not (tmp_path / "run" / "metrics.csv").exists(), "refused before any training"
