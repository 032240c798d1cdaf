"""Sweeps end to end: presets, dense cache, kill-and-resume, failures, and the report."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

from prunelab import cache
from prunelab.report import COMPARISON_PLOTS, EQUAL_COST_PLOTS, make_report
from prunelab.report.__main__ import main as report_main
from prunelab.report.plots import epoch_plot_name, sparsity_plot_name
from prunelab.results import RESULT_FILE

from .conftest import ROOT, run_cli_killed_at_result, train_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sweep_args(sweep_dir: Path, cache_dir: Path, *extra: str) -> list[str]:
    """The arguments of ``python -m prunelab.train`` for the smoke sweep into ``sweep_dir``."""
    return [
        "-m", "experiment=smoke", f"hydra.sweep.dir={sweep_dir}", f"paths.cache_dir={cache_dir}",
        *extra,
    ]  # fmt: skip


def results(sweep_dir: Path) -> dict[str, Path]:
    return {p.parent.name: p for p in sweep_dir.glob(f"*/{RESULT_FILE}")}


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory) -> Path:
    """The CI smoke experiment, run once through the real CLI, plus two jobs that diverge
    (a learning rate of 1e6 on the dense phase of seed 1)."""
    root = tmp_path_factory.mktemp("smoke")
    sweep, cache_dir = root / "sweep", root / "cache"
    diverging = train_cli(*sweep_args(sweep, cache_dir, "seed=1", "sparsity=0.5", "optim.lr=1e6"))
    assert diverging.returncode == 1, "a failed job makes the sweep exit 1"
    # even then, the command ends by saying where the sweep is and how to report it
    assert diverging.stdout.strip().splitlines()[-1] == (
        f"sweep folder {sweep}: 0 finished job(s); report them with: "
        f"python -m prunelab.report {sweep}"
    )
    proc = train_cli(*sweep_args(sweep, cache_dir))  # last: its multirun.yaml is the record
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


def test_a_sweep_with_a_bad_value_is_refused_before_any_job_runs(tmp_path):
    proc = train_cli(*sweep_args(tmp_path / "sweep", tmp_path / "cache", "sparsity=0,0.5,1.5"))
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line == "error: sparsity must be in [0, 1), got 1.5 (e.g. sparsity=0.9 for 90 %)"
    assert not list(tmp_path.rglob(RESULT_FILE)) and not (tmp_path / "cache").exists()


def test_the_smoke_experiment_runs_every_config_and_keeps_going_after_a_failure(smoke_sweep):
    done = results(smoke_sweep)
    assert len(done) == 6, sorted(done)
    failed = sorted(p.parent.name for p in smoke_sweep.glob("*/error.txt"))
    assert failed == ["optim.lr=1000000.0,seed=1,sparsity=0.5,strategy=neuron",
                      "optim.lr=1000000.0,seed=1,sparsity=0.5,strategy=weight"]  # fmt: skip
    first, *rest = (smoke_sweep / failed[0] / "error.txt").read_text().splitlines()
    assert first.startswith("TrainingError: loss became nan in epoch 0: training diverged")
    after = [line for line in rest if line]
    assert after and after[0].startswith("Traceback"), "the error first, then its traceback"


def test_the_default_sweeper_expands_like_hydras_and_composes_no_job_twice(tmp_path, monkeypatch):
    """``hydra/sweeper=checked`` expands a sweep as Hydra's basic sweeper does (every config
    gets its folder) and leaves the check of its batches to ``check_argv``: inside Hydra each
    job is composed once, by the launcher, not a second time by the sweeper."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    composed: list[tuple[str, ...]] = []
    real = ConfigLoaderImpl.load_sweep_config

    def counting(self, master_config, sweep_overrides):
        composed.append(tuple(sweep_overrides))
        return real(self, master_config, sweep_overrides)

    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config", counting)
    sweep = tmp_path / "sweep"
    proc = train_cli(*sweep_args(sweep, tmp_path / "cache", "strategy=weight", "sparsity=0,0.5"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "checked_sweeper.CheckedSweeper" in (sweep / "multirun.yaml").read_text()
    assert sorted(results(sweep)) == ["seed=0,sparsity=0,strategy=weight",
                                      "seed=0,sparsity=0.5,strategy=weight"]  # fmt: skip
    assert len(composed) == 2 and len(set(composed)) == 2, composed
    assert proc.stdout.strip().splitlines()[-1] == (
        f"sweep folder {sweep}: 2 finished job(s); report them with: "
        f"python -m prunelab.report {sweep}"
    ), "a sweep ends with its folder and the command that reports it"


def test_report_numbers_equal_result_json_and_all_eight_plots_are_images(smoke_sweep, tmp_path):
    out = make_report(smoke_sweep, tmp_path / "report")
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 6
    for _, row in summary.iterrows():
        r = json.loads((smoke_sweep / row["job"] / RESULT_FILE).read_text())
        for col in ("sparsity", "seed", "train_acc", "val_acc", "test_acc", "test_loss"):
            assert row[col] == r[col], col
        for key, value in r["figures"].items():
            assert row[key] == value, key
        assert row["strategy"] == r["strategy"]
        assert r["inference"] is None and pd.isna(row["inference_speedup"]), "a quick look"
    eight = [epoch_plot_name(split, s) for split in ("train", "test") for s in ("weight", "neuron")]
    eight += [sparsity_plot_name(s) for s in ("weight", "neuron")]
    eight += list(COMPARISON_PLOTS.values())
    for name in [*eight, *(p[0] for p in EQUAL_COST_PLOTS)]:
        path = out / name
        assert path.read_bytes()[:8] == PNG_MAGIC, name
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
        assert img.std() > 0.01, f"{name} is not blank"
    md = (out / "report.md").read_text()
    assert "## Failed jobs" in md and "optim.lr=1000000.0,seed=1,sparsity=0.5,strategy=weight" in md
    assert "training diverged" in md
    assert "4 failed" not in md and "2 failed" in md
    assert "| 90 |" in md and "Dense baseline" in md and "inference speedup" in md


def test_report_cli_on_an_empty_dir_is_one_clear_line(tmp_path, capsys):
    assert report_main([str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no result.json or error.txt under") and "\n" not in err


def test_report_lists_configs_that_never_started(smoke_sweep, tmp_path):
    import shutil

    copy = tmp_path / "sweep"
    shutil.copytree(smoke_sweep, copy)
    shutil.rmtree(copy / "seed=0,sparsity=0.5,strategy=neuron")
    md = (make_report(copy) / "report.md").read_text()
    assert "## Missing jobs" in md
    assert "strategy=neuron sparsity=0.5 seed=0" in md


@pytest.mark.reliability
def test_a_killed_sweep_resumes_without_redoing_finished_jobs(tmp_path):
    """SIGKILL right after the third job's result is in place (not a race against the
    machine's speed): the re-run trains the other three, and only them."""
    sweep, cache_dir = tmp_path / "sweep", tmp_path / "cache"
    killed = run_cli_killed_at_result(*sweep_args(sweep, cache_dir), n=3, when="after")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    first_out = killed.stdout + killed.stderr
    before = {name: p.read_bytes() for name, p in results(sweep).items()}
    mtimes = {name: p.stat().st_mtime_ns for name, p in results(sweep).items()}
    assert len(before) == 3, sorted(before)
    ckpt = next(cache_dir.glob(f"*/{cache.CHECKPOINT}"))
    ckpt_mtime = ckpt.stat().st_mtime_ns

    again = train_cli(*sweep_args(sweep, cache_dir))
    assert again.returncode == 0, again.stderr[-3000:]
    after = results(sweep)
    assert len(after) == 6 and len(list(sweep.glob("*/"))) == 6
    for name, content in before.items():
        assert (
            after[name].read_bytes() == content and after[name].stat().st_mtime_ns == mtimes[name]
        )
    text = first_out + again.stdout + again.stderr
    assert text.count("training the dense model") == 1
    assert [p for p in cache_dir.iterdir() if p.is_dir()] == [ckpt.parent]
    assert ckpt.stat().st_mtime_ns == ckpt_mtime
    assert not list(cache_dir.glob(".*")), "no half-built cache entry left behind"
    assert "training the dense model" not in again.stdout + again.stderr


@pytest.mark.reliability
def test_two_jobs_started_at_once_on_one_dense_key_train_it_once(tmp_path):
    cache_dir = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prunelab.train",
                f"sparsity={k}",
                "data.limit=2000",
                "schedule.epochs=1",
                f"hydra.run.dir={tmp_path / str(k)}",
                f"paths.cache_dir={cache_dir}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for k in (0.5, 0.9)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "".join(outs).count("training the dense model") == 1
    entries = set()
    for k in (0.5, 0.9):
        r = json.loads((tmp_path / str(k) / RESULT_FILE).read_text())
        assert r["status"] == "ok" and r["sparsity"] == k
        assert r["figures"]["sparsity/layer1"] == pytest.approx(k, abs=1e-4)
        entries.add(r["dense_cache"]["entry"])
    [entry] = [p for p in cache_dir.iterdir() if p.is_dir()]
    assert entries == {str(entry)}, "both pruned the one model that was trained"


@pytest.mark.reliability
def test_a_failing_cache_build_leaves_nothing_that_looks_finished(tmp_path):
    def explode(workdir: Path) -> None:
        (workdir / cache.CHECKPOINT).write_text("half")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        cache.get_or_build(tmp_path, "k", explode)
    assert not (tmp_path / "k").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".k.building", "k.lock"]

    seen = []

    def build(workdir: Path) -> None:
        seen.append(sorted(p.name for p in workdir.iterdir()))  # what the last build left
        (workdir / cache.CHECKPOINT).write_text("ok")

    entry = cache.get_or_build(tmp_path, "k", build)
    assert (entry / cache.CHECKPOINT).read_text() == "ok"
    assert seen == [[cache.CHECKPOINT]], "the next builder gets the work dir to resume from"
    cache.get_or_build(tmp_path, "k", lambda d: seen.append("again"))
    assert len(seen) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k", "k.lock"]
