"""The SLURM driver's record of what it submitted, and what became of it: each job's
``Tracked`` (its SLURM ID, submitit's result file, its log), left in the job's folder so
that a later driver attaches to jobs still queued instead of submitting them twice
(``still_queued``), and a finished job's outcome read from its own folder (``job_outcome``).

Kept free of heavy imports: Hydra imports every plugin at start-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

MARKER = ".slurm-job.json"


class Tracked(NamedTuple):
    """A submitted job as the driver follows it: its SLURM ID (``123_4`` in an array), the
    file submitit writes when it ends, and its log. (A NamedTuple: Hydra's plugin scan loads
    this module in a way a dataclass cannot be defined in.)"""

    job_id: str
    result: Path
    log: Path

    @classmethod
    def of(cls, job: Any) -> Tracked:
        """The record of a submitit job just submitted."""
        return cls(str(job.job_id), Path(job.paths.result_pickle), Path(job.paths.stderr))

    def write(self, job_dir: Path) -> None:
        """Leave this record in the job's folder (``MARKER``), for a later driver."""
        from prunelab.results import write_json_atomic

        write_json_atomic(job_dir / MARKER, {k: str(v) for k, v in self._asdict().items()})

    @classmethod
    def read(cls, job_dir: Path) -> Tracked | None:
        """The record a driver left in ``job_dir``, or None."""
        try:
            raw = json.loads((job_dir / MARKER).read_text())
            return cls(str(raw["job_id"]), Path(raw["result"]), Path(raw["log"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def still_queued(job_dirs: dict[int, Path]) -> dict[int, Tracked]:
    """Of the jobs in ``job_dirs`` (index: folder), those an earlier driver submitted that
    SLURM still holds (pending, running, requeued)."""
    from prunelab.slurm import queue_states

    marked = {i: t for i, d in job_dirs.items() if (t := Tracked.read(d)) is not None}
    if not marked:
        return {}
    states = queue_states(t.job_id for t in marked.values())
    return {i: t for i, t in marked.items() if t.job_id in states}


def job_outcome(job_dir: Path) -> float | str:
    """A finished job's test accuracy from its ``result.json``, or why it has none (the last
    line of its ``error.txt``)."""
    from prunelab.results import RESULT_FILE

    result = job_dir / RESULT_FILE
    if result.is_file():
        return float(json.loads(result.read_text())["test_acc"])
    error = job_dir / "error.txt"
    if error.is_file():
        lines = error.read_text().strip().splitlines()
        return f"failed: {lines[-1] if lines else 'see error.txt'}"
    return "ended without a result"
