"""What a SLURM sweep asks of the cluster, checked before anything is submitted, and what the
driver asks of SLURM while it waits.

``hydra/launcher=slurm`` (``hydra_plugins.prunelab_launcher.slurm_launcher``) submits jobs
through submitit. A request the cluster cannot meet is refused here in one line, before
submission: sbatch would refuse a GPU on a node without one with a traceback, and accept
8 CPUs on a partition of 2-CPU nodes only to leave the jobs pending forever. ``auto``
resources follow each job's ``trainer``: a GPU run asks for one GPU, a CPU run for none.

Everything here talks to SLURM through its client commands (``sinfo``, ``squeue``), each with
a time limit, so a controller that does not answer gives one line instead of a hang.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prunelab.errors import SlurmError

AUTO = "auto"
# What ``auto`` asks for, per device: a CPU job trains with as many threads as it has CPUs;
# a GPU job needs a few CPUs to feed its GPU and memory for the data and checkpoints.
AUTO_RESOURCES = {
    "cpu": {"gpus_per_node": None, "cpus_per_task": 2, "mem_gb": 4},
    "gpu": {"gpus_per_node": 1, "cpus_per_task": 8, "mem_gb": 32},
}
RESOURCE_KEYS = ("gpus_per_node", "cpus_per_task", "mem_gb")
CLIENT_TIMEOUT_S = 20.0


def device_of(accelerator: str) -> str:
    """``gpu`` for a job that trains on a GPU, else ``cpu`` (the keys of AUTO_RESOURCES)."""
    return "gpu" if accelerator in ("gpu", "cuda") else "cpu"


def resources(params: Mapping[str, Any], accelerator: str) -> dict[str, Any]:
    """The GPUs, CPUs and memory one job asks for: each ``auto`` (or missing) key from the
    job's device, every other value as the user gave it."""
    auto = AUTO_RESOURCES[device_of(accelerator)]
    out = {}
    for key in RESOURCE_KEYS:
        value = params.get(key, AUTO)
        if value == AUTO:
            value = auto[key]
        elif value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                    or value < 0):  # fmt: skip
            raise SlurmError(
                f"hydra.launcher.{key}={value} is not a count; give a whole number, null "
                f"(ask for none) or auto (from trainer=)"
            )
        out[key] = value
    return out


def client(*args: str, timeout: float = CLIENT_TIMEOUT_S) -> str:
    """The output of a SLURM client command, or one line saying why there is none."""
    if shutil.which(args[0]) is None:
        raise SlurmError(
            f"hydra/launcher=slurm needs SLURM's commands, but {args[0]} is not on PATH; run "
            "on a login node of the cluster, or drop hydra/launcher=slurm to run here"
        )
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SlurmError(
            f"SLURM did not answer `{' '.join(args)}` within {timeout:.0f} s: is slurmctld "
            "up? (`sinfo` must answer) Run the command again once it is"
        ) from None
    if proc.returncode != 0:
        why = " ".join((proc.stderr or proc.stdout).split()) or f"exit {proc.returncode}"
        raise SlurmError(
            f"SLURM refused `{' '.join(args)}`: {why[:200]}; is slurmctld up? (`sinfo` must "
            "answer) Run the command again once it is"
        )
    return proc.stdout


@dataclass(frozen=True)
class Partition:
    """The largest node of a partition: what one job can be given there at most."""

    name: str
    cpus: int
    mem_mb: int
    gpus: int


def gres_gpus(gres: str) -> int:
    """GPUs in a node's ``Gres`` field as ``sinfo %G`` prints it (``gpu:a100:4(S:0-1)``,
    ``gpu:2``, ``(null)``)."""
    total = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu" and len(parts) >= 2 and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def parse_sinfo(text: str) -> list[Partition]:
    """Partitions from ``sinfo -h -o '%P|%c|%m|%G'`` (one line per partition and node kind),
    each with its largest node's figures; the default partition (``name*``) first."""
    best: dict[str, Partition] = {}  # by the name as printed, "*" kept
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4:
            continue
        name, cpus, mem, gres = fields
        node = Partition(name.rstrip("*"), _number(cpus), _number(mem), gres_gpus(gres))
        old = best.get(name)
        if old is None or (node.cpus, node.mem_mb, node.gpus) > (old.cpus, old.mem_mb, old.gpus):
            best[name] = node
    default = [p for k, p in best.items() if k.endswith("*")]
    return default + [p for k, p in best.items() if not k.endswith("*")]


def _number(field: str) -> int:
    """A count as sinfo prints it (``64``, ``64+`` for "64 or more"); 0 if unknown."""
    digits = field.rstrip("+")
    return int(digits) if digits.isdigit() else 0


def partition(name: str | None) -> Partition:
    """The partition a job goes to (``name``, or the cluster's default), as SLURM states it."""
    parts = parse_sinfo(client("sinfo", "-h", "-o", "%P|%c|%m|%G"))
    if not parts:
        raise SlurmError("SLURM lists no partition (`sinfo` is empty): nothing could run a job")
    if name is None:
        return parts[0]
    for p in parts:
        if p.name == name:
            return p
    known = ", ".join(p.name for p in parts)
    raise SlurmError(
        f"hydra.launcher.partition={name} is not a partition of this cluster; it has: {known}"
    )


def misfit(request: Mapping[str, Any], where: Partition) -> str | None:
    """Why one job's ``request`` (``resources``) cannot run in ``where``, or None."""
    gpus = request.get("gpus_per_node") or 0
    cpus = request.get("cpus_per_task") or 1
    mem_gb = request.get("mem_gb")
    if gpus > where.gpus:
        have = f"{where.gpus} GPU(s)" if where.gpus else "no GPU"
        fix = "use trainer=cpu" if not where.gpus else f"hydra.launcher.gpus_per_node≤{where.gpus}"
        return f"{gpus} GPU(s) per job but its nodes have {have} ({fix}, or another partition)"
    if cpus > where.cpus:
        return (
            f"{cpus} CPUs per job but its nodes have {where.cpus}; use "
            f"hydra.launcher.cpus_per_task={where.cpus} or fewer"
        )
    if mem_gb is not None and mem_gb * 1024 > where.mem_mb:
        return (
            f"{mem_gb} GB per job but its nodes have {where.mem_mb} MB; use "
            f"hydra.launcher.mem_gb={max(where.mem_mb // 1024, 1)} or less"
        )
    return None


def check_request(params: Mapping[str, Any], accelerators: Iterable[str]) -> None:
    """Refuse, in one line, a sweep whose jobs the partition cannot run (before submission)."""
    members = params.get("max_members", 1)
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
        raise SlurmError(
            f"hydra.launcher.max_members must be ≥ 1, got {members} (1: one SLURM job per "
            "config; more: stacks of up to that many, one SLURM job each)"
        )
    where = partition(params.get("partition"))
    for device in sorted({device_of(a) for a in accelerators}):
        request = resources(params, device)
        why = misfit(request, where)
        if why is not None:
            raise SlurmError(f"partition {where.name} cannot run this sweep's {device} jobs: {why}")


def queue_states(job_ids: Iterable[str]) -> dict[str, str]:
    """State of each of ``job_ids`` (``123`` or array tasks ``123_4``) still in SLURM's queue,
    by ``squeue``; a finished, cancelled or lost job is absent. Raises SlurmError when SLURM
    does not answer."""
    wanted = set(job_ids)
    if not wanted:
        return {}
    # All of this user's jobs, not `-j IDS`: squeue fails outright on an ID it no longer knows.
    out = client("squeue", "-h", "-r", "-o", "%i|%T", "-u", getpass.getuser())
    states = {}
    for line in out.splitlines():
        job, _, state = line.strip().partition("|")
        if job in wanted:
            states[job] = state
    return states
