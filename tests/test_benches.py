"""``benchmarks/bench_overhead.py`` runs end to end: its prunelab side is a real run (the epoch
times it reads come from that run's result) and both sides report the same epochs. The
figures themselves are measured by running the script, never asserted here."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import ROOT, load_script, script_main

SCRIPT = ROOT / "benchmarks" / "bench_overhead.py"


def test_bench_overhead_times_a_real_run_and_the_bare_loop_over_the_same_epochs(tmp_path):
    cmd = [sys.executable, str(SCRIPT),
           "--limit", "1000", "--epochs", "3", "--reps", "1"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    sides = {}
    for side in ("bare PyTorch", "prunelab"):
        line = next(x for x in out.splitlines() if x.startswith(f"{side} epoch"))
        sides[side] = [float(t) for t in re.findall(r"\d+\.\d+", line.split("all:")[1])]
    # 3 epochs per fit, the first left out, one round: 2 epochs each, every one timed
    assert [len(t) for t in sides.values()] == [2, 2]
    assert all(t > 0 for times in sides.values() for t in times)
    [ratio] = re.findall(r"ratio prunelab / bare\s+(\d+\.\d+)", out)
    assert float(ratio) > 0 and "data.limit=1000" in out


def test_bench_overhead_refuses_a_fit_with_no_timed_epoch(monkeypatch, capsys):
    assert script_main(load_script("benchmarks/bench_overhead"), monkeypatch, "--epochs", "1") == 2
    assert "--epochs must be at least 2" in capsys.readouterr().err.strip().splitlines()[-1]


def test_bench_cli_times_the_commands_and_the_imports_side_by_side():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_cli.py"), "--rounds",
                           "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = ["--help", "config error", "sizes error", "import torch", "import pytorch_lightning"]
    rows = {line[:28].strip(): line for line in proc.stdout.splitlines()[1:6]}
    assert list(rows) == names
    assert float(proc.stdout.strip().splitlines()[-1].removeprefix("worst ")) > 0
