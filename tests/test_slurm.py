"""What a SLURM sweep asks of the cluster, checked before submission (``prunelab.slurm``), and
the launcher's plan of what to submit: no cluster needed (``test_slurm_cluster.py`` has one)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from hydra_plugins.prunelab_launcher.slurm_launcher import dense_waves, job_outcome
from prunelab import slurm
from prunelab.config import check_argv, load
from prunelab.errors import SlurmError
from prunelab.slurm import Partition

from .conftest import FAKE_SINFO, ROOT, fake_slurm_path
from .conftest import train_cli as cli


def test_sinfo_gives_each_partitions_largest_node_default_first():
    parts = slurm.parse_sinfo("gpu|32|256000|gpu:2\n" + FAKE_SINFO)
    assert parts[0] == Partition("debug", 2, 20000, 0)
    assert parts[1] == Partition("gpu", 64, 512000, 4)
    assert slurm.gres_gpus("gpu:a100:4(S:0-1),gpu:v100:2") == 6
    assert slurm.gres_gpus("(null)") == 0 and slurm.gres_gpus("mps:100") == 0


def test_auto_resources_follow_the_trainer_and_numbers_override():
    assert slurm.resources({"gpus_per_node": "auto"}, "cpu")["gpus_per_node"] is None
    assert slurm.resources({}, "gpu") == slurm.AUTO_RESOURCES["gpu"]
    mine = slurm.resources({"cpus_per_task": 1, "mem_gb": None, "gpus_per_node": "auto"}, "gpu")
    assert mine == {"gpus_per_node": 1, "cpus_per_task": 1, "mem_gb": None}
    with pytest.raises(SlurmError, match="cpus_per_task=two is not a count"):
        slurm.resources({"cpus_per_task": "two"}, "cpu")


@pytest.mark.parametrize(
    "request_, fits",
    [
        ({"gpus_per_node": None, "cpus_per_task": 2, "mem_gb": 4}, None),
        ({"gpus_per_node": 1, "cpus_per_task": 1, "mem_gb": 1}, "no GPU (use trainer=cpu"),
        ({"gpus_per_node": None, "cpus_per_task": 8, "mem_gb": 4}, "cpus_per_task=2 or fewer"),
        ({"gpus_per_node": None, "cpus_per_task": 1, "mem_gb": 32}, "mem_gb=19 or less"),
    ],
)
def test_a_request_the_partition_cannot_meet_says_what_to_change(request_, fits):
    why = slurm.misfit(request_, Partition("debug", 2, 20000, 0))
    assert why is None if fits is None else fits in why


def fake_slurm(folder: Path, fail: str | None = None) -> dict[str, str]:
    return {"PATH": fake_slurm_path(folder, fail=fail)}


SMOKE = ("-m", "experiment=smoke", "hydra/launcher=slurm")


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ("trainer=gpu",),
            "partition debug cannot run this sweep's gpu jobs: 1 GPU(s) per job "
            "but its nodes have no GPU (use trainer=cpu, or another partition)",
        ),
        (
            ("hydra.launcher.cpus_per_task=8",),
            "partition debug cannot run this sweep's cpu "
            "jobs: 8 CPUs per job but its nodes have 2; use hydra.launcher.cpus_per_task=2 or "
            "fewer",
        ),
        (
            ("hydra.launcher.partition=big",),
            "hydra.launcher.partition=big is not a partition of this cluster; it has: debug, gpu",
        ),
        (
            ("hydra.launcher.max_members=0",),
            "hydra.launcher.max_members must be ≥ 1, got 0 (1: "
            "one SLURM job per config; more: stacks of up to that many, one SLURM job each)",
        ),
    ],
)
def test_a_request_the_cluster_cannot_meet_is_refused_before_hydra_starts(
    tmp_path, monkeypatch, extra, message
):
    monkeypatch.setenv("PATH", fake_slurm_path(tmp_path / "bin"))
    with pytest.raises(SlurmError) as refused:
        check_argv([*SMOKE, *extra, f"hydra.sweep.dir={tmp_path / 's'}"])
    assert str(refused.value) == message
    assert not (tmp_path / "s").exists(), "nothing set up, nothing submitted"


def test_no_slurm_commands_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(Path(os.__file__).parent))  # no sinfo anywhere
    with pytest.raises(SlurmError, match="needs SLURM's commands, but sinfo is not on PATH"):
        check_argv([*SMOKE, f"hydra.sweep.dir={tmp_path / 's'}"])


def test_slurm_down_is_one_line_and_a_sweep_that_fits_fails_at_sbatch_in_one_line(tmp_path):
    down = "sinfo: error: Unable to contact slurm controller (connect failure)"
    proc = cli(*SMOKE, f"hydra.sweep.dir={tmp_path / 's'}",
               env=fake_slurm(tmp_path / "bin", fail=down))  # fmt: skip
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: SLURM refused `sinfo")
    assert "Unable to contact slurm controller" in line and "is slurmctld up?" in line
    assert not (tmp_path / "s").exists()
    # the stand-in sbatch answers nonsense: past the checks, the driver stops in one line
    fits = cli(*SMOKE, f"hydra.sweep.dir={tmp_path / 't'}", env=fake_slurm(tmp_path / "ok"))
    assert fits.returncode == 1
    [line] = fits.stderr.strip().splitlines()
    assert line.startswith("error: sbatch did not take the jobs")


def test_jobs_that_share_a_dense_model_wait_for_one_of_them(make_cfg):
    def job(*o: str):
        return load(make_cfg("experiment=smoke", *o))

    jobs = [job("sparsity=0.5"), job("sparsity=0.9"), job("sparsity=0.5", "seed=1"),
            job("sparsity=0.9", "seed=2"),
            job("schedule=iterative", "schedule.epochs=0")]  # fmt: skip
    assert dense_waves(jobs, [0, 1, 2, 3, 4]) == [[0], [1, 2, 3, 4]]  # seeds 1, 2 alone
    assert dense_waves(jobs, [1, 2, 4]) == [[1, 2, 4]]  # nothing shared: one wave
    assert dense_waves(jobs, []) == []


def test_a_finished_job_is_read_from_its_own_folder(tmp_path):
    (tmp_path / "result.json").write_text('{"test_acc": 0.75}')
    assert job_outcome(tmp_path) == 0.75
    failed = tmp_path / "f"
    failed.mkdir()
    (failed / "error.txt").write_text("Traceback ...\nTrainingError: the loss is NaN\n")
    assert job_outcome(failed) == "failed: TrainingError: the loss is NaN"
    assert job_outcome(tmp_path / "none") == "ended without a result"


def test_no_srun_warning_where_srun_exists_but_the_run_is_not_a_step(tmp_path):
    """A login node has srun; Lightning would warn on every run that it is not used."""
    proc = cli("experiment=smoke", "strategy=weight", "sparsity=0.5", "schedule.epochs=1",
               f"hydra.run.dir={tmp_path / 'run'}", f"paths.cache_dir={tmp_path / 'cache'}",
               env=fake_slurm(tmp_path / "bin"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "available on your system but is not used" not in proc.stderr + proc.stdout


def test_the_cluster_environment_is_slurms_only_inside_a_slurm_step(monkeypatch):
    from pytorch_lightning.plugins.environments import LightningEnvironment, SLURMEnvironment

    from prunelab.environment import cluster_environment

    for key in ("SLURM_NTASKS", "SLURM_JOB_NAME"):
        monkeypatch.delenv(key, raising=False)
    assert isinstance(cluster_environment(), LightningEnvironment)
    monkeypatch.setenv("SLURM_NTASKS", "1")
    env = cluster_environment()
    assert isinstance(env, SLURMEnvironment) and not env.auto_requeue, "submitit requeues"
    monkeypatch.setenv("SLURM_JOB_NAME", "interactive")  # a shell of salloc: a local run
    assert isinstance(cluster_environment(), LightningEnvironment)


def test_the_driver_settles_finished_failed_and_lost_jobs_and_never_waits_forever(
    tmp_path, monkeypatch
):
    """The driver's wait, with SLURM's queue played by hand: a job still queued is waited
    for; one that ended is read from its folder (result or error); one gone without a result
    is lost after lost_after_s; SLURM silent for unreachable_after_s ends the wait."""
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import OmegaConf

    from hydra_plugins.prunelab_launcher import slurm_launcher
    from hydra_plugins.prunelab_launcher.slurm_launcher import PrunelabSlurmLauncher, Tracked

    launcher = PrunelabSlurmLauncher(poll_s=0.01, lost_after_s=0.001, unreachable_after_s=0.2,
                                     submitit_folder=str(tmp_path), max_num_timeout=0)  # fmt: skip
    dirs = [tmp_path / f"job{i}" for i in range(4)]
    for d in dirs:
        d.mkdir()
    tracked = [Tracked(f"7_{i}", tmp_path / f"7_{i}_result.pkl", tmp_path / f"7_{i}.err")
               for i in range(4)]  # fmt: skip
    cfgs = [OmegaConf.create({"paths": {"output_dir": str(d)}}) for d in dirs]
    runs = [JobReturn() for _ in dirs]
    overrides = {i: [f"sparsity=0.{i}"] for i in range(4)}
    polls = []

    def queue(ids):
        """Poll 1: all queued. Then 0 ends with a result, 1 with an error, 2 vanishes, 3 runs
        on (and is lost once SLURM falls silent)."""
        polls.append(sorted(ids))
        if len(polls) == 2:
            tracked[0].result.write_text("")
            (dirs[0] / "result.json").write_text('{"test_acc": 0.5}')
            tracked[1].result.write_text("")
            (dirs[1] / "error.txt").write_text("TrainingError: the loss is NaN")
        if len(polls) >= 6:
            raise slurm.SlurmError("SLURM refused `squeue`: connection refused")
        return {"7_3": "RUNNING"} | ({"7_0": "RUNNING", "7_1": "RUNNING", "7_2": "PENDING"}
                                    if len(polls) == 1 else {})  # fmt: skip

    monkeypatch.setattr(slurm, "queue_states", queue)
    failures = launcher.wait(list(enumerate(tracked)), cfgs, runs, overrides)
    assert runs[0].status == JobStatus.COMPLETED and runs[0].return_value == 0.5
    assert [r.status for r in runs[1:]] == [JobStatus.FAILED] * 3
    assert failures[0] == (f"job sparsity=0.1: failed: TrainingError: the loss is NaN "
                           f"(log: {tracked[1].log})")  # fmt: skip
    assert "job sparsity=0.2: SLURM job 7_2 left the queue without a result" in failures[1]
    assert failures[2].startswith("job sparsity=0.3: SLURM has not answered for 0 s")
    assert len(failures) == 3 and slurm_launcher.Tracked is Tracked


def test_the_cluster_script_installs_slurm_only_when_asked_to(tmp_path):
    """``make test`` on a machine without SLURM must not install Debian's packages: the
    script's install step (run alone, for a command no machine has, with an ``apt-get`` that
    records being called) stops with exit 3 and the one command that would install them."""
    script = (ROOT / "tools" / "slurm_cluster.sh").read_text()
    steps = re.findall(r"(?ms)^(?:log|cannot_install|ensure_installed)\(\) \{.*?^\}\n", script)
    assert len(steps) == 3
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(f"#!/bin/sh\ntouch {tmp_path / 'apt-get-ran'}\nexit 1\n")
    (bin_dir / "apt-get").chmod(0o755)
    body = "".join(steps) + (
        "NEEDED_CMDS=(prunelab-no-such-slurm-command)\nPACKAGES=(slurmd)\n"
        f"STATE_DIR={tmp_path}\nensure_installed\necho installed\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PRUNELAB_SLURM_INSTALL"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(["bash", "-c", body], capture_output=True, text=True, env=env,
                          timeout=30)  # fmt: skip
    assert proc.returncode == 3 and "installed" not in proc.stdout
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("slurm_cluster: cannot install SLURM: prunelab-no-such-slurm-command")
    assert "`make test-slurm` installs Debian's SLURM packages" in line
    assert not (tmp_path / "apt-get-ran").exists(), "nothing installed"
