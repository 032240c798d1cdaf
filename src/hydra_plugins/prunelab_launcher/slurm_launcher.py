"""``hydra/launcher=slurm``: Hydra's submitit SLURM launcher, made to survive the scheduler.

What it adds to ``hydra_submitit_launcher``'s ``SlurmLauncher`` (which it extends):

- **Only missing work is submitted.** Every job is set up here first (its folder and config,
  as the stacked launcher does); a job whose folder already holds a finished result of its
  identity is not submitted, so re-running a finished sweep submits nothing.
- **Resources follow the run.** ``gpus_per_node``, ``cpus_per_task`` and ``mem_gb`` default to
  ``auto``: from each job's ``trainer`` (``prunelab.slurm.AUTO_RESOURCES``); jobs of another
  device go in another array. The partition's fit was checked before Hydra started
  (``config.argv``), in one line. On the node a job trains on as many threads as it has CPUs.
- **No idle allocation on the dense cache.** Of the jobs that would share one dense model,
  one is submitted first; the others follow once it has trained it, instead of holding an
  allocation while they wait on the cache's lock.
- **Nothing waits forever.** The driver polls ``squeue`` (bounded), reads each job's own
  ``result.json``/``error.txt``, and reports a cancelled, failed or lost job in one line while
  the others finish; a job gone from the queue without a result is given ``lost_after_s``
  before it is reported; SLURM not answering for ``unreachable_after_s`` ends the wait in one
  line. The driver can be left at any time: a re-run submits only what is missing, and
  ``prunelab-report`` shows what finished.
- **Time limits and preemption requeue** (``max_num_timeout``): submitit requeues the job,
  which resumes from its ``last.ckpt``: on SLURM a job that would never checkpoint does so
  every ``checkpoint_every_n_epochs`` (launcher setting, default 1) epochs, within its
  ``checkpoint_max_share`` of the time.

Kept free of heavy imports: Hydra imports every plugin at start-up.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import DictConfig, OmegaConf, open_dict

from .jobs import LOG_FORMAT, compose_jobs, settle
from .tracking import Tracked, job_outcome, still_queued

log = logging.getLogger(__name__)
# This launcher's own settings (not sbatch's or submitit's).
OWN_KEYS = ("poll_s", "lost_after_s", "unreachable_after_s", "checkpoint_every_n_epochs",
            "max_members")  # fmt: skip


class PrunelabSlurmLauncher(SlurmLauncher):
    def __init__(
        self,
        poll_s: float = 5.0,
        lost_after_s: float = 60.0,
        unreachable_after_s: float = 900.0,
        checkpoint_every_n_epochs: int = 1,
        max_members: int = 1,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.max_members = max_members
        self.poll_s = poll_s
        self.lost_after_s = lost_after_s
        self.unreachable_after_s = unreachable_after_s
        self.checkpoint_every_n_epochs = checkpoint_every_n_epochs

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        """On the node: as many torch threads as SLURM gave CPUs; a job whose config never
        checkpoints (``checkpoint_every_n_epochs=0``, most presets) checkpoints every
        ``checkpoint_every_n_epochs`` epochs, within its ``checkpoint_max_share`` of the
        time, so that a requeue resumes mid-training; then Hydra's job. The cadence is not
        part of a result's identity, nor of its folder's name."""
        import torch

        use_slurm_cpus(torch)
        task, every = self.task_function, self.checkpoint_every_n_epochs
        assert task is not None
        self.task_function = lambda cfg: task(with_checkpoints(cfg, every))
        return super().__call__(*args, **kwargs)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from prunelab.config import load
        from prunelab.errors import PrunelabError
        from prunelab.run import prior_result

        assert self.config is not None and self.hydra_context is not None
        cfgs, runs = compose_jobs(self.config, self.hydra_context, job_overrides, initial_job_idx)
        jobs = [load(cfg) for cfg in cfgs]  # checked before Hydra started (config.argv)
        missing = []
        for i, job in enumerate(jobs):
            done = prior_result(job)
            if done is None:
                missing.append(i)
            else:
                settle(runs[i], done["test_acc"])
        overrides = {i: list(o) for i, o in enumerate(job_overrides)}
        failures: list[str] = []
        try:
            # A job an earlier driver submitted and SLURM still holds is waited for, not
            # submitted twice (the driver may have been left, or killed).
            attached = still_queued({i: Path(str(cfgs[i].paths.output_dir)) for i in missing})
            todo = [i for i in missing if i not in attached]
            log.info(
                f"SLURM sweep of {len(jobs)} jobs: {len(jobs) - len(missing)} already "
                f"finished, {len(attached)} still queued or running, {len(todo)} to submit"
            )
            failures += self.wait(list(attached.items()), cfgs, runs, overrides)
            if self.max_members > 1:  # each stack one SLURM job, its dense models inside it
                submitted = self.submit_stacks(todo, jobs, cfgs)
                failures += self.wait(submitted, cfgs, runs, overrides)
            else:
                for wave in dense_waves(jobs, todo):
                    submitted = self.submit(wave, jobs, overrides, initial_job_idx, cfgs)
                    failures += self.wait(submitted, cfgs, runs, overrides)
        except PrunelabError as e:
            # One line, as every user error of the CLI; Hydra would print a traceback.
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            print(
                "left the sweep: its submitted jobs go on in SLURM; run the same command again "
                "to wait for them (nothing is submitted twice), or prunelab.report on "
                f"{self.config.hydra.sweep.dir} to see what finished",
                file=sys.stderr,
            )
            raise SystemExit(130) from None
        if failures:
            print(
                f"error: {len(failures)} of {len(jobs)} jobs did not finish (above); the others "
                "are kept: run the same command again to submit only the missing ones",
                file=sys.stderr,
            )
            raise SystemExit(1)
        return runs

    def submit(
        self,
        wave: list[int],
        jobs: list[Any],
        overrides: dict[int, list[str]],
        initial_job_idx: int,
        cfgs: list[DictConfig],
    ) -> list[tuple[int, Tracked]]:
        """Submit the jobs ``wave`` (indices), one array per device; each job's ``Tracked``,
        also written into its folder (``MARKER``) for a later driver."""
        from prunelab.slurm import device_of, resources

        by_device: dict[str, list[int]] = {}
        for i in wave:
            by_device.setdefault(device_of(jobs[i].trainer.accelerator), []).append(i)
        submitted: list[tuple[int, Tracked]] = []
        for device, indices in by_device.items():
            executor = self.executor(resources(self.params, device))
            params = [
                (overrides[i], "hydra.sweep.dir", initial_job_idx + i,
                 f"job_id_for_{initial_job_idx + i}", Singleton.get_state())
                for i in indices
            ]  # fmt: skip
            for i in indices:
                log.info(f"\t#{initial_job_idx + i} : {' '.join(filter_overrides(overrides[i]))}")
            try:
                array = executor.map_array(self, *zip(*params, strict=True))
            except Exception as e:  # sbatch refused or did not answer
                raise sbatch_refused("jobs", e) from None
            log.info(f"submitted {len(array)} {device} job(s) as SLURM array {array[0].job_id}")
            for i, job in zip(indices, array, strict=True):
                tracked = Tracked.of(job)
                tracked.write(Path(str(cfgs[i].paths.output_dir)))
                submitted.append((i, tracked))
        return submitted

    def submit_stacks(
        self, todo: list[int], jobs: list[Any], cfgs: list[DictConfig]
    ) -> list[tuple[int, Tracked]]:
        """Submit ``todo`` as stacks (``run.group_jobs``, at most ``max_members`` each), one
        SLURM job per stack (one GPU for a GPU stack): every member of a stack is followed
        through the stack's job."""
        from prunelab.run import group_jobs
        from prunelab.slurm import device_of, resources

        submitted: list[tuple[int, Tracked]] = []
        for group in group_jobs([jobs[i] for i in todo], self.max_members):
            members = [todo[g] for g in group]
            device = device_of(jobs[members[0]].trainer.accelerator)
            executor = self.executor(resources(self.params, device))
            every = self.checkpoint_every_n_epochs
            configs = [OmegaConf.to_container(with_checkpoints(cfgs[i], every), resolve=True)
                       for i in members]  # fmt: skip
            try:
                job = executor.submit(StackOnNode(), configs)
            except Exception as e:  # sbatch refused or did not answer
                raise sbatch_refused("stack", e) from None
            log.info(f"submitted a {device} stack of {len(members)} jobs as SLURM job {job.job_id}")
            tracked = Tracked.of(job)
            for i in members:
                tracked.write(Path(str(cfgs[i].paths.output_dir)))
                submitted.append((i, tracked))
        return submitted

    def executor(self, request: dict[str, Any]) -> Any:
        """A submitit SLURM executor with this launcher's parameters and ``request``'s
        GPUs, CPUs and memory (the base launcher builds the same, with fixed resources)."""
        import submitit

        executor = submitit.AutoExecutor(
            cluster="slurm",
            folder=self.params["submitit_folder"],
            slurm_max_num_timeout=self.params["max_num_timeout"],
        )
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        skip = {"submitit_folder", "max_num_timeout", *OWN_KEYS}
        params = {(k if k in base else f"slurm_{k}"): v
                  for k, v in {**self.params, **request}.items() if k not in skip}  # fmt: skip
        executor.update_parameters(**params)
        return executor

    def wait(
        self,
        submitted: list[tuple[int, Tracked]],
        cfgs: list[DictConfig],
        runs: list[JobReturn],
        overrides: dict[int, list[str]],
    ) -> list[str]:
        """Poll until every submitted job finished, failed or was lost; settle each run and
        log one line per job that did not finish. Returns those lines."""
        from prunelab.errors import SlurmError
        from prunelab.slurm import queue_states

        pending = dict(submitted)  # members of one stack share their Tracked
        if not pending:
            return []
        gone_since: dict[int, float] = {}
        silent_since: float | None = None
        failures: list[str] = []

        def fail(i: int, why: str) -> None:
            line = f"job {' '.join(filter_overrides(overrides[i]))}: {why}"
            log.error(line)
            failures.append(line)
            settle(runs[i], RuntimeError(line))
            del pending[i]

        while pending:
            now = time.monotonic()
            try:
                # A job still in the queue has not ended, whatever an earlier attempt left:
                # a requeued one (time limit, preemption, `scontrol requeue`) runs again.
                states = queue_states(job.job_id for job in pending.values())
            except SlurmError as e:
                silent_since = silent_since or now
                if now - silent_since > self.unreachable_after_s:
                    for i in list(pending):
                        fail(i, f"SLURM has not answered for {self.unreachable_after_s:.0f} s "
                                "(the job may still run; re-run the command later)")  # fmt: skip
                    break
                log.warning(f"{e} (waiting up to {self.unreachable_after_s:.0f} s)")
                time.sleep(self.poll_s)
                continue
            silent_since = None
            for i, job in list(pending.items()):
                if job.job_id in states:
                    gone_since.pop(i, None)
                elif job.result.exists():  # ended: submitit wrote its end
                    outcome = job_outcome(Path(str(cfgs[i].paths.output_dir)))
                    if isinstance(outcome, float):
                        settle(runs[i], outcome)
                        del pending[i]
                    else:
                        fail(i, f"{outcome} (log: {job.log})")
                elif now - gone_since.setdefault(i, now) > self.lost_after_s:
                    fail(i, f"SLURM job {job.job_id} left the queue without a result (cancelled, "
                            f"or its node failed; log: {job.log})")  # fmt: skip
            if pending:
                time.sleep(self.poll_s)
        return failures


def with_checkpoints(cfg: DictConfig, every: int) -> DictConfig:
    """``cfg``, checkpointing every ``every`` epochs if it never would (0): on SLURM a requeue
    should resume mid-training. The cadence is not part of a result's identity, nor of its
    folder's name."""
    if every and not cfg.checkpoint_every_n_epochs:
        cfg = cfg.copy()
        with open_dict(cfg):
            cfg.checkpoint_every_n_epochs = every
    return cfg


class StackOnNode:
    """What a stack's SLURM job runs: ``configs`` (resolved job configs) trained as one stack
    (``run.run_jobs``), with as many torch threads as SLURM gave CPUs and prunelab's log
    lines in the job's log. Each member writes its own folder; the driver reads them there.
    ``checkpoint`` lets submitit requeue it on a time limit or preemption: the stack then
    resumes from its ``last.ckpt``."""

    def __call__(self, configs: list[dict[str, Any]]) -> None:
        import torch

        from prunelab.workflows import run_jobs

        use_slurm_cpus(torch)
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stdout, force=True)
        run_jobs([OmegaConf.create(c) for c in configs])

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def use_slurm_cpus(torch: Any) -> None:
    """As many torch threads as SLURM gave the job CPUs (all of a node's, otherwise)."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit():
        torch.set_num_threads(int(cpus))


def sbatch_refused(what: str, error: Exception) -> Exception:
    """sbatch refused the ``what`` or did not answer: one line, with sbatch's own words."""
    from prunelab.errors import SlurmError

    why = " ".join(str(error).split())[:300]
    return SlurmError(
        f"sbatch did not take the {what}: {why}; is slurmctld up? (`sinfo` must answer) "
        "Nothing was lost: run the command again once it is"
    )


def dense_waves(jobs: Sequence[Any], missing: list[int]) -> list[list[int]]:
    """The missing jobs in at most two waves: first one job per dense model that several of
    them would share (it trains the model into the cache), then all the others, which then
    start from the cache instead of waiting on its lock inside an allocation."""
    from prunelab.cache import dense_settings
    from prunelab.identity import config_hash

    leaders: dict[str, int] = {}
    shared: dict[str, int] = {}
    for i in missing:
        job = jobs[i]
        if not (job.dense_cache and job.schedule.dense_epochs > 0):
            continue
        key = config_hash({"dir": str(job.paths.cache_dir), **dense_settings(job, "")})
        leaders.setdefault(key, i)
        shared[key] = shared.get(key, 0) + 1
    first = sorted(i for key, i in leaders.items() if shared[key] > 1)
    rest = [i for i in missing if i not in first]
    return [wave for wave in (first, rest) if wave]
