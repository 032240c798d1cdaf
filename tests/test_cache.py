"""The dense cache and checkpoints: keyed by everything the dense phase reads, checked
against the sha256 written with them, and set aside (renamed, never deleted) and rebuilt when
they fail that check, with one line saying so."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from prunelab import cache
from prunelab.config import load
from prunelab.config.schema import schema_fields
from prunelab.data import RawDataset
from prunelab.identity import NOT_IN_IDENTITY
from prunelab.results import sha256_file
from prunelab.resume import LAST_CKPT, LAST_MANIFEST, resume_point, write_manifest
from prunelab.run import run_job
from prunelab.schedules import SCHEDULES

pytestmark = pytest.mark.reliability

QUICK = ["data.limit=600", "schedule.epochs=2", "sparsity=0.7", "inference_batch_size=null"]


def other_value(key: str, value: Any, f: dataclasses.Field) -> Any:
    """A different valid value for schema field ``f``."""
    choices = f.metadata.get("choices")
    if isinstance(value, bool):
        return not value
    if choices:
        return next(c for c in choices if c != value)
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5
    if isinstance(value, list):
        return [*value[:-1], value[-1] + 1] if value else [1]
    if value is None:
        return 2
    return f"{value}-other"


def fields_of(job: Any, prefix: str = "") -> dict[str, dataclasses.Field]:
    out = {}
    for name, f in schema_fields(type(job)).items():
        value = getattr(job, name)
        if dataclasses.is_dataclass(value):
            out.update(fields_of(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = f
    return out


def with_value(job: Any, key: str, value: Any) -> Any:
    head, _, rest = key.partition(".")
    if not rest:
        return dataclasses.replace(job, **{head: value})
    return dataclasses.replace(job, **{head: with_value(getattr(job, head), rest, value)})


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_every_setting_that_the_dense_phase_reads_is_in_the_cache_key(make_cfg, schedule):
    """Change each setting of a job's identity in turn: the dense-cache key must change,
    unless the setting is one the dense phase never reads (``cache.AFTER_THE_DENSE_PHASE``),
    and then it must not. A new setting fails here until it is put on one side."""
    epochs = {"iterative": ["schedule.epochs=2"], "lottery": ["schedule.epochs=3"]}
    job = load(make_cfg(f"schedule={schedule}", *epochs.get(schedule, [])))
    key = cache.dense_key(cache.dense_settings(job, "digest"))
    checked = []
    for name, f in fields_of(job).items():
        out_of_identity = any(name == d or name.startswith(f"{d}.") for d in NOT_IN_IDENTITY)
        if out_of_identity or name == "schedule.name":
            continue
        value = functools.reduce(getattr, name.split("."), job)
        changed = with_value(job, name, other_value(name, value, f))
        moved = cache.dense_key(cache.dense_settings(changed, "digest")) != key
        after = any(name == a or name.startswith(f"{a}.") for a in cache.AFTER_THE_DENSE_PHASE)
        if schedule == "iterative" and name == "schedule.ramp_epochs":
            after = False  # its learning rate decays over the window: the dense phase's too
        if schedule == "imp" and name == "schedule.rewind_epoch":
            after = True  # IMP's levels rewind through runs of their own, not the cache
        assert moved != after, f"{name}: in the key {moved}, declared after the dense {after}"
        checked.append(name)
    assert {"seed", "data.batch_size", "optim.lr", "model.sizes"} <= set(checked)


def test_the_thread_count_and_torch_version_are_in_the_key(make_cfg, monkeypatch):
    """Another thread count or torch gives other bits for the same config: a model from the
    cache must be the one this process would have trained, so each moves the key."""
    job = load(make_cfg())

    def key() -> str:
        return cache.dense_key(cache.dense_settings(job, "digest"))

    first = key()
    assert key() == first, "the key is stable within a process"
    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 1)
    with_threads = key()
    monkeypatch.undo()
    monkeypatch.setattr(torch, "__version__", f"{torch.__version__}+other")
    with_torch = key()
    assert len({first, with_threads, with_torch}) == 3


def test_the_data_content_is_in_the_key(make_cfg):
    job = load(make_cfg())
    x = torch.zeros(3, 4, dtype=torch.uint8)
    y = torch.tensor([0, 1, 2])
    a = RawDataset("mnist", x, y, x, y, source="a")
    b = RawDataset("mnist", x + 1, y, x, y, source="a")
    c = RawDataset("mnist", x.clone(), y.clone(), x, y, source="elsewhere")
    assert a.digest != b.digest and a.digest == c.digest, "content, not where it came from"
    keys = {cache.dense_key(cache.dense_settings(job, d.digest)) for d in (a, b)}
    assert len(keys) == 2


def cached_entry(tmp_path: Path) -> Path:
    [entry] = [p for p in (tmp_path / "cache").iterdir() if p.is_dir() and "." not in p.name]
    return entry


@pytest.mark.parametrize("damage", ["truncated", "foreign pickle", "no manifest", "unloadable"])
def test_a_damaged_cache_entry_is_set_aside_and_rebuilt_with_one_line(
    make_cfg, tmp_path, caplog, damage
):
    first = run_job(make_cfg(*QUICK))
    entry = cached_entry(tmp_path)
    ckpt = entry / cache.CHECKPOINT
    if damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    elif damage == "foreign pickle":
        ckpt.write_bytes(pickle.dumps({"state_dict": "not ours"}))
    elif damage == "unloadable":  # its sha256 recorded: a file this torch cannot read
        ckpt.write_bytes(b"PK\x03\x04 not a torch archive")
        manifest = json.loads((entry / cache.MANIFEST).read_text())
        manifest["files"][cache.CHECKPOINT] = sha256_file(ckpt)
        (entry / cache.MANIFEST).write_text(json.dumps(manifest))
    else:
        (entry / cache.MANIFEST).unlink()
    cache._verified.clear()  # a new process: it has checked nothing yet
    caplog.set_level(logging.WARNING, logger="prunelab")
    again = run_job(make_cfg(*QUICK, f"paths.output_dir={tmp_path / 'again'}"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "set aside as" in warnings[0] and "trained again" in warnings[0]
    [aside] = (tmp_path / "cache").glob(f"{entry.name}.corrupt-*")
    assert (aside / cache.CHECKPOINT).is_file(), "renamed, not deleted"
    assert cache.entry_problem(cached_entry(tmp_path)) is None
    for k in ("test_acc", "val_acc", "train_acc", "test_loss"):
        assert again[k] == first[k], "the rebuilt model is the same model"


def checkpoint_in(folder: Path, epoch: int = 3, members: int = 1, identity: str = "me") -> Path:
    path = folder / LAST_CKPT
    torch.save({"epoch": epoch, "state_dict": {"w": torch.ones(2)}}, path)
    write_manifest(path, path, epoch, members, identity, {"seed": 0})
    return path


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ("truncated", "does not match the sha256"),
        ("foreign", "does not match the sha256"),
        ("no manifest", "no readable last.json"),
        ("older format", "an older format"),
        ("other stack size", "a stack of 3"),
    ],
)
def test_a_checkpoint_that_fails_its_check_is_set_aside_not_loaded(tmp_path, caplog, damage, why):
    path = checkpoint_in(tmp_path, members=3 if damage == "other stack size" else 1)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "foreign":
        path.write_bytes(pickle.dumps({"epoch": 3}))
    elif damage == "no manifest":
        (tmp_path / LAST_MANIFEST).unlink()
    elif damage == "older format":
        manifest = (tmp_path / LAST_MANIFEST).read_text().replace('"format": ', '"format": -')
        (tmp_path / LAST_MANIFEST).write_text(manifest)
    caplog.set_level(logging.WARNING, logger="prunelab")
    assert resume_point(tmp_path, members=1, identity="me") == (None, -1)
    [line] = [r.getMessage() for r in caplog.records]
    assert why in line and "set aside as" in line and "starting over" in line
    assert not path.exists() and len(list(tmp_path.glob(f"{LAST_CKPT}.unusable-*"))) == 1


def test_a_sound_checkpoint_of_this_run_is_resumed(tmp_path):
    path = checkpoint_in(tmp_path, epoch=4)
    assert resume_point(tmp_path, members=1, identity="me") == (path, 4)


def test_a_job_killed_between_its_manifest_and_its_rename_resumes_from_the_save_before(
    tmp_path,
):
    """LastCheckpoint writes last.json for the new checkpoint, then renames it into place; a
    kill in between (SLURM's requeue did it) leaves the old checkpoint, which still resumes."""
    path = checkpoint_in(tmp_path, epoch=4)
    new = tmp_path / ".last.ckpt.new.tmp"
    torch.save({"epoch": 7, "state_dict": {"w": torch.zeros(2)}}, new)
    write_manifest(path, new, 7, 1, "me", {"seed": 0})
    assert resume_point(tmp_path, members=1, identity="me") == (path, 4)  # killed here
    new.replace(path)
    assert resume_point(tmp_path, members=1, identity="me") == (path, 7)  # or after the rename
