"""Iterative magnitude pruning with rewinding, level by level (``schedule=imp``).

The lottery-ticket protocol of Frankle & Carbin (2019) and open_lth: train dense (level 0),
then at each level remove a share of the weights that remain by magnitude, rewind the
survivors to their values at the rewind point of the dense training, and retrain the rest of
the budget; the next level prunes the retrained ticket. Each training is a run of its own,
``levels/L<level>-<arm>/`` in the job's folder, with its own log, ``result.json`` and
``model.pt``; the workflow that trains them through the orchestrator, like any job, is
``prunelab.imp``, above it. Here is what the levels are made of, below the orchestrator and
the report both: their folders, the job of each, the start of each (weights and masks,
``start.pt``, computed from the previous ticket and the rewind point, deterministically, so
writing it again on a resume changes nothing), and the row each adds to the summary.

At every level two controls of open_lth can train beside the ticket (``controls``):
``random``, a random mask with the ticket's per-layer counts on the same rewound weights
(does the ticket's *mask* matter?), and ``reinit``, the ticket's mask on fresh initial
weights from the seed's ``reinit`` stream (does its *initialisation* matter?).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from prunelab.config import Config, job_method
from prunelab.nets import MaskedMLP
from prunelab.pruning import prunable_layers, smallest_masks
from prunelab.schedules import LevelSchedule
from prunelab.stack import MaskedNet
from prunelab.streams import seed_for

Member = MaskedMLP | MaskedNet  # one model of the job, masked
Fresh = Callable[[str], Member]  # a new member of the job's model, initialised from a purpose
LEVELS_DIR = "levels"
REWIND_FILE = "rewind.pt"
START_FILE = "start.pt"
SUMMARY_FILE = "levels.json"


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


def load_net(path: Path, net: Member) -> Member:
    """``net``, a new member of the job's model, with the state dict this job wrote
    (``model.pt``, ``rewind.pt``)."""
    net.load_state_dict(torch.load(path, weights_only=True))
    return net


def random_like(mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A mask of ``mask``'s shape keeping as many weights, at uniformly random places."""
    n = mask.numel()
    scores = torch.rand(1, n, generator=generator)
    return smallest_masks(scores, [n - int(mask.sum())]).reshape(mask.shape)


def level_start(
    ticket: Member, rewind: Member, job: Config, level: int, arm: str, fresh: Fresh
) -> dict[str, torch.Tensor]:
    """The state (weights and masks) ``arm`` of ``level`` starts from, given the previous
    level's trained ``ticket`` and the dense training's ``rewind`` point.

    The ticket's mask: the strategy's method at the level's sparsity on the trained weights
    (the dead ones, 0, go first, so a level only removes live weights). ``random`` keeps each
    pruned layer's count at random places (the seed's ``mask`` stream, one per level);
    ``reinit`` puts fresh weights (``fresh("reinit")``, a new member from the seed's
    ``reinit`` stream) under the ticket's mask; any other parameter (a bias) comes with the
    weights, from the rewind point or the fresh member."""
    imp = job.schedule
    k = imp.level_sparsity(level)
    net = fresh("init")
    net.load_state_dict(ticket.state_dict())
    net.prune(job_method(job), k, job.strategy.prune_output, job.seed)
    masks = [m.clone() for m in net.masks()]
    if arm == "random":
        gen = torch.Generator().manual_seed(seed_for(job.seed, "mask", level))
        pruned = prunable_layers(len(masks), job.strategy.prune_output)
        masks = [random_like(m, gen) if p else m for m, p in zip(masks, pruned, strict=True)]
    start = fresh("reinit" if arm == "reinit" else "init")
    if arm != "reinit":
        start.load_state_dict(rewind.state_dict())  # a copy: the rewind point serves every arm
    with torch.no_grad():
        for w, mask, m in zip(start.weights(), start.masks(), masks, strict=True):
            w.mul_(m)
            mask.copy_(m)
    return {k: v.contiguous() for k, v in start.state_dict().items()}


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
