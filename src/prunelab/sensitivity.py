"""A sensitivity scan as a workflow (``schedule=sensitivity``): the dense model, trained by an
ordinary run, then every prunable layer pruned alone at every k of a grid, all as one stack of
members, and the accuracy each costs.

Why a workflow, like IMP's levels (``prunelab.imp``), and not a schedule inside one training
or a command of its own: the scan needs a *trained* dense model, and the orchestrator already
knows how to get one without training it twice (the dense cache: a one-shot sweep with the
same dense phase trained it already, and will reuse what the scan trains). So the dense model
is an ordinary one-shot run at k = 0 (``scan/dense/`` in the job's folder, through
``run.run_job``: its figures, its log, its ``model.pt``; resumed or returned like any run),
and the scan itself needs no trainer at all: it stacks copies of that model, prunes member
(l, k) with the job's criterion in layer l alone (``MemberStack.prune``, the pruning a
training's callback does, the whole stack in one batched selection), and evaluates every
member at once (``module.member_accuracy``). The job is then an ordinary job to Hydra, the
launchers, the resume (a finished scan's ``result.json`` is returned without any work) and
the report; ``experiment=sensitivity`` is its preset, and a Hydra sweep over seeds scans each
seed's dense model.

Member (l, k) is exactly what a one-shot run of the same dense phase gives with
``strategy.layer_sparsity=[0, …, k, …, 0]``: the same masks (the uniform allocation with that
profile; an allocation that spreads a k over several layers has only one layer to spread it
over here), and for a criterion that scores on data the same batches (the ``score`` stream at
the step where that run prunes). The drops the budget reads are measured on the validation
split (the last 10 000 training images, which the dense model never trained on), so that a
budget chosen by a scan is then judged on a test split it never saw; the test split's drops
are recorded beside them. What a scan is made of (its members, files, the budget rule) is
``prunelab.scans``.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch

from prunelab.config import Config, check_environment, check_stack
from prunelab.criteria import Batch
from prunelab.data import BatchLoader, RawDataset, scoring_batches
from prunelab.job_data import load_data, loaders, new_member
from prunelab.models import stacked
from prunelab.module import member_accuracy
from prunelab.nets import MaskedMLP, MemberStack
from prunelab.pruning import prunable_layers
from prunelab.results import (
    MODEL_FILE,
    job_result,
    save_result,
    write_json_atomic,
    write_text_atomic,
)
from prunelab.run import run_job
from prunelab.scans import (
    BUDGET_FILE,
    SPLIT,
    TABLE_COLUMNS,
    TABLE_FILE,
    alone,
    budget_record,
    dense_dir,
    scan_members,
)
from prunelab.schedules import OneshotSchedule, SensitivitySchedule
from prunelab.selection import Method, method
from prunelab.stack import MaskedNet

log = logging.getLogger("prunelab")
Member = MaskedMLP | MaskedNet
# Samples × members per evaluation forward: the activations of a stack of many members stay a
# few hundred MB (LeNet-5's first conv keeps 46 kB per sample and member).
EVAL_ROWS = 8192


class Scanned(NamedTuple):
    """What a scan measured: the scanned layers (``layer``: its number from 1, ``name``,
    ``weights``), one row per (layer, k) (``scans.TABLE_COLUMNS``: accuracies as fractions,
    drops in points, the share of the layer's weights masked), the dense reference's
    accuracies and the images of each split."""

    layers: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    dense: dict[str, float]
    samples: dict[str, int]


def train_scan(jobs: Sequence[Config], progress_bar: bool = False) -> list[dict[str, Any]]:
    """A scan job (alone: ``config.check_stack``): its dense run, the scan, and its files,
    as ``run.run_jobs`` expects of the function that trains its jobs."""
    check_stack(jobs)
    [job] = jobs
    check_environment(job)
    started = time.perf_counter(), time.time()
    dense = run_job(dense_job(job))
    raw = load_data(job)
    net = load_dense(dense_dir(Path(job.paths.output_dir)) / MODEL_FILE,
                     new_member(job, raw, job.seed))  # fmt: skip
    scanning = time.perf_counter()
    scanned = scan(job, raw, net)
    return [write_scan(job, dense, scanned, time.perf_counter() - scanning, started)]


def write_scan(
    job: Config,
    dense: dict[str, Any],
    scanned: Scanned,
    scan_time: float,
    started: tuple[float, float],
) -> dict[str, Any]:
    """``sensitivity.csv`` and ``budget.json``, then the job's ``result.json`` (written last:
    its presence marks the scan finished): the dense run's figures, the table under
    ``sensitivity``; the result."""
    out = Path(job.paths.output_dir)
    schedule: SensitivitySchedule = job.schedule
    write_text_atomic(out / TABLE_FILE, table_csv(scanned.rows))
    record = budget_record(scanned.rows, schedule.max_drop, scanned.layers,
                           job.strategy.allocation, job.strategy.prune_output)  # fmt: skip
    write_json_atomic(out / BUDGET_FILE, record)
    final = {f"{split}/{m}": dense[f"{split}_{m}"] for split in ("train", "val", "test")
             for m in ("acc", "loss") if f"{split}_{m}" in dense}  # fmt: skip
    sensitivity = {"split": SPLIT, "grid": sorted(schedule.grid), "layers": scanned.layers,
                   "dense": scanned.dense, "samples": scanned.samples, "rows": scanned.rows,
                   "budget": record, "scan_time_s": scan_time}  # fmt: skip
    kept = ("dataset", "data_sha256", "numerics", "fit_time_s", "dense_cache")
    run = {"sensitivity": sensitivity, **{key: dense.get(key) for key in kept}}
    result = job_result(dataclasses.asdict(job), final, dense["figures"], run, started)
    result["sparsity"] = 0.0  # the dense model's figures; the budget's is in budget.json
    save_result(out, result, None)
    log.info("sensitivity scan of %d layers × %d k in %.1f s; budget (%s drop ≤ %g points): "
             "%s → %s", len(scanned.layers), len(schedule.grid), scan_time, SPLIT,
             schedule.max_drop, record["override"], out / BUDGET_FILE)  # fmt: skip
    return result


def dense_job(job: Config) -> Config:
    """``job``'s dense model as an ordinary run: one-shot at k = 0 after the scan's dense
    epochs, its model saved, in ``scan/dense/``. Its dense phase is a one-shot sweep's of
    the same settings, so the two share their dense-cache entry."""
    schedule: SensitivitySchedule = job.schedule
    out = str(dense_dir(Path(job.paths.output_dir)))
    return dataclasses.replace(
        job,
        schedule=OneshotSchedule(epochs=schedule.epochs, finetune_epochs=0),
        sparsity=0.0,
        save_model=True,
        inference_batch_size=None,
        paths=dataclasses.replace(job.paths, output_dir=out),
        logger=dataclasses.replace(job.logger, save_dir=out),
    )


def load_dense(path: Path, fresh: Member) -> Member:
    """``fresh``, a new member of the job's model, with the dense run's ``model.pt`` (which
    this workflow had written), in the dtype it was trained in."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    dtype = next(v.dtype for v in state.values() if v.is_floating_point())
    net = fresh.to(dtype)
    net.load_state_dict(state)
    return net


def layer_names(net: Member) -> list[str]:
    """Each prunable layer's name: ``layers.0`` (the MLP), ``conv1`` (any other model)."""
    graph = net.graph()
    if graph is None:
        return [f"layers.{i}" for i in range(len(net.masks()))]
    return [name.removesuffix(".weight") for name in graph.names]


def scan(job: Config, raw: RawDataset, net: Member) -> Scanned:
    """Prune each layer ``job``'s strategy prunes alone at each k of its grid, from ``net``
    (the dense model), and evaluate every member (the dense model first) on the validation
    and test splits, ``schedule.max_members`` of them per stack."""
    schedule: SensitivitySchedule = job.schedule
    device = torch.device("cuda" if job.trainer.accelerator in ("gpu", "cuda") else "cpu")
    pruned = scanned_layers(job, net)
    names, sizes = layer_names(net), [w.numel() for w in net.weights()]
    members = scan_members(len(pruned), schedule.grid)
    train, evals = loaders(job, raw, device, [job.seed])
    batches = scan_batches(job, train)
    log.info("sensitivity scan: %d layers × %d k + the dense model, %d members, on %s",
             len(pruned), len(schedule.grid), len(members), device)  # fmt: skip
    accs: dict[str, list[float]] = {"val": [], "test": []}
    masked: list[float] = []
    samples: dict[str, int] = {}
    for first in range(0, len(members), schedule.max_members):
        chunk = members[first : first + schedule.max_members]
        stack = scan_stack(job, net, chunk, batches, device)
        rows = max(1, min(job.data.eval_batch_size, EVAL_ROWS // len(chunk)))
        for split, values in accs.items():
            loader = BatchLoader(evals[split].x, evals[split].y, rows)
            chunk_accs, samples[split] = member_accuracy(stack, loader)
            values += chunk_accs
        masked += masked_share(stack, [layer for layer, _ in chunk], pruned)
        del stack
    layers = [{"layer": i + 1, "name": names[i], "weights": sizes[i]} for i in pruned]
    reference = {f"{split}_acc": values[0] for split, values in accs.items()}
    return Scanned(layers, table_rows(layers, members, accs, masked), reference, samples)


def table_rows(
    layers: Sequence[dict[str, Any]],
    members: Sequence[tuple[int | None, float]],
    accs: dict[str, list[float]],
    masked: Sequence[float],
) -> list[dict[str, Any]]:
    """One row per member (l, k) but the dense reference (member 0): its layer, k, share
    masked, and per split its accuracy and drop from member 0's, in points."""
    rows = []
    for j, (layer, k) in enumerate(members):
        if layer is None:
            continue
        row: dict[str, Any] = {**layers[layer], "k": k, "pruned": masked[j]}
        for split, values in accs.items():
            row[f"{split}_acc"] = values[j]
            row[f"{split}_drop"] = round(100.0 * (values[0] - values[j]), 10)
        rows.append(row)
    return rows


def scanned_layers(job: Config, net: Member) -> list[int]:
    """The layers ``job``'s strategy prunes (0-based): every one but the output layer, which
    only ``strategy.prune_output=true`` adds."""
    prunable = prunable_layers(len(net.masks()), job.strategy.prune_output)
    return [i for i, p in enumerate(prunable) if p]


def scan_batches(job: Config, train: BatchLoader) -> list[Batch]:
    """What a criterion that scores on data scores on: the batches a one-shot run of the same
    dense phase draws where it prunes, the step after its last (none for one that does not)."""
    if not scan_method(job).needs_data:
        return []
    s = job.strategy
    return scoring_batches(train.x, train.y, [job.seed], job.schedule.epochs * len(train),
                           s.score_batches, s.score_batch_size)  # fmt: skip


def scan_method(job: Config) -> Method:
    """The job's criterion (and shuffle) within one layer: the uniform allocation, which is
    what any allocation gives a k that only one layer takes."""
    return method(job.strategy.criterion, "uniform", job.strategy.shuffle)


def scan_stack(
    job: Config,
    net: Member,
    chunk: Sequence[tuple[int | None, float]],
    batches: Sequence[Batch],
    device: torch.device,
) -> MemberStack:
    """The members of ``chunk`` (``scans.scan_members``) as one stack on ``device``: copies
    of ``net``, member (l, k) pruned at k in scanned layer l alone, in one batched selection
    (what the pruning callback does to a stack), every other layer left as it is."""
    n_pruned = len(scanned_layers(job, net))
    stack = stacked([net] * len(chunk)).to(device)
    ks = [alone(n_pruned, layer, k) for layer, k in chunk]
    seeds = [job.seed] * len(chunk)
    stack.prune(range(len(chunk)), scan_method(job), ks, job.strategy.prune_output, seeds,
                batches)  # fmt: skip
    return stack


def masked_share(
    stack: MemberStack, layers: Sequence[int | None], pruned: Sequence[int]
) -> list[float]:
    """The share of its scanned layer's weights each member has masked (0 for the dense
    reference): k up to rounding, or the units' share for a unit criterion."""
    shares = []
    for j, layer in enumerate(layers):
        if layer is None:
            shares.append(0.0)
            continue
        mask = stack.layers[pruned[layer]].mask[j]
        shares.append(1.0 - float(mask.sum()) / mask.numel())
    return shares


def table_csv(rows: Sequence[dict[str, Any]]) -> str:
    """``sensitivity.csv``: one row per (layer, k), the columns of ``scans.TABLE_COLUMNS``."""
    buffer = io.StringIO()
    pd.DataFrame(list(rows), columns=list(TABLE_COLUMNS)).to_csv(buffer, index=False)
    return buffer.getvalue()
