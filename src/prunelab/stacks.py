"""What a stack of jobs is: its members' jobs and folders, where it keeps its checkpoints,
and the identity it resumes under (its members' identities, in order)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prunelab.config import Config
from prunelab.identity import config_hash, identity

STACK_DIR = ".stacked"


@dataclass(frozen=True)
class Stack:
    """The jobs of one stack, their folders, and what names the stack as a whole."""

    jobs: list[Config]
    outs: list[Path]
    workdir: Path
    identity: str  # of the stack: its members' identities, in order

    @property
    def base(self) -> Config:
        """The first job: every setting but the members' own is the same in all of them."""
        return self.jobs[0]

    @property
    def seeds(self) -> list[int]:
        return [job.seed for job in self.jobs]


def make_stack(jobs: Sequence[Config]) -> Stack:
    """The stack of ``jobs``: one job is named by its own identity, several by the hash of
    theirs, in order, so that only the same members resume the same checkpoints."""
    outs = [Path(job.paths.output_dir) for job in jobs]
    ids = [identity(dataclasses.asdict(job)) for job in jobs]
    return Stack(
        list(jobs), outs, stack_workdir(outs), ids[0] if len(ids) == 1 else config_hash(ids)
    )


def stack_workdir(job_dirs: Sequence[Path]) -> Path:
    """Where a stack keeps its checkpoints: the job's own dir for a stack of one, else a
    folder beside the jobs named after them (so re-running the same group resumes)."""
    if len(job_dirs) == 1:
        return job_dirs[0]
    return job_dirs[0].parent / STACK_DIR / config_hash({"jobs": sorted(map(str, job_dirs))}, 12)


def with_seed(job: Config, seed: int) -> Config:
    """``job`` with its seed replaced: the job of another seed's dense phase."""
    return dataclasses.replace(job, seed=seed)
