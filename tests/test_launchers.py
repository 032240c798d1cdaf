"""Scale-out: one GPU per worker on a local machine (faked GPUs here), and SLURM via submitit."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict

import pytest

from prunelab.config import check_workers
from prunelab.errors import ConfigError
from prunelab.results import RESULT_FILE

from .conftest import train_cli as cli


def test_jobs_on_faked_gpus_never_share_a_gpu_and_all_finish(tmp_path):
    env = {"PRUNELAB_FAKE_GPU_COUNT": "2", "PRUNELAB_GPU_LOCK_DIR": str(tmp_path / "locks")}
    proc = cli(
        "-m", "experiment=smoke", "hydra/launcher=local_gpus", "sparsity=0,0.9",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", f"paths.cache_dir={tmp_path / 'cache'}",
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob(f"*/{RESULT_FILE}")]
    assert len(results) == 4 and all(r["status"] == "ok" for r in results)
    by_gpu = defaultdict(list)
    for r in results:
        by_gpu[r["cuda_visible_devices"]].append((r["started_at"], r["finished_at"]))
    assert set(by_gpu) == {"0", "1"}, "both GPUs used, nothing else"
    assert sorted(p.name for p in (tmp_path / "locks").iterdir()) == ["gpu-0.lock", "gpu-1.lock"]
    for spans in by_gpu.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"two jobs overlapped on one GPU: {spans}"


def test_more_workers_than_gpus_fails_fast_with_one_line(tmp_path):
    proc = cli(
        "-m", "experiment=smoke", "hydra/launcher=local_gpus", "hydra.launcher.n_jobs=3",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", env={"PRUNELAB_FAKE_GPU_COUNT": "2"},
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: hydra.launcher.n_jobs=3 but only 2 GPU(s) are visible; use n_jobs ≤ 2 "
        "(more jobs than GPUs queue on their own)"
    )
    assert not list(tmp_path.rglob(RESULT_FILE))


def test_worker_count_checks():
    check_workers(2, 2)
    with pytest.raises(ConfigError, match="none is visible"):
        check_workers(1, 0)
    with pytest.raises(ConfigError, match="n_jobs=5 but only 4"):
        check_workers(5, 4)


def test_the_slurm_launcher_config_composes():
    proc = cli("hydra/launcher=slurm", "--cfg", "hydra")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "prunelab_launcher.slurm_launcher.PrunelabSlurmLauncher" in out
    assert "gpus_per_node: auto" in out and "tasks_per_node: 1" in out


def test_a_sweep_runs_through_submitits_local_executor(tmp_path):
    proc = cli(
        "-m", "experiment=smoke", "hydra/launcher=submitit_local", "strategy=weight",
        "sparsity=0,0.9",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", f"paths.cache_dir={tmp_path / 'cache'}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob(f"*/{RESULT_FILE}")]
    assert sorted((r["strategy"], r["sparsity"]) for r in results) == [
        ("weight", 0.0), ("weight", 0.9),
    ]  # fmt: skip
