"""A real single-node SLURM (``tools/slurm_cluster.sh``), driven through the public CLI.

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

from prunelab.report.__main__ import main as report_main
from prunelab.results import RESULT_FILE

from .conftest import ROOT, train_cli

pytestmark = pytest.mark.slurm
SCRIPT = ROOT / "tools" / "slurm_cluster.sh"
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


def test_a_sweep_through_slurm_survives_cancelled_jobs_and_a_stacked_rerun_does_the_rest(
    slurm_env, tmp_path
):
    """The smoke sweep at k = 0 and 0.9 (4 jobs, one dense model), one SLURM job per config:
    the job that trains the dense model first, then the other three as one array; the two
    that run at once are cancelled: one line each, the third finishes, the command fails in
    one line. A re-run with ``slurm_stacked`` submits the two as one stack (torch threads =
    its CPUs); a re-run with ``slurm`` finds all four finished and submits nothing."""
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    common = ("-m", "experiment=smoke", "sparsity=0,0.9", "schedule.finetune_epochs=5",
              f"hydra.sweep.dir={sweep}", f"paths.cache_dir={cache}")  # fmt: skip
    stacked = [a.replace("=slurm", "=slurm_stacked") for a in LAUNCH]
    driver = subprocess.Popen(
        [sys.executable, "-m", "prunelab.train", *common, *LAUNCH], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **slurm_env},
    )  # fmt: skip
    try:
        # the second wave (the later array) starts once the dense model is in the cache; two
        # of its jobs run at once on the node's two CPUs: cancel both while they run
        seen: set[int] = set()

        def second_wave_running() -> list[str]:
            """Two running jobs of an array submitted after the first one seen."""
            jobs = squeue(slurm_env)
            seen.update(int(j.split("_")[0]) for j, _ in jobs)
            running = [j for j, s in jobs if s == "RUNNING" and int(j.split("_")[0]) > min(seen)]
            return running if len(running) == 2 else []

        victims = wait_for(second_wave_running)
        subprocess.run(["scancel", *victims], env={**os.environ, **slurm_env}, check=True)
        out, err = driver.communicate(timeout=300)
    finally:
        driver.kill()
    said = out + err
    assert driver.returncode == 1, said[-3000:]
    assert "submitted 1 cpu job(s)" in said and "submitted 3 cpu job(s)" in said, "dense first"
    # gone without a result, or ended by SLURM's SIGTERM with an error.txt: one line each
    ended = [line for line in said.splitlines()
             if "without a result" in line or ": failed:" in line]  # fmt: skip
    for victim in victims:
        assert sum(victim in line for line in ended) == 1, said[-3000:]
    assert err.strip().splitlines()[-1].startswith("error: 2 of 4 jobs did not finish")
    assert "Traceback" not in err
    assert len(results(sweep)) == 2, "the others finished"

    rerun = train_cli(*common, *stacked, env=slurm_env)
    said = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, said[-3000:]
    assert "2 already finished, 0 still queued or running, 2 to submit" in said
    assert "submitted a cpu stack of 2 jobs as SLURM job" in said, said[-3000:]
    done = results(sweep)
    assert sorted((r["strategy"], r["sparsity"]) for r in done.values()) == sorted(
        (s, k) for s in ("weight", "neuron") for k in (0.0, 0.9)
    )
    restacked = [r for r in done.values() if r["stacked"]["members"] == 2]
    assert len(restacked) == 2 and all(r["numerics"]["threads"] == 1 for r in restacked), (
        "threads = its CPUs"
    )
    logs = "".join(p.read_text() for p in sweep.glob(".submitit/*/*.err"))
    assert "is available on your system but is not used" not in logs

    again = train_cli(*common, *LAUNCH, env=slurm_env)
    said = again.stdout + again.stderr
    assert again.returncode == 0, said[-3000:]
    assert "4 already finished, 0 still queued or running, 0 to submit" in said
    assert "submitted" not in said
    assert report_main([str(sweep)], write=lambda _: None) == 0
    assert "4 of 4 jobs finished" in (sweep / "report" / "report.md").read_text()


def scontrol(env: dict[str, str], *args: str) -> None:
    subprocess.run(["scontrol", *args], env={**os.environ, **env}, check=True,
                   capture_output=True)  # fmt: skip


def release_holds(env: dict[str, str]) -> None:
    """Let every requeued job start at once: SLURM holds one for about two minutes (reason
    BeginTime) before it may start again."""
    for job, state in squeue(env):
        if state == "PENDING":
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"],
                           env={**os.environ, **env}, capture_output=True)  # fmt: skip


def drive(driver: subprocess.Popen, env: dict[str, str], step=lambda: None) -> tuple[str, str]:
    """Wait for the driver, releasing requeue holds and calling ``step()`` once a second."""
    end = time.monotonic() + 300
    while driver.poll() is None and time.monotonic() < end:
        release_holds(env)
        step()
        time.sleep(0.5)
    return driver.communicate(timeout=10)


# One job that trains for a while in its own folder; it checkpoints every epoch because the
# launcher makes a job that never would (checkpoint_every_n_epochs=0) do so on SLURM.
LONG = ("-m", "experiment=smoke", "strategy=weight", "sparsity=0.9", "dense_cache=false",
        "data.limit=5000", "schedule.epochs=16")  # fmt: skip
EPOCHS = 16


def run_in_background(args: tuple[str, ...], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "prunelab.train", *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **env},
    )  # fmt: skip


def resumes(job_dir: Path) -> list[int]:
    """The epochs done at each resume the job's log records."""
    log = job_dir / "prunelab.log"
    text = log.read_text() if log.is_file() else ""
    return [int(n) for n in re.findall(r"resuming from .*last\.ckpt \(epoch (\d+) done\)", text)]


def test_a_job_left_by_its_driver_preempted_and_over_its_time_limit_loses_nothing(
    slurm_env, tmp_path
):
    """One job through three interruptions, each waited for as a state, never timed:
    its driver is killed (a closed terminal) once the job has checkpointed; the job is
    requeued (``scontrol requeue``, as for preemption); a re-run of the command waits for it
    instead of submitting it again; once the job has resumed, it gets the signal SLURM sends
    ``signal_delay_s`` before its time limit (USR2, as ``sbatch --signal`` asks): submitit
    takes it for a time-out (any signal is one within a limit of 10 minutes), checkpoints
    and requeues it (``max_num_timeout``), and it resumes again and finishes."""
    sweep = tmp_path / "sweep"
    args = (*LONG, *LAUNCH, "hydra.launcher.timeout_min=5", "hydra.launcher.signal_delay_s=45",
            f"hydra.sweep.dir={sweep}", f"paths.cache_dir={tmp_path / 'cache'}")  # fmt: skip
    driver = run_in_background(args, slurm_env)
    try:
        ckpt = wait_for(lambda: next(sweep.glob("*/last.ckpt"), None))
    finally:
        driver.kill()
        driver.communicate(timeout=10)
    job_dir = ckpt.parent
    [(job, state)] = squeue(slurm_env)
    assert state == "RUNNING"
    scontrol(slurm_env, "requeue", job)

    signalled: list[str] = []

    def time_limit_once_resumed() -> None:
        """USR2 to the job's steps, once: after its first resume, while it runs."""
        if signalled or not resumes(job_dir) or (job, "RUNNING") not in squeue(slurm_env):
            return
        subprocess.run(["scancel", "--signal=USR2", job], env={**os.environ, **slurm_env},
                       check=True)  # fmt: skip
        signalled.append(job)

    rerun = run_in_background(args, slurm_env)
    out, err = drive(rerun, slurm_env, time_limit_once_resumed)
    assert rerun.returncode == 0, (out + err)[-3000:]
    assert "0 already finished, 1 still queued or running, 0 to submit" in out + err
    assert "submitted" not in out + err
    assert signalled, "the job finished before it could be signalled"
    done = resumes(job_dir)
    assert len(done) == 2 and all(0 < n < EPOCHS for n in done), done
    rows = pd.read_csv(job_dir / "metrics.csv").dropna(subset=["train/loss"])
    assert sorted(rows["epoch"]) == list(range(EPOCHS)), "each epoch logged once"
    assert json.loads((job_dir / RESULT_FILE).read_text())["sparsity"] == 0.9
    submitit = sweep / ".submitit"
    script = "".join(p.read_text() for p in submitit.glob("**/*_submission.sh"))
    assert "#SBATCH --signal=USR2@45" in script and "#SBATCH --time=5" in script
    logs = "".join(p.read_text() for p in submitit.glob("*/*.err"))
    assert "this job is timed-out" in logs and "requeu" in logs.lower()


def test_slurm_down_is_one_line(slurm_env, tmp_path):
    """The real client against a controller that is not there (another port)."""
    conf = Path(slurm_env["SLURM_CONF"]).read_text()
    dead = re.sub(r"(?m)^SlurmctldPort=\d+", "SlurmctldPort=9", conf)
    assert dead != conf
    dead += "MessageTimeout=1\n"  # the client gives up at once instead of retrying for 9 s
    (tmp_path / "slurm.conf").write_text(dead)
    proc = train_cli("-m", "experiment=smoke", *LAUNCH, f"hydra.sweep.dir={tmp_path / 's'}",
                     env={"SLURM_CONF": str(tmp_path / "slurm.conf")})  # fmt: skip
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: SLURM refused `sinfo") and "is slurmctld up?" in line
    assert not (tmp_path / "s").exists()
