"""CUDA: the same configs on the GPU and on the CPU end within rounding of each other.

Every CPU-vs-GPU test trains configs of ``gpu_cases.py`` on the CPU in float32 and on the GPU
and checks, within the tolerance measured for its case and numerics (fp32, TF32, bf16; stated
and explained in ``gpu_cases.py``): the test accuracy, the mean train loss of every epoch, and
the masks right after each prune, both against the CPU run's (the same steps and sparsities;
kept weights shared) and against the masks the CPU selects from the GPU's own weights at that
prune; and that both pruned to the same sparsity. Every GPU job must have recorded a CUDA
device in its ``numerics`` (what ran, not what was asked).

A stack on the GPU is checked as ``test_stacked.py`` checks one on the CPU, by its own test
function: float64, its per-step losses, masks, weights and accuracies, its tolerances.
``test_placement.py`` checks devices and dtypes after every resume path under ``-m gpu`` too.
Run with ``pytest -m gpu``; skipped without CUDA (``tools/gpu_check.sh`` fails then).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import open_dict

from prunelab.results import RESULT_FILE
from prunelab.run import run_job

from . import test_stacked as cpu_twin
from .conftest import ROOT, run_cli
from .gpu_cases import (
    CASES,
    NUMERICS,
    REFERENCE_THREADS,
    PruneEvent,
    drift,
    mask_overlap,
    overrides,
    record_prunes,
    reference_threads,
    tolerance,
    train_losses,
    twin_overlap,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
DEVICES = {"cpu": "trainer=cpu", "gpu": "trainer=gpu"}
recorded = cpu_twin.recorded  # the twin's fixture: every training step's per-member losses


def job(make_cfg, tmp_path: Path, name: str, case: str, *extra: str):
    cfg = make_cfg(*overrides(case), *extra, f"paths.cache_dir={tmp_path / 'cache' / name}")
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / name)
    return cfg


def assert_on_cuda(result: dict[str, Any]) -> None:
    """The job trained on a CUDA device, as it recorded (not as its config asked)."""
    device = result["numerics"]["device"]
    assert device.startswith("cuda"), f"a GPU job recorded device {device}"


def assert_within(
    reference: Path,
    other: Path,
    case: str,
    numerics: str,
    prunes: dict[str, list[PruneEvent]] | None = None,
) -> None:
    """``other`` (the GPU's) within ``case``'s tolerance for ``numerics`` of ``reference``
    (the CPU's float32): accuracy, every epoch's train loss, sparsity and, when recorded,
    the masks at every prune (``prunes``: the "cpu" and "gpu" runs' events)."""
    d, tol = drift(reference, other), tolerance(case, numerics)
    a, b = (json.loads((p / RESULT_FILE).read_text()) for p in (reference, other))
    what = f"{case}, {numerics}: "
    assert d["acc"] <= tol["acc"], f"{what}test acc {a['test_acc']} vs {b['test_acc']}"
    assert len(d["loss"]) == len(tol["loss"]), f"{what}{len(d['loss'])} epochs logged"
    for epoch, (la, lb, dl, tl) in enumerate(
        zip(train_losses(reference), train_losses(other), d["loss"], tol["loss"], strict=True)
    ):
        why = f"epoch {epoch}'s train loss {la:.6f} vs {lb:.6f}, {dl:.2e} apart > {tl:.2e}"
        assert dl <= tl, what + why
    assert b["figures"] == pytest.approx(a["figures"], abs=1e-3), f"{what}same sparsity"
    if prunes is not None:
        assert prunes["cpu"], f"{what}no prune was recorded"
        shared = mask_overlap(prunes["cpu"], prunes["gpu"])
        assert shared >= tol["masks"], f"{what}masks share {shared:.4f} < {tol['masks']:.4f}"
        same = twin_overlap(prunes["gpu"])
        assert same >= tol["selection"], (
            f"{what}from the same weights the GPU keeps {same:.6f} of what the CPU keeps "
            f"< {tol['selection']:.6f}"
        )


def cpu_and_gpu(
    make_cfg, tmp_path: Path, case: str, *gpu_extra: str
) -> tuple[dict[str, Any], dict[str, list[PruneEvent]]]:
    """Run ``case`` on the CPU (float32, on the reference's threads) and on the GPU; the GPU
    job's result and both runs' prune events (the GPU's with its CPU twin's masks)."""
    with reference_threads(), record_prunes() as on_cpu:
        run_job(job(make_cfg, tmp_path, "cpu", case, DEVICES["cpu"]))
    with record_prunes(twin=lambda net: net.cpu()) as on_gpu:
        result = run_job(job(make_cfg, tmp_path, "gpu", case, DEVICES["gpu"], *gpu_extra))
    assert_on_cuda(result)
    return result, {"cpu": on_cpu, "gpu": on_gpu}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_gpu_gives_the_cpus_results_in_fp32(make_cfg, tmp_path, case):
    result, prunes = cpu_and_gpu(make_cfg, tmp_path, case)
    assert result["numerics"]["dtype"] == "float32"
    assert (result["dense_cache"] is not None) == (case != "iterative"), "from the cache"
    assert_within(tmp_path / "cpu", tmp_path / "gpu", case, "fp32", prunes)


@pytest.mark.parametrize("numerics", ["tf32", "bf16"])
def test_tf32_and_bf16_runs_stay_within_their_rounding(make_cfg, tmp_path, numerics):
    try:
        result, prunes = cpu_and_gpu(make_cfg, tmp_path, "finetune", *NUMERICS[numerics])
        assert result["numerics"]["float32_matmul_precision"] == (
            "high" if numerics == "tf32" else "highest"
        )
        assert result["numerics"]["trainer_precision"] == (
            "bf16-mixed" if numerics == "bf16" else "32-true"
        )
    finally:
        torch.set_float32_matmul_precision("highest")
    assert_within(tmp_path / "cpu", tmp_path / "gpu", "finetune", numerics, prunes)


def twin_cases() -> list[Any]:
    """The parameters of ``test_stacked.py``'s stack-equals-members test, so that the GPU
    runs exactly the cases its CPU twin checks (a case added there is run here too)."""
    marks = cpu_twin.test_stacked_members_equal_separate_runs.pytestmark
    [mark] = [m for m in marks if m.name == "parametrize"]
    extras, ids = mark.args[1], mark.kwargs["ids"]
    return [pytest.param(extra, id=i) for extra, i in zip(extras, ids, strict=True)]


@pytest.mark.parametrize("extra", twin_cases())
def test_a_stack_on_the_gpu_equals_its_members_run_alone(make_cfg, tmp_path, recorded, extra):
    """The CPU twin's own test on the GPU: in float64 (its configs' trainer.precision=64-true),
    the same tolerances (per-step losses, equal masks, weights, accuracies): the member axis
    on the GPU's kernels changes nothing but the last bits."""
    cpu_twin.test_stacked_members_equal_separate_runs(
        make_cfg, tmp_path, recorded, (*extra, DEVICES["gpu"])
    )
    results = [json.loads(p.read_text()) for p in tmp_path.glob(f"*/*/{RESULT_FILE}")]
    assert len(results) == 2 * len(cpu_twin.MEMBERS), "separate and stacked, every member"
    for result in results:
        assert_on_cuda(result)
        assert result["numerics"]["dtype"] == "float64", "float64, as on the CPU"


def cli(*args: str, env: dict[str, str] | None = None):
    """A process of its own: the CPU side's thread count is set by ``OMP_NUM_THREADS``."""
    return run_cli(*args, cwd=ROOT, env=env, timeout=600)


def test_the_local_gpus_pool_runs_a_sweep_on_the_gpu_like_the_cpu(tmp_path):
    case = "oneshot-from-cache"
    grid = ("-m", *overrides(case), f"paths.cache_dir={tmp_path / 'cache'}")
    env = {"PRUNELAB_GPU_LOCK_DIR": str(tmp_path / "locks")}
    runs = {
        "cpu": cli(*grid, DEVICES["cpu"], f"hydra.sweep.dir={tmp_path / 'cpu'}",
                   env={"OMP_NUM_THREADS": str(REFERENCE_THREADS)}),
        "gpu": cli(*grid, DEVICES["gpu"], "hydra/launcher=local_gpus",
                   f"hydra.sweep.dir={tmp_path / 'gpu'}", env=env),
    }  # fmt: skip
    for proc in runs.values():
        assert proc.returncode == 0, proc.stderr[-3000:]
    [done] = (tmp_path / "gpu").glob(f"*/{RESULT_FILE}")
    r = json.loads(done.read_text())
    assert r["cuda_visible_devices"] == "0" and r["config"]["trainer"]["accelerator"] == "gpu"
    assert_on_cuda(r)
    assert "worker holds GPU 0" in runs["gpu"].stdout + runs["gpu"].stderr + _job_logs(done)
    # its masks: test_the_gpu_gives_the_cpus_results_in_fp32[oneshot-from-cache] (in-process)
    assert_within(tmp_path / "cpu" / done.parent.name, done.parent, case, "fp32")


def _job_logs(result: Path) -> str:
    return "".join(p.read_text() for p in result.parent.glob("*.log"))
