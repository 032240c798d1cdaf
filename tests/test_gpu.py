"""CUDA: the same configs on the GPU and on the CPU end within rounding of each other.

Every test trains configs of ``gpu_cases.py`` on the CPU in float32 and on the GPU, and checks
that each GPU job's test accuracy and first-epoch train loss are within the tolerance measured
for its case and numerics (fp32, TF32, bf16; stated and explained in ``gpu_cases.py``), and
that both pruned to the same sparsity. ``test_placement.py`` checks devices and dtypes after
every resume path under ``-m gpu`` too. Run with ``pytest -m gpu``; skipped without CUDA.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from prunelab.results import RESULT_FILE
from prunelab.run import run_job, run_jobs

from .gpu_cases import CASES, NUMERICS, drift, overrides, tolerance
from .test_launchers import cli

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
DEVICES = {"cpu": "trainer=cpu", "gpu": "trainer=gpu"}
STACK = ("finetune", "finetune-weight", "finetune-random")  # one schedule: one stack


def job(make_cfg, tmp_path: Path, name: str, case: str, *extra: str):
    cfg = make_cfg(*overrides(case), *extra, f"paths.cache_dir={tmp_path / 'cache' / name}")
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / name)
    return cfg


def assert_within(reference: Path, other: Path, case: str, numerics: str) -> None:
    d, tol = drift(reference, other), tolerance(case, numerics)
    a, b = (json.loads((p / RESULT_FILE).read_text()) for p in (reference, other))
    what = f"{case}, {numerics}: "
    assert d["acc"] <= tol["acc"], f"{what}test acc {a['test_acc']} vs {b['test_acc']}"
    assert d["loss"] <= tol["loss"], f"{what}first-epoch loss differs by {d['loss']:.2e}"
    assert b["figures"] == pytest.approx(a["figures"], abs=1e-3), f"{what}same sparsity"


def cpu_and_gpu(make_cfg, tmp_path: Path, case: str, *gpu_extra: str) -> dict:
    """Run ``case`` on the CPU (float32) and on the GPU; the GPU job's result."""
    run_job(job(make_cfg, tmp_path, "cpu", case, DEVICES["cpu"]))
    return run_job(job(make_cfg, tmp_path, "gpu", case, DEVICES["gpu"], *gpu_extra))


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_gpu_gives_the_cpus_results_in_fp32(make_cfg, tmp_path, case):
    result = cpu_and_gpu(make_cfg, tmp_path, case)
    assert result["config"]["trainer"]["accelerator"] == "gpu"
    assert (result["dense_cache"] is not None) == (case != "iterative"), "from the cache"
    assert_within(tmp_path / "cpu", tmp_path / "gpu", case, "fp32")


@pytest.mark.parametrize("numerics", ["tf32", "bf16"])
def test_tf32_and_bf16_runs_stay_within_their_rounding(make_cfg, tmp_path, numerics):
    try:
        result = cpu_and_gpu(make_cfg, tmp_path, "finetune", *NUMERICS[numerics])
        assert result["config"]["float32_matmul_precision"] == (
            "high" if numerics == "tf32" else "highest"
        )
    finally:
        torch.set_float32_matmul_precision("highest")
    assert_within(tmp_path / "cpu", tmp_path / "gpu", "finetune", numerics)


def test_a_stack_on_the_gpu_equals_its_members_run_alone(make_cfg, tmp_path):
    for case in STACK:
        run_job(job(make_cfg, tmp_path, f"alone-{case}", case, DEVICES["gpu"]))
    stacked = run_jobs([job(make_cfg, tmp_path, f"stack-{c}", c, DEVICES["gpu"]) for c in STACK])
    for case, result in zip(STACK, stacked, strict=True):
        assert isinstance(result, dict) and result["stacked"]["members"] == 3, result
        assert_within(tmp_path / f"alone-{case}", tmp_path / f"stack-{case}", case, "fp32")


def test_the_local_gpus_pool_runs_a_sweep_on_the_gpu_like_the_cpu(tmp_path):
    case = "oneshot-from-cache"
    grid = ("-m", *overrides(case), f"paths.cache_dir={tmp_path / 'cache'}")
    env = {"PRUNELAB_GPU_LOCK_DIR": str(tmp_path / "locks")}
    runs = {
        "cpu": cli(*grid, DEVICES["cpu"], f"hydra.sweep.dir={tmp_path / 'cpu'}"),
        "gpu": cli(*grid, DEVICES["gpu"], "hydra/launcher=local_gpus",
                   f"hydra.sweep.dir={tmp_path / 'gpu'}", env=env),
    }  # fmt: skip
    for proc in runs.values():
        assert proc.returncode == 0, proc.stderr[-3000:]
    [done] = (tmp_path / "gpu").glob(f"*/{RESULT_FILE}")
    r = json.loads(done.read_text())
    assert r["cuda_visible_devices"] == "0" and r["config"]["trainer"]["accelerator"] == "gpu"
    assert "worker holds GPU 0" in runs["gpu"].stdout + runs["gpu"].stderr + _job_logs(done)
    assert_within(tmp_path / "cpu" / done.parent.name, done.parent, case, "fp32")


def _job_logs(result: Path) -> str:
    return "".join(p.read_text() for p in result.parent.glob("*.log"))
