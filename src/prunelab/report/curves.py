"""What a per-epoch figure draws, as data: per (strategy, group), the dense phase every k
shares, each k after it, and each k's final evaluation, as mean ± std over seeds
(``epoch_lines``, which the tests call directly). No matplotlib here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Series:
    """One drawn line: x, and the mean and std over seeds at each x (fractions)."""

    x: list[float]
    mean: np.ndarray
    std: np.ndarray


@dataclass
class EpochLines:
    """What a per-epoch figure draws for one (strategy, group): the epochs every k shares
    (the dense phase, drawn once), each k after them, and each k's final evaluation."""

    shared: Series | None = None
    by_k: dict[float, Series] = field(default_factory=dict)
    final: dict[float, Series] = field(default_factory=dict)
    seeds: int = 1


def over_seeds(rows: pd.DataFrame, col: str) -> Series:
    """Mean and std (ddof=1; 0 for one seed) over seeds of ``col`` at each epoch."""
    g = rows.groupby("epoch")[col]
    mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
    return Series([float(e) for e in mean.index], mean.to_numpy(), std.to_numpy())


def shared_epochs(per_epoch: pd.DataFrame) -> int:
    """How many leading epochs the jobs of each seed went through identically, whatever
    their k (train and test accuracy equal): the dense phase a one-shot sweep's jobs share
    (through the dense cache) before pruning makes them differ. An epoch counts only where
    some seed shows it for two k or more; so 0 for a single k, and for schedules that prune
    from the first step (at init, sparse training)."""
    cols = [c for c in ("train/acc", "test/acc") if c in per_epoch]
    n_ks = per_epoch["sparsity"].nunique()
    count = 0
    for _, rows in per_epoch.groupby("epoch", sort=True):
        by_seed = rows.groupby("seed")
        spread = by_seed[cols].max() - by_seed[cols].min()
        seen_twice = (by_seed["sparsity"].nunique() > 1).any()
        if rows["sparsity"].nunique() < n_ks or not seen_twice or (spread > 1e-9).any(axis=None):
            break
        count += 1
    return count


def epoch_lines(curves: pd.DataFrame, split: str) -> EpochLines:
    """The lines of one (strategy, group)'s per-epoch figure of ``split`` (train or test):
    ``curves`` as ``read.epoch_curves`` gives them, for that strategy and group."""
    col = f"{split}/acc"
    per_epoch = curves[~curves["final"].astype(bool)]
    n = shared_epochs(per_epoch)
    epochs = sorted(per_epoch["epoch"].unique())
    lines = EpochLines(seeds=int(curves["seed"].nunique()))
    if n:
        shared = per_epoch[per_epoch["epoch"].isin(epochs[:n])]
        lines.shared = over_seeds(shared.drop_duplicates(["seed", "epoch"]), col)
    for k, rows in curves.groupby("sparsity", sort=True):
        # from the last shared epoch on, so each k's line starts where the dense one ends
        tail = rows[~rows["final"].astype(bool) & (rows["epoch"] >= (epochs[n - 1] if n else 0))]
        if len(tail["epoch"].unique()) > (1 if n else 0):
            lines.by_k[float(k)] = over_seeds(tail, col)
        lines.final[float(k)] = over_seeds(rows[rows["final"].astype(bool)], col)
    return lines
