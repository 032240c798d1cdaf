"""The report's statistics: compression ratios, the accuracy drop paired with the dense
model of the same group and seed, and means ± std over seeds per (strategy, group, k)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

LAYER_FIGURE = re.compile(r"sparsity/layer(\d+)")
# The rows of a report: one per (strategy, group, k), averaged over seeds.
ROW_KEYS = ["strategy", "group_index", "group", "sparsity"]


def compression_ratio(s: Any) -> Any:
    """1 / (1 − s): how many times fewer weights are kept, ShrinkBench's x axis.

    Spreads the high sparsities that matter (90 → 10×, 99 → 100×) on a log axis and, unlike k,
    compares strategies by what they really removed. ``inf`` at s = 1 (nothing kept); works
    on a float, an array or a Series (then returns an array).
    """
    s = np.asarray(s, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(s < 1.0, 1.0 / (1.0 - np.minimum(s, 1.0)), np.inf)


def actual_sparsity(summary: pd.DataFrame) -> pd.Series:
    """Per job, the fraction of prunable weights really removed (``sparsity/global``).

    Falls back to the nominal k for results that lack the figure, so old sweeps still plot.
    """
    nominal = summary["sparsity"].astype(float)
    if "sparsity/global" not in summary:
        return nominal
    return summary["sparsity/global"].astype(float).fillna(nominal)


def dense_drop(summary: pd.DataFrame) -> pd.Series:
    """Per job, test_acc − test_acc of the dense (k = 0) job of the *same group and seed*;
    NaN if there is none.

    Pairing by seed cancels the seed-to-seed spread of the dense model, which a pruned model
    inherits: the std over seeds of these differences is what pruning does, not how lucky
    the seed's initialisation was. Pairing within the group keeps two experiments apart (a
    fine-tuned model is compared with a fine-tuned dense one). The same strategy's k = 0 job
    is preferred; any other k = 0 job of the group and seed prunes nothing either, so it
    serves too.
    """
    dense = summary[summary["sparsity"] == 0.0]
    own = dense.drop_duplicates(["strategy", "group", "seed"])
    own = own.set_index(["strategy", "group", "seed"])["test_acc"]
    keys = pd.MultiIndex.from_frame(summary[["strategy", "group", "seed"]])
    base = pd.Series(own.reindex(keys).to_numpy(), index=summary.index)
    shared = dense.drop_duplicates(["group", "seed"]).set_index(["group", "seed"])["test_acc"]
    pairs = pd.MultiIndex.from_frame(summary[["group", "seed"]])
    base = base.fillna(pd.Series(shared.reindex(pairs).to_numpy(), index=summary.index))
    return summary["test_acc"].astype(float) - base.astype(float)


def layer_numbers(columns: Any) -> list[int]:
    """1 .. N, N the deepest ``sparsity/layerN`` figure present (none: an empty list)."""
    found = [int(m.group(1)) for c in columns if (m := LAYER_FIGURE.fullmatch(str(c)))]
    return list(range(1, max(found) + 1)) if found else []


def aggregate(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1; 0 with one seed) and seed count per (strategy, group, k), with the
    group's name (``group_name``) and allocation where the summary has them.

    ``sparsity/global`` falls back to the nominal k per job (``actual_sparsity``) and gives
    ``compression`` (of the mean); ``test_acc_drop_n`` counts the seeds that had a dense
    partner, as the drop's mean and std are over those only.
    """
    derived = {"sparsity/global": actual_sparsity(summary)}
    if {"flops/compact", "flops/sparse"} <= set(summary):
        derived["flops/best"] = summary[["flops/compact", "flops/sparse"]].min(axis=1)
    summary = summary.assign(**derived)
    layers = layer_numbers(summary.columns)
    cols = ["train_acc", "val_acc", "test_acc", "test_acc_drop", "sparsity/global"]
    cols += ["sparsity/effective", "flops/best", "inference_speedup"]
    cols += [f"{f}/layer{n}" for n in layers for f in ("sparsity", "dead_units")]
    cols = [c for c in cols if c in summary]
    # A figure no job reported (e.g. inference_speedup) is a column of None: NaN, not an error.
    numbers = summary[cols].apply(pd.to_numeric, errors="coerce")
    keys = ROW_KEYS + [k for k in ("group_name", "allocation") if k in summary]
    g = numbers.groupby([summary[k] for k in keys])
    out = g.mean().add_suffix("_mean").join(g.std(ddof=1).fillna(0.0).add_suffix("_std"))
    out["n_seeds"] = g.size()
    if "test_acc_drop" in summary:
        out["test_acc_drop_n"] = g["test_acc_drop"].count()
    out["compression"] = compression_ratio(out["sparsity/global_mean"])
    return out.reset_index()
