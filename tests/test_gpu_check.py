"""``scripts/gpu_check.sh``: its plumbing, run dry on the CPU (the real run needs CUDA)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import ROOT

SCRIPT = ROOT / "scripts" / "gpu_check.sh"
FILES = ["challenge_report.md", "challenge_summary.csv", "env.txt", "gpu_check.log",
         "pytest_gpu.txt", "seed_iterative_summary.csv", "summary.md"]  # fmt: skip


def gpu_check(out: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path), **env}
    return subprocess.run(["bash", str(SCRIPT), str(out)], cwd=tmp_path, env=full,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_a_dry_run_runs_every_step_and_writes_one_table_and_at_most_8_files(tmp_path):
    out = tmp_path / "out"
    proc = gpu_check(
        out, tmp_path, GPU_CHECK_TRAINER="cpu", GPU_CHECK_QUICK="1",
        PRUNELAB_FAKE_GPU_COUNT="1", PRUNELAB_GPU_LOCK_DIR=str(tmp_path / "locks"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == FILES
    table = (out / "summary.md").read_text()
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ")][1:]
    assert [r[0].strip() for r in rows] == [
        "pytest -m gpu", "challenge sweep, stacked + report", "smoke sweep, local_gpus pool",
        "seed_iterative, 3 seeds as one stack, TF32", "bench_gpu: prunelab / bare stacked epoch",
    ]  # fmt: skip
    assert all(r[1].strip() == "pass" and int(r[2]) >= 0 for r in rows)
    for r in rows[1:4]:  # every sweep reports its accuracy at k = 0.9 for both strategies
        assert all(0 <= float(cell) <= 100 for cell in r[3:5]), r
    ratio = [line for line in table.splitlines() if line.startswith("ratio ")]
    assert len(ratio) == 1 and float(ratio[0].split()[1]) > 0, "the bench's ratio is in it"
    assert "All steps passed." in table and table in proc.stdout
    assert not list(tmp_path.glob("prunelab-gpu-check.*")), "its work dir is removed"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_without_cuda_it_stops_at_once_and_says_why(tmp_path):
    proc = gpu_check(tmp_path / "out", tmp_path)
    assert proc.returncode == 2
    assert "no CUDA device is visible: this check needs one" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: the environment is not ready")
