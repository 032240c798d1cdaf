"""A real single-node SLURM (``scripts/slurm_cluster.sh``), driven through the public CLI.

The cluster is started once for the session (installing Debian's packages if they are
missing) on ports of its own, and stopped at the end. Where it cannot be installed (no root,
no apt-get, no network) every test here is skipped with that one-line reason. Jobs ask for one
CPU each so that two run at once on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from prunelab.results import RESULT_FILE

from .conftest import ROOT

pytestmark = pytest.mark.slurm
SCRIPT = ROOT / "scripts" / "slurm_cluster.sh"
# One CPU and 1 GB a job, the driver polling every second, a lost job reported after 5 s.
LAUNCH = ("hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
          "hydra.launcher.poll_s=1", "hydra.launcher.lost_after_s=5")  # fmt: skip


@pytest.fixture(scope="session")
def slurm_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """The environment of a running cluster (``SLURM_CONF``), stopped after the session."""
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "PRUNELAB_SLURM_PORT_BASE": str(20000 + os.getpid() % 20000)}
    start = subprocess.run(["bash", str(SCRIPT), "start", str(state)], env=env,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    if start.returncode == 3:
        pytest.skip(start.stderr.strip().splitlines()[-1])
    assert start.returncode == 0, start.stderr[-3000:]
    conf = start.stdout.strip().splitlines()[-1].removeprefix("export SLURM_CONF=")
    try:
        yield {"SLURM_CONF": conf}
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], env=env,
                       capture_output=True, timeout=120)  # fmt: skip


def train(*args: str, env: dict[str, str], **popen: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "prunelab.train", *args], cwd=ROOT, capture_output=True,
        text=True, timeout=600, env={**os.environ, **env}, **popen,
    )  # fmt: skip


def results(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob(f"*/{RESULT_FILE}")}


def squeue(env: dict[str, str]) -> list[tuple[str, str]]:
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T"], capture_output=True, text=True,
                         env={**os.environ, **env}, check=True).stdout  # fmt: skip
    return [tuple(line.split("|")) for line in out.split()]  # type: ignore[misc]


def wait_for(what, timeout: float = 120.0, every: float = 0.5):
    """Poll ``what()`` until it returns something true; that value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := what():
            return value
        time.sleep(every)
    raise AssertionError(f"not within {timeout} s: {what.__doc__ or what}")


def test_a_stacked_sweep_through_slurm_and_a_rerun_that_submits_nothing(slurm_env, tmp_path):
    """The smoke sweep as one stacked SLURM job; the same sweep again, one job per config
    this time: all found finished, nothing submitted."""
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    stacked = [a.replace("=slurm", "=slurm_stacked") for a in LAUNCH]
    first = train("-m", "experiment=smoke", *stacked, f"hydra.sweep.dir={sweep}",
                  f"paths.cache_dir={cache}", env=slurm_env)  # fmt: skip
    said = first.stdout + first.stderr
    assert first.returncode == 0, said[-3000:]
    assert "0 still queued or running, 6 to submit" in said
    assert "submitted a cpu stack of 6 jobs as SLURM job" in said, said[-3000:]
    done = results(sweep)
    assert sorted((r["strategy"], r["sparsity"]) for r in done.values()) == sorted(
        (s, k) for s in ("weight", "neuron") for k in (0.0, 0.5, 0.9)
    )
    assert all(r["numerics"]["threads"] == 1 for r in done.values()), "threads = its CPUs"
    logs = "".join(p.read_text() for p in sweep.glob(".submitit/*/*.err"))
    assert "is available on your system but is not used" not in logs
    again = train("-m", "experiment=smoke", *LAUNCH, f"hydra.sweep.dir={sweep}",
                  f"paths.cache_dir={cache}", env=slurm_env)  # fmt: skip
    said = again.stderr + again.stdout
    assert again.returncode == 0, said[-3000:]
    assert "6 already finished, 0 still queued or running, 0 to submit" in said
    assert "submitted" not in said


def test_the_smoke_sweep_through_slurm_survives_a_cancelled_job_and_a_rerun_does_the_rest(
    slurm_env, tmp_path
):
    """The smoke sweep (6 jobs, one dense model): the job that trains it first, then the
    other five as one array; one of those is cancelled while it runs: one line, the others
    finish, the command fails in one line; a re-run submits that job alone; the report."""
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    args = ("-m", "experiment=smoke", "schedule.finetune_epochs=5", *LAUNCH,
            f"hydra.sweep.dir={sweep}", f"paths.cache_dir={cache}")  # fmt: skip
    driver = subprocess.Popen(
        [sys.executable, "-m", "prunelab.train", *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **slurm_env},
    )  # fmt: skip
    try:
        # the second wave (two pruned jobs, the later array) starts once the dense model is in
        # the cache; cancel one of them while it runs
        seen: set[int] = set()

        def second_wave_running() -> list[str]:
            """A running job of an array submitted after the first one seen."""
            jobs = squeue(slurm_env)
            seen.update(int(j.split("_")[0]) for j, _ in jobs)
            return [j for j, s in jobs if s == "RUNNING" and int(j.split("_")[0]) > min(seen)]

        [victim, *_] = wait_for(second_wave_running)
        subprocess.run(["scancel", victim], env={**os.environ, **slurm_env}, check=True)
        out, err = driver.communicate(timeout=300)
    finally:
        driver.kill()
    said = out + err
    assert driver.returncode == 1, said[-3000:]
    assert "submitted 1 cpu job(s)" in said and "submitted 5 cpu job(s)" in said, "dense first"
    # gone without a result, or ended by SLURM's SIGTERM with an error.txt: one line either way
    lines = [line for line in said.splitlines()
             if victim in line and ("without a result" in line or ": failed:" in line)]  # fmt: skip
    assert len(lines) == 1, said[-3000:]
    assert err.strip().splitlines()[-1].startswith("error: 1 of 6 jobs did not finish")
    assert "Traceback" not in err
    assert len(results(sweep)) == 5, "the others finished"
    rerun = train(*args, env=slurm_env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    said = rerun.stderr + rerun.stdout
    assert "5 already finished, 0 still queued or running, 1 to submit" in said
    assert len(results(sweep)) == 6
    report = subprocess.run([sys.executable, "-m", "prunelab.report", str(sweep)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert report.returncode == 0, report.stderr[-2000:]
    assert (sweep / "report" / "report.md").is_file()


def scontrol(env: dict[str, str], *args: str) -> None:
    subprocess.run(["scontrol", *args], env={**os.environ, **env}, check=True,
                   capture_output=True)  # fmt: skip


def finish_releasing_holds(driver: subprocess.Popen, env: dict[str, str]) -> tuple[str, str]:
    """Wait for the driver, letting every requeued job start at once: SLURM holds one for
    about two minutes (reason BeginTime) before it may start again."""
    end = time.monotonic() + 300
    while driver.poll() is None and time.monotonic() < end:
        for job, state in squeue(env):
            if state == "PENDING":
                subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"],
                               env={**os.environ, **env}, capture_output=True)  # fmt: skip
        time.sleep(1)
    return driver.communicate(timeout=10)


# One job that trains for a while in its own folder; it checkpoints every epoch because the
# launcher makes a job that never would (checkpoint_every_n_epochs=0) do so on SLURM.
LONG = ("-m", "experiment=smoke", "strategy=weight", "sparsity=0.9", "dense_cache=false",
        "data.limit=5000")  # fmt: skip


def run_in_background(args: tuple[str, ...], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "prunelab.train", *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **env},
    )  # fmt: skip


def assert_resumed_and_whole(job_dir: Path, epochs: int) -> None:
    """The job resumed from its last.ckpt after some epochs, and its log holds each epoch once."""
    log = (job_dir / "prunelab.log").read_text()
    resumes = re.findall(r"resuming from .*last\.ckpt \(epoch (\d+) done\)", log)
    assert resumes and all(0 < int(n) < epochs for n in resumes), log[-2000:]
    rows = pd.read_csv(job_dir / "metrics.csv").dropna(subset=["train/loss"])
    assert sorted(rows["epoch"]) == list(range(epochs)), "each epoch logged once"
    assert json.loads((job_dir / RESULT_FILE).read_text())["sparsity"] == 0.9


def test_a_left_driver_and_a_requeued_job_lose_nothing_and_submit_nothing_twice(
    slurm_env, tmp_path
):
    """The driver is killed (a closed terminal) while its job trains; the job is requeued
    (`scontrol requeue`, as for preemption) after its first checkpoint; a re-run of the
    command waits for the job instead of submitting it again, and the job resumes from its
    last.ckpt mid-training."""
    sweep = tmp_path / "sweep"
    args = (*LONG, "schedule.epochs=10", *LAUNCH, f"hydra.sweep.dir={sweep}",
            f"paths.cache_dir={tmp_path / 'cache'}")  # fmt: skip
    driver = run_in_background(args, slurm_env)
    try:
        ckpt = wait_for(lambda: next(sweep.glob("*/last.ckpt"), None))
    finally:
        driver.kill()
        driver.communicate(timeout=10)
    [(job, state)] = squeue(slurm_env)
    assert state == "RUNNING"
    scontrol(slurm_env, "requeue", job)
    rerun = run_in_background(args, slurm_env)
    out, err = finish_releasing_holds(rerun, slurm_env)
    assert rerun.returncode == 0, (out + err)[-3000:]
    assert "0 already finished, 1 still queued or running, 0 to submit" in out + err
    assert "submitted" not in out + err
    assert_resumed_and_whole(ckpt.parent, 10)


def test_slurm_down_is_one_line(slurm_env, tmp_path):
    """The real client against a controller that is not there (another port)."""
    conf = Path(slurm_env["SLURM_CONF"]).read_text()
    dead = re.sub(r"(?m)^SlurmctldPort=\d+", "SlurmctldPort=9", conf)
    assert dead != conf
    dead += "MessageTimeout=1\n"  # the client gives up at once instead of retrying for 9 s
    (tmp_path / "slurm.conf").write_text(dead)
    proc = train("-m", "experiment=smoke", *LAUNCH, f"hydra.sweep.dir={tmp_path / 's'}",
                 env={"SLURM_CONF": str(tmp_path / "slurm.conf")})  # fmt: skip
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: SLURM refused `sinfo") and "is slurmctld up?" in line
    assert not (tmp_path / "s").exists()


def test_a_job_over_its_time_limit_is_requeued_and_finishes(slurm_env, tmp_path):
    """A 1-minute limit, signalled 30 s before it: submitit checkpoints and requeues the job
    (max_num_timeout), which resumes from its last.ckpt and finishes (about 28 s of epochs)."""
    sweep = tmp_path / "sweep"
    args = (*LONG, "schedule.epochs=24", *LAUNCH, "hydra.launcher.timeout_min=1",
            "hydra.launcher.signal_delay_s=30", f"hydra.sweep.dir={sweep}",
            f"paths.cache_dir={tmp_path / 'cache'}")  # fmt: skip
    driver = run_in_background(args, slurm_env)
    try:
        ckpt = wait_for(lambda: next(sweep.glob("*/last.ckpt"), None))
        out, err = finish_releasing_holds(driver, slurm_env)
    finally:
        driver.kill()
    assert driver.returncode == 0, (out + err)[-3000:]
    assert_resumed_and_whole(ckpt.parent, 24)
    assert "requeu" in "".join(p.read_text() for p in sweep.glob(".submitit/*/*.err")).lower()
