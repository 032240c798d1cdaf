"""Finishing a stack: each member's ``result.json``, with what the run did besides its figures.

Per member: the test-stage figures (checked finite), its sparsity figures from the pruning
callback, and a ``run`` record: the data, the numerics, what its sparsity buys at inference,
the fit's times, where its dense model came from, whether it resumed, and its place in the
stack. The result's layout and its file are ``results.py``'s.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prunelab import cache
from prunelab.config import Config
from prunelab.data import RawDataset
from prunelab.errors import TrainingError
from prunelab.results import job_result, numerics, save_result
from prunelab.sparse import inference_speedup
from prunelab.stacks import Stack
from prunelab.start import Start
from prunelab.wiring import Fitted

log = logging.getLogger("prunelab")


def write_results(
    stack: Stack, raw: RawDataset, fitted: Fitted, start: Start, started: tuple[float, float],
    fit_time: float,
) -> list[dict[str, Any]]:  # fmt: skip
    """Write each member's ``result.json`` (and ``model.pt`` if its job saves it) after the
    final test of ``fitted``; the results, in the members' order. ``started`` is when the
    stack started (``time.perf_counter()``, ``time.time()``), ``fit_time`` its fit's seconds."""
    _, module, pruning, summary, checkpoint = fitted
    base, jobs = stack.base, stack.jobs
    results = []
    writing = time.perf_counter()
    figures = pruning.figures(module)
    epoch_time = median_epoch_time(summary.epoch_times)
    device = fitted.trainer.strategy.root_device
    env = numerics(device, module.net.layers[0].weight.dtype, base.trainer.precision)
    for i, (job, out) in enumerate(zip(jobs, stack.outs, strict=True)):
        net = module.net.unstack(i).cpu()
        run = {
            "dataset": raw.name,
            "data_source": raw.source,
            "data_sha256": raw.digest,
            "numerics": env,
            "inference": measure_inference(job, net),
            "fit_time_s": fit_time,
            "epoch_time_s": epoch_time,
            "epoch_times_s": summary.epoch_times,
            "checkpoint_time_s": checkpoint.saved_s if checkpoint else None,
            "dense_cache": cache_record(start.dense[i]) if start.dense else None,
            "resumed_after_epoch": start.resumed_after_epoch,
            "stacked": {"members": len(jobs), "index": i, "workdir": str(stack.workdir)},
        }
        final = final_metrics(module.figures, f"m{i}/")
        result = job_result(dataclasses.asdict(job), final, figures[i], run, started)
        save_result(out, result, net.state_dict() if job.save_model else None)
        log_result(result, out)
        results.append(result)
    if len(jobs) > 1:
        log.info("wrote %d results in %.1f s", len(jobs), time.perf_counter() - writing)
    return results


def cache_record(entry: Path) -> dict[str, Any]:
    """Where a job's dense model came from, and the numeric environment that trained it."""
    manifest = cache.read_manifest(entry)
    return {"entry": str(entry), "numerics": manifest.get("numerics")}


def median_epoch_time(times: Sequence[float]) -> float | None:
    """Typical seconds per epoch of a fit: the median, leaving out the first epoch (warm-up:
    allocations, kernel selection) when there are others; None if no epoch ran."""
    steady = times[1:] or times
    return statistics.median(steady) if steady else None


def final_metrics(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """The test-stage figures (``<prefix>final/<split>/<metric>``), checked to be finite."""
    start = f"{prefix}final/"
    final = {k[len(start) :]: float(v) for k, v in metrics.items() if k.startswith(start)}
    for key, value in final.items():
        if not math.isfinite(value):
            raise TrainingError(f"final/{key} is {value}: the pruned model gives non-finite output")
    return final


def measure_inference(job: Config, net: Any) -> dict[str, Any] | None:
    """What this job's sparsity buys at inference, measured on the CPU
    (``sparse.inference_speedup``); None when ``inference_batch_size`` is null or the run
    is a quick look on a ``data.limit`` subset, whose time the timing would dominate."""
    batch = job.inference_batch_size
    if not batch or job.data.limit is not None:  # a quick look: no benchmark in it
        return None
    return inference_speedup(net, batch_size=batch)


def log_result(result: dict[str, Any], job_dir: Path) -> None:
    log.info(
        "%s k=%.3g: test acc %.4f (train %.4f, val %.4f) → %s",
        result["strategy"],
        result["sparsity"],
        result["test_acc"],
        result["train_acc"],
        result["val_acc"],
        job_dir / "result.json",
    )


def unrecovered_note(result: dict[str, Any]) -> str | None:
    """For a model pruned one-shot and never fine-tuned (the challenge's setting, and the
    default of a single run), that its accuracy is the unrecovered one and how to recover it;
    None otherwise. A single run ends with it (``train.py``); a sweep's jobs do not repeat it.
    """
    if result["schedule"] != "oneshot" or result["finetune_epochs"] or not result["sparsity"]:
        return None
    return (
        f"test acc {result['test_acc']:.4f} is the unrecovered accuracy of a one-shot prune "
        "without fine-tuning: add schedule.finetune_epochs=3 to recover it (what each length "
        "recovers: docs/results/finetuning.md)"
    )
