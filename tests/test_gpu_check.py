"""``tools/gpu_check.sh``: its plumbing, run dry on the CPU (the real run needs CUDA), and
its verdicts (``tools/gpu_check_verdict.py``) on made-up pytest outputs and results, so
that the ways a real run must fail are seen to fail here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import ROOT, load_script

SCRIPT = ROOT / "tools" / "gpu_check.sh"
VERDICT = ROOT / "tools" / "gpu_check_verdict.py"
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
    verdicts = [r[1].strip() for r in rows]
    # The GPU checks ran on what the dry run produced, and said what a CPU must find.
    skipped = r"dry run: n/a \(every GPU test was skipped: \d+ skipped, \d+ deselected\)"
    on_cpu = r"dry run: n/a \((\d+) of \1 jobs ran off CUDA: \1 on cpu\)"
    cuda = torch.cuda.is_available()  # then the GPU tests do run in a dry run
    assert (verdicts[0] == "pass") if cuda else re.fullmatch(skipped, verdicts[0]), verdicts
    assert all(re.fullmatch(on_cpu, v) for v in verdicts[1:4]), verdicts
    assert verdicts[4] == "pass" and all(int(r[2]) >= 0 for r in rows)
    for r in rows[1:4]:  # every sweep reports its accuracy at k = 0.9 for both strategies
        assert all(0 <= float(cell) <= 100 for cell in r[3:5]), r
    ratio = [line for line in table.splitlines() if line.startswith("ratio ")]
    assert len(ratio) == 1 and float(ratio[0].split()[1]) > 0, "the bench's ratio is in it"
    n_a = sum(v.startswith("dry run: n/a") for v in verdicts)
    assert f"Dry run on the CPU: every step ran; {n_a} GPU checks not applicable" in table
    assert "All steps passed." not in table and table in proc.stdout
    assert not list(tmp_path.glob("prunelab-gpu-check.*")), "its work dir is removed"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_without_cuda_it_stops_at_once_and_says_why(tmp_path):
    proc = gpu_check(tmp_path / "out", tmp_path)
    assert proc.returncode == 2
    assert "no CUDA device is visible: this check needs one" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: the environment is not ready")


def load_verdict():
    """``tools/gpu_check_verdict.py`` as a module."""
    return load_script("tools/gpu_check_verdict")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("19 passed, 452 deselected, 13 warnings in 61.80s (0:01:01)", "pass"),
        ("=========== 19 passed in 3.02s ===========", "pass"),
        ("5 skipped, 452 deselected in 2.10s",
         "FAIL (every GPU test was skipped: 5 skipped, 452 deselected)"),
        ("17 passed, 2 skipped, 452 deselected in 50.1s", "FAIL (2 of 19 GPU tests were skipped)"),
        ("452 deselected in 1.02s", "FAIL (no GPU test ran: 452 deselected)"),
        ("no tests ran in 0.51s", "FAIL (no GPU test ran: nothing collected)"),
        ("1 failed, 18 passed in 40.0s", "FAIL (GPU tests failed or errored: 1 failed, 18 passed)"),
        ("ImportError: no module named hydra", "FAIL (no pytest summary line in its output)"),
    ],
)  # fmt: skip
def test_the_pytest_step_fails_unless_every_gpu_test_ran(tmp_path, output, expected):
    saved = tmp_path / "pytest_gpu.txt"
    saved.write_text(f"..........\n{output}\n")
    proc = subprocess.run([sys.executable, str(VERDICT), "pytest", str(saved)],
                          capture_output=True, text=True)  # fmt: skip
    assert (proc.stdout.strip(), proc.returncode) == (expected, 0 if expected == "pass" else 1)


def sweep_of(tmp_path: Path, *devices: str | None) -> Path:
    """A sweep folder whose jobs recorded ``devices`` (None: a result.json without numerics)."""
    for i, device in enumerate(devices):
        job = tmp_path / "sweep" / f"strategy=weight,seed={i}"
        job.mkdir(parents=True)
        numerics = {} if device is None else {"numerics": {"device": device}}
        job.joinpath("result.json").write_text(json.dumps({"status": "ok", **numerics}))
    return tmp_path / "sweep"


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        (["cuda:0", "cuda:0", "cuda:1"], None),
        (["cpu", "cpu"], "2 of 2 jobs ran off CUDA: 2 on cpu"),
        (["cuda:0", "cpu", "mps"], "2 of 3 jobs ran off CUDA: 1 on cpu, 1 on mps"),
    ],
)
def test_the_cuda_check_reads_the_device_each_job_recorded(tmp_path, devices, expected):
    v = load_verdict()
    finding = v.check_cuda(sweep_of(tmp_path, *devices))
    assert (finding and finding.why) == expected
    if expected:
        assert v.cell(finding, dry_run=False) == (f"FAIL ({expected})", True)
        assert v.cell(finding, dry_run=True) == (f"dry run: n/a ({expected})", False)


def test_a_sweep_without_results_fails_even_a_dry_run(tmp_path):
    v = load_verdict()
    (tmp_path / "empty").mkdir()
    for sweep, why in [
        (tmp_path / "empty", f"no result.json under {tmp_path / 'empty'}"),
        (sweep_of(tmp_path, None), "records no numerics.device"),
    ]:
        finding = v.check_cuda(sweep)
        assert why in finding.why and not finding.needs_gpu
        text, failed = v.cell(finding, dry_run=True)
        assert failed and text.startswith("FAIL (")
    proc = subprocess.run([sys.executable, str(VERDICT), "cuda", str(tmp_path / "empty"),
                           "--dry-run"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1 and proc.stdout.startswith("FAIL (no result.json under")


def test_a_dry_run_reports_skipped_gpu_tests_without_failing(tmp_path):
    saved = tmp_path / "pytest_gpu.txt"
    saved.write_text("sssss\n5 skipped, 452 deselected in 2.10s\n")
    proc = subprocess.run([sys.executable, str(VERDICT), "pytest", str(saved), "--dry-run"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0
    assert (
        proc.stdout.strip()
        == "dry run: n/a (every GPU test was skipped: 5 skipped, 452 deselected)"
    )
