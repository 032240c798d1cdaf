"""Every result is tied to exactly the config that made it: a job folder holding a result or a
checkpoint of another config is never silently reused; one of the same identity is, whatever
the keys that cannot change a number (logger, paths, …)."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from prunelab.config import check_argv, load
from prunelab.errors import MismatchError
from prunelab.identity import ADDED_LATER, NOT_IN_IDENTITY, differences, identity, identity_settings
from prunelab.results import METRICS_FILE, MODEL_FILE, RESULT_FILE, check_prior
from prunelab.run import run_job

from .conftest import ROOT, train_cli

pytestmark = pytest.mark.reliability

QUICK = ["strategy=weight", "sparsity=0.5", "data.limit=2000", "inference_batch_size=null"]


def test_a_folder_with_another_configs_result_stops_the_run_naming_the_difference(tmp_path):
    """The issue's example: the same folder, schedule.epochs 1 then 2."""
    run_dir = tmp_path / "D"
    common = [*QUICK, f"hydra.run.dir={run_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]
    first = train_cli(*common, "schedule.epochs=1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    kept = (RESULT_FILE, METRICS_FILE, MODEL_FILE)
    before = {name: (run_dir / name).read_bytes() for name in kept}

    second = train_cli(*common, "schedule.epochs=2", cwd=tmp_path)
    assert second.returncode != 0
    [line] = second.stderr.strip().splitlines()
    assert line.startswith(f"error: {run_dir} holds a result of another config")
    assert "(schedule.epochs: 1 → 2)" in line and "on_mismatch=rerun" in line
    assert {name: (run_dir / name).read_bytes() for name in kept} == before, "nothing touched"

    again = train_cli(*common, "schedule.epochs=2", "on_mismatch=rerun", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    new = json.loads((run_dir / RESULT_FILE).read_text())
    assert new["epochs"] == 2
    rows = pd.read_csv(run_dir / METRICS_FILE).dropna(subset=["test/acc"])
    assert rows["epoch"].tolist() == [0, 1], "a log of its own, not appended to the old one"
    [aside] = run_dir.glob(".superseded-*/")
    assert aside.name == f".superseded-{json.loads(before[RESULT_FILE])['identity']}"
    for name in kept:  # the old run's files kept, byte for byte, beside the new ones
        assert (aside / name).read_bytes() == before[name], name


def test_keys_that_cannot_change_a_number_still_find_the_finished_result(make_cfg, tmp_path):
    first = run_job(make_cfg(*QUICK, "schedule.epochs=1"))
    written = (tmp_path / "run" / RESULT_FILE).read_bytes()
    same = make_cfg(*QUICK, "schedule.epochs=1", "logger=tensorboard", "save_model=false",
                    "progress_bar=false", "checkpoint_every_n_epochs=3", "dense_cache=false",
                    f"paths.cache_dir={tmp_path / 'elsewhere'}")  # fmt: skip
    assert run_job(same) == first
    assert (tmp_path / "run" / RESULT_FILE).read_bytes() == written
    assert not (tmp_path / "elsewhere").exists(), "nothing trained"


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        ("trainer=gpu", "trainer.accelerator: cpu → gpu"),
        ("trainer.precision=bf16-mixed", "trainer.precision: 32-true → bf16-mixed"),
        ("optim.lr=0.001", "optim.lr: 0.002 → 0.001"),
        ("data=fashion_mnist", "data.name: mnist → fashion_mnist"),
    ],
)
def test_a_result_is_not_the_result_of_another_trainer_or_setting(make_cfg, changed, named):
    """``trainer`` is left out of job folder names, so a sweep re-run with ``trainer=gpu``
    lands in the CPU run's folders: its identity must tell them apart."""
    first = load(make_cfg(*QUICK))
    done = {**dataclasses.asdict(first)}
    other = dataclasses.asdict(load(make_cfg(*QUICK, changed)))
    assert identity(other) != identity(done)
    assert named in differences(done, other)


def test_every_key_outside_the_identity_stays_out_of_job_folder_names():
    """A sweep's job folders are named after its command-line settings, less Hydra's
    ``exclude_keys``: a key that cannot change a number must be among them, or a re-run
    with it changed lands in a new folder and trains again."""
    from omegaconf import OmegaConf

    from prunelab.config import CONF_DIR
    from prunelab.config.schema import PathsConfig

    hydra = OmegaConf.load(CONF_DIR / "config.yaml").hydra
    excluded = set(hydra.job.config.override_dirname.exclude_keys)
    outside = {k for k in NOT_IN_IDENTITY if k != "paths"}
    outside |= {f"paths.{f.name}" for f in dataclasses.fields(PathsConfig)} - {"paths.output_dir"}
    assert outside <= excluded, sorted(outside - excluded)


def test_a_sweep_rerun_with_keys_outside_the_identity_finds_its_finished_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "experiment=smoke", "strategy=weight", "sparsity=0,0.5", "data.limit=300",
            f"hydra.sweep.dir={sweep}", f"paths.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    first = train_cli(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    written = {p.parent.name: p.read_bytes() for p in sweep.glob(f"*/{RESULT_FILE}")}
    assert len(written) == 2
    again = train_cli(*args, "logger=tensorboard", "dense_cache=false", "progress_bar=false",
                      "inference_batch_size=null", "checkpoint_every_n_epochs=3",
                      "on_mismatch=rerun")  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p.parent.name: p.read_bytes() for p in sweep.glob(f"*/{RESULT_FILE}")} == written
    assert not list(sweep.glob("*/.superseded-*")) and not list(sweep.glob("*/tensorboard"))


def test_an_edited_preset_is_a_different_config(tmp_path):
    """A sweep re-run after its preset changed: the command line is the same, the config is
    not; every job is refused before any of them trains."""
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    args = ["-m", "experiment=smoke", "sparsity=0,0.5", "data.limit=300",
            f"hydra.sweep.dir={sweep}", f"paths.cache_dir={cache}"]  # fmt: skip
    done = train_cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    edited = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", edited)
    preset = edited / "experiment" / "smoke.yaml"
    preset.write_text(preset.read_text().replace("epochs: 1", "epochs: 2"))
    check_argv([*args[1:], "-m"])  # the unedited preset: every job finds its result
    with pytest.raises(
        MismatchError, match=r"holds a result of another config \(schedule\.epochs: 1 → 2\)"
    ):
        check_argv([*args[1:], "-m"], conf_dir=edited)


class Crash(Exception):
    """Stands for a kill: raised from inside training at a chosen epoch."""


def test_a_checkpoint_of_another_config_is_never_resumed(make_cfg, tmp_path, monkeypatch):
    from prunelab import callbacks

    common = [*QUICK, "schedule.epochs=3", "checkpoint_every_n_epochs=1", "checkpoint_max_share=1",
              "dense_cache=false"]  # fmt: skip
    real = callbacks.EpochSummary.on_train_epoch_end

    def dies(self, trainer, pl_module):
        real(self, trainer, pl_module)
        if trainer.current_epoch == 1:
            raise Crash

    monkeypatch.setattr(callbacks.EpochSummary, "on_train_epoch_end", dies)
    with pytest.raises(Crash):
        run_job(make_cfg(*common))
    monkeypatch.setattr(callbacks.EpochSummary, "on_train_epoch_end", real)
    assert (tmp_path / "run" / "last.ckpt").is_file()

    with pytest.raises(MismatchError, match=r"holds a checkpoint of another config \(optim.lr"):
        run_job(make_cfg(*common, "optim.lr=0.001"))
    # and the command line refuses it before Hydra sets anything up
    argv = [*common, "optim.lr=0.001", f"hydra.run.dir={tmp_path / 'run'}"]
    with pytest.raises(MismatchError, match=r"holds a checkpoint of another config \(optim.lr"):
        check_argv(argv)
    check_argv([*argv, "on_mismatch=rerun"])
    check_argv([*common, f"hydra.run.dir={tmp_path / 'run'}"])  # its own config resumes it
    assert (tmp_path / "run" / "last.ckpt").is_file(), "kept for the config that wrote it"
    result = run_job(make_cfg(*common, "optim.lr=0.001", "on_mismatch=rerun"))
    assert result["resumed_after_epoch"] is None, "started over"
    assert list((tmp_path / "run").glob(".superseded-*/last.ckpt"))


def test_a_result_written_before_identities_existed_is_not_taken_for_this_codes(tmp_path):
    (tmp_path / RESULT_FILE).write_text(json.dumps({"status": "ok", "config": {"seed": 0}}))
    with pytest.raises(MismatchError, match="made by an older prunelab"):
        check_prior(tmp_path, "abc", {"seed": 0}, "stop")
    assert check_prior(tmp_path, "abc", {"seed": 0}, "rerun") is None
    assert (tmp_path / ".superseded-unversioned" / RESULT_FILE).is_file()


def test_the_identity_ignores_exactly_the_listed_keys(make_cfg):
    config = dataclasses.asdict(load(make_cfg()))
    kept = identity_settings(config)
    dropped = {k for k in _flat_keys(config) if k not in kept}
    listed = {k for k in dropped if any(k == d or k.startswith(f"{d}.") for d in NOT_IN_IDENTITY)}
    assert dropped == listed | set(ADDED_LATER) and "seed" in kept and "trainer.accelerator" in kept


def test_settings_added_later_keep_older_identities_and_count_once_set(make_cfg):
    """A job folder written before ``model.name``/``model.bias``/``data.augment`` existed
    keeps its identity for the same command line; set to anything else, they count."""
    config = dataclasses.asdict(load(make_cfg()))
    older = copy.deepcopy(config)
    del older["model"]["name"], older["model"]["bias"], older["model"]["args"]
    del older["data"]["augment"]
    assert identity(config) == identity(older)
    lenet = dataclasses.asdict(load(make_cfg("model=lenet5")))
    assert identity_settings(lenet)["model.name"] == "lenet5"
    assert identity(lenet) != identity(config)


def _flat_keys(config: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in config.items():
        out += _flat_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return out


def test_a_results_numeric_environment_is_recorded(make_cfg):
    import torch

    result = run_job(make_cfg(*QUICK, "schedule.epochs=1"))
    env = result["numerics"]
    assert env["device"] == "cpu" and env["dtype"] == "float32"
    assert env["threads"] == torch.get_num_threads() and env["torch_version"] == torch.__version__
    assert env["float32_matmul_precision"] == "highest" and env["trainer_precision"] == "32-true"
    assert result["dense_cache"]["numerics"]["threads"] == env["threads"], "the dense phase's too"
    assert result["identity"] == identity(result["config"])
    assert len(result["data_sha256"]) == 64
    assert Path(result["dense_cache"]["entry"]).is_dir()
