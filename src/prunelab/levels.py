"""Iterative magnitude pruning with rewinding, level by level (``schedule=imp``).

The lottery-ticket protocol of Frankle & Carbin (2019) and open_lth: train dense (level 0),
then at each level remove a share of the weights that remain by magnitude, rewind the
survivors to their values at the rewind point of the dense training, and retrain the rest of
the budget; the next level prunes the retrained ticket. Each training is a run of its own,
``levels/L<level>-<arm>/`` in the job's folder, with its own log, ``result.json`` and
``model.pt``, and goes through ``run.run_jobs`` like any job: a finished level is returned
without training, an interrupted one resumes from its ``last.ckpt``, so an IMP job resumes
level by level (the orchestrator hands ``run_levels`` the function that runs one job).
Every level's start (weights and masks, ``start.pt``) is computed here from
the previous ticket and the rewind point, deterministically, so writing it again on a resume
changes nothing.

At every level two controls of open_lth can train beside the ticket (``controls``):
``random``, a random mask with the ticket's per-layer counts on the same rewound weights
(does the ticket's *mask* matter?), and ``reinit``, the ticket's mask on fresh initial
weights from the seed's ``reinit`` stream (does its *initialisation* matter?).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from prunelab.config import Config, job_method
from prunelab.nets import MaskedMLP, fresh_weights
from prunelab.pruning import prunable_layers, smallest_masks
from prunelab.results import (
    MODEL_FILE,
    job_result,
    save_state_atomic,
    write_json_atomic,
)
from prunelab.schedules import IMPSchedule, LevelSchedule
from prunelab.streams import seed_for

log = logging.getLogger("prunelab")
LEVELS_DIR = "levels"
REWIND_FILE = "rewind.pt"
START_FILE = "start.pt"
SUMMARY_FILE = "levels.json"
RunOne = Callable[[Config], dict[str, Any]]


def level_dir(out: Path, level: int, arm: str) -> Path:
    """Where level ``level``'s ``arm`` runs: ``levels/L03-ticket``."""
    return out / LEVELS_DIR / f"L{level:02d}-{arm}"


def is_level_dir(folder: Path) -> bool:
    """A folder ``level_dir`` names: a run of an IMP job, reported through its job's
    ``levels`` rather than as a job of the sweep."""
    return (
        folder.parent.name == LEVELS_DIR and re.fullmatch(r"L\d+-[a-z]+", folder.name) is not None
    )


def level_job(job: Config, schedule: LevelSchedule, k: float) -> Config:
    """``job`` as the training of one level: its schedule, its sparsity, its own folder and
    log, and a saved model (the next level prunes the ticket's)."""
    out = str(level_dir(Path(job.paths.output_dir), schedule.level, schedule.arm))
    return dataclasses.replace(
        job,
        schedule=schedule,
        sparsity=k,
        save_model=True,
        paths=dataclasses.replace(job.paths, output_dir=out),
        logger=dataclasses.replace(job.logger, save_dir=out),
    )


def load_net(path: Path, sizes: list[int]) -> MaskedMLP:
    """A ``MaskedMLP`` from a state dict this job wrote (``model.pt``, ``rewind.pt``)."""
    net = MaskedMLP(sizes)
    net.load_state_dict(torch.load(path, weights_only=True))
    return net


def random_like(mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A mask of ``mask``'s shape keeping as many weights, at uniformly random places."""
    n = mask.numel()
    scores = torch.rand(1, n, generator=generator)
    return smallest_masks(scores, [n - int(mask.sum())]).reshape(mask.shape)


def level_start(
    ticket: MaskedMLP, rewind: MaskedMLP, job: Config, level: int, arm: str
) -> dict[str, torch.Tensor]:
    """The state (weights and masks) ``arm`` of ``level`` starts from, given the previous
    level's trained ``ticket`` and the dense training's ``rewind`` point.

    The ticket's mask: the strategy's method at the level's sparsity on the trained weights
    (the dead ones, 0, go first, so a level only removes live weights). ``random`` keeps each
    pruned layer's count at random places (the seed's ``mask`` stream, one per level);
    ``reinit`` puts fresh weights under the ticket's mask."""
    imp = job.schedule
    k = imp.level_sparsity(level)
    net = MaskedMLP(job.model.sizes)
    net.load_state_dict(ticket.state_dict())
    net.prune(job_method(job), k, job.strategy.prune_output, job.seed)
    masks = [m.clone() for m in net.masks()]
    if arm == "random":
        gen = torch.Generator().manual_seed(seed_for(job.seed, "mask", level))
        pruned = prunable_layers(len(masks), job.strategy.prune_output)
        masks = [random_like(m, gen) if p else m for m, p in zip(masks, pruned, strict=True)]
    if arm == "reinit":
        w0 = [w[0] for w in fresh_weights(job.model.sizes, [job.seed], torch.device("cpu"),
                                          torch.float32)]  # fmt: skip
    else:
        w0 = [layer.weight.detach() for layer in rewind.layers]
    state = {}
    for i, (w, m) in enumerate(zip(w0, masks, strict=True)):
        state[f"layers.{i}.weight"] = (w * m).contiguous()
        state[f"layers.{i}.mask"] = m
    return state


def best_epoch(job_dir: Path) -> dict[str, float]:
    """The epoch of best validation accuracy of a run (1-based; the first of equal ones),
    and its validation and test accuracy: the early-stop figures of Frankle & Carbin."""
    rows = pd.read_csv(job_dir / "metrics.csv")
    rows = rows.dropna(subset=["epoch", "val/acc"]).reset_index(drop=True)
    if rows.empty:
        return {}
    i = int(rows["val/acc"].to_numpy().argmax())
    best = {"best_val_epoch": int(rows["epoch"][i]) + 1, "best_val_acc": float(rows["val/acc"][i])}
    if "test/acc" in rows:
        best["test_acc_at_best_val"] = float(rows["test/acc"][i])
    return best


def level_summary(result: dict[str, Any], job_dir: Path, level: int, arm: str) -> dict[str, Any]:
    """One row of ``levels.json``: what a level's run scored."""
    figures = result["figures"]
    return {
        "level": level,
        "arm": arm,
        "sparsity": result["sparsity"],
        "kept": 1.0 - result["sparsity"],
        "kept_all": figures["params/nonzero"] / figures["params/total"],
        "test_acc": result["test_acc"],
        "val_acc": result["val_acc"],
        "train_acc": result["train_acc"],
        "epochs": result["epochs"],
        "fit_time_s": result.get("fit_time_s"),
        **best_epoch(job_dir),
        "dir": str(job_dir.relative_to(job_dir.parent.parent)),
    }


def run_levels(job: Config, run_one: RunOne, spe: int) -> dict[str, Any]:
    """Every level of an IMP job, in order, then its summary result: the last ticket's
    figures, with ``levels`` (one row per level and arm, ``level_summary``) and the
    ``sparsity`` the last level reached. ``run_one`` trains one level's job (or returns its
    finished result) and raises what stopped it (``run.run_job``); ``spe``
    is the job's optimizer steps per epoch."""
    imp: IMPSchedule = job.schedule
    started = time.perf_counter(), time.time()
    out = Path(job.paths.output_dir)
    rewind_step = imp.rewind_steps(spe)
    if rewind_step >= imp.epochs * spe:
        raise ValueError(
            f"schedule.rewind_step={rewind_step} is not inside the dense training's "
            f"{imp.epochs * spe} steps; rewind to an earlier step"
        )
    rewind_path = out / LEVELS_DIR / REWIND_FILE
    dense = LevelSchedule(epochs=imp.epochs, level=0, lr_horizon=imp.epochs,
                          capture_step=rewind_step, capture=str(rewind_path))  # fmt: skip
    rows = []
    done = run_one(level_job(job, dense, 0.0))
    rows.append(level_summary(done, level_dir(out, 0, "ticket"), 0, "ticket"))
    rewind = load_net(rewind_path, job.model.sizes)
    arms = ("ticket", "random", "reinit") if imp.controls else ("ticket",)
    skipped = math.floor(rewind_step / spe)
    last = done
    for level in range(1, imp.levels + 1):
        ticket = load_net(level_dir(out, level - 1, "ticket") / MODEL_FILE, job.model.sizes)
        k = imp.level_sparsity(level)
        for arm in arms:
            folder = level_dir(out, level, arm)
            folder.mkdir(parents=True, exist_ok=True)
            start = folder / START_FILE
            save_state_atomic(start, level_start(ticket, rewind, job, level, arm))
            schedule = LevelSchedule(epochs=imp.epochs - skipped, level=level, arm=arm,
                                     lr_horizon=imp.epochs, offset=rewind_step / spe,
                                     start=str(start))  # fmt: skip
            result = run_one(level_job(job, schedule, k))
            rows.append(level_summary(result, folder, level, arm))
            if arm == "ticket":
                last = result
        write_json_atomic(out / SUMMARY_FILE, rows)
        log.info(
            "IMP level %d/%d (%.2f %% of the pruned weights kept): %s",
            level,
            imp.levels,
            100 * (1 - k),
            ", ".join(f"{r['arm']} {r['test_acc']:.4f}" for r in rows if r["level"] == level),
        )
    final = {f"{split}/{m}": last[f"{split}_{m}"] for split in ("train", "val", "test")
             for m in ("acc", "loss") if f"{split}_{m}" in last}  # fmt: skip
    run = {
        "levels": rows,
        "dataset": last.get("dataset"),
        "data_sha256": last.get("data_sha256"),
        "numerics": last.get("numerics"),
        "fit_time_s": sum(r["fit_time_s"] or 0.0 for r in rows),
    }
    result = job_result(dataclasses.asdict(job), final, last["figures"], run, started)
    result["sparsity"] = last["sparsity"]  # what the last level reached, not `sparsity`
    return result
