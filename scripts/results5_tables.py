"""The tables of docs/RESULTS.md's fifth round, from the sweeps of ``scripts/run_results5.sh``
on LeNet-5-Caffe (MNIST): gradual magnitude pruning to Han et al.'s per-layer sparsities
against the dense reference, weights against channels at equal effective sparsity, and sparse
training from the start (RigL, the static random ERK mask, SNIP) at the published densities.

Reads every ``result.json`` under ``<root>/<arm>`` (numbers verbatim from the runs) and prints
markdown; mean ± std (ddof=1) over seeds in %, paired differences with a two-sided paired
t-test (``results3_tables.paired``).

    python scripts/results5_tables.py outputs/round5 > outputs/round5/tables.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results3_tables import header, load, paired, pm, row
from results_tables import interp_on_log_scale

HAN_K = 0.916  # experiment=lenet5_han's sparsity: Han et al.'s per-layer budgets, weighted
LAYERS = ("conv1", "conv2", "fc3", "fc4 (output)")
# Han et al. (2015), Table 1 and 4: LeNet-5 test error % dense and pruned, weights kept per layer
HAN_PAPER = {"dense": 0.80, "pruned": 0.77, "kept": (66, 12, 8, 19)}
SPARSE_K = 0.98  # the sparsity of the published comparison: 2 % of the weights kept
# test error % at 2 % density (TimDettmers/sparse_learning's comparison table)
PUBLISHED = {
    "SNIP (Lee et al. 2019)": "0.8",
    "sparse momentum (Dettmers & Zettlemoyer 2019)": "0.76 ± 0.02",
}
CHANNEL_KS = (0.5, 0.7, 0.8, 0.9, 0.95)


def per_seed(errors: pd.Series) -> str:
    """Each seed's test error %, in seed order (what a mean ± std of three hides)."""
    return ", ".join(f"{100 * e:.2f}" for e in errors.sort_index())


def han_section(df: pd.DataFrame) -> list[str]:
    """Test error of the dense reference and of gradual magnitude pruning to Han et al.'s
    per-layer budgets, with the density each layer reached, beside the paper's."""
    error = (1 - df.set_index(["sparsity", "seed"])["test_acc"]).sort_index()
    pruned = df[df["sparsity"] == HAN_K]
    lines = ["### LeNet-5-Caffe, Han et al.'s budgets: test error %", ""]
    lines += [
        "| model | weights kept % | test error % | per seed 0, 1, 2 | Han et al. 2015 |",
        "|---|---|---|---|---|",
    ]
    for label, k, kept, paper in (
        ("dense, 20 epochs", 0.0, "100", HAN_PAPER["dense"]),
        ("gradual magnitude, 10 + 5 + 5 epochs", HAN_K, pm(1 - pruned["sparsity_global"]),
         HAN_PAPER["pruned"]),
    ):  # fmt: skip
        lines.append(row(label, [kept, pm(error[k]), per_seed(error[k]), f"{paper:.2f}"]))
    lines += ["", "| layer | " + " | ".join(LAYERS) + " |", "|---" * (len(LAYERS) + 1) + "|"]
    cells = [pm(1 - pruned[f"sparsity_layer{i + 1}"]) for i in range(len(LAYERS))]
    lines.append(row("weights kept % (prunelab)", cells))
    lines.append(row("weights kept % (Han et al.)", (str(k) for k in HAN_PAPER["kept"])))
    lines += ["", f"Paired by seed, pruned − dense: {paired(error[HAN_K] - error[0.0])} points"]
    return [*lines, ""]


def weight_at(weights: pd.DataFrame, effective: float) -> float:
    """One seed's weight-pruning test accuracy at this effective sparsity, interpolated on its
    curve on the first round's scale (``results_tables.interp_on_log_scale``); NaN beyond the
    curve's last point."""
    curve = weights.sort_values("sparsity_effective")
    x, y = curve["sparsity_effective"].to_numpy(), curve["test_acc"].to_numpy()
    return interp_on_log_scale(effective, x, y) if effective <= x[-1] else float("nan")


def channels_section(df: pd.DataFrame) -> list[str]:
    """Channel pruning at k against weight pruning at the same effective sparsity, seed by
    seed (each seed's weight curve interpolated), with the compact net's FLOPs."""
    lines = ["### Weights or channels at equal cost (one-shot + 2 epochs of fine-tuning)", ""]
    lines += [
        "| channel k % | effective sparsity % | FLOPs (compact / dense) | channel test % "
        "| weight test % at that effective sparsity | weight − channel (points) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    weights, channels = df[df["strategy"] == "weight"], df[df["strategy"] == "neuron"]
    for k in CHANNEL_KS:
        unit = channels[channels["sparsity"] == k].set_index("seed")
        if unit.empty:
            continue
        at = pd.Series(
            {
                seed: weight_at(weights[weights["seed"] == seed], r.sparsity_effective)
                for seed, r in unit.iterrows()
            }
        )
        flops = (unit["flops_compact"] / unit["flops_dense"]).mean()
        diff = (at - unit["test_acc"]).dropna()
        lines.append(
            row(
                f"{100 * k:g}",
                [
                    pm(unit["sparsity_effective"]),
                    f"{flops:.3f}",
                    pm(unit["test_acc"]),
                    pm(at.dropna()),
                    paired(diff) if len(diff) > 1 else "–",
                ],
            )
        )
    lines += ["", "### Test accuracy % by k (one-shot + 2 epochs of fine-tuning)", ""]
    ks = sorted(df["sparsity"].unique())
    lines += header("strategy", ks)
    for strategy, label in (("weight", "weights (magnitude)"), ("neuron", "channels (L2 norm)")):
        part = df[df["strategy"] == strategy]
        lines.append(row(label, (pm(part[part["sparsity"] == k]["test_acc"]) for k in ks)))
    return [*lines, ""]


def dst_section(dst: pd.DataFrame, snip: pd.DataFrame, long: pd.DataFrame) -> list[str]:
    """Test error at 2 % density of each method trained sparse from the start (and of RigL
    trained 40 epochs, ``long``), beside the published figures, and the paired differences
    that say which start or which moves pay."""
    lines = ["### Sparse from the start: test error % at 2 % density", ""]
    lines += ["| method | test error % | per seed 0, 1, 2 |", "|---|---|---|"]
    lines += [row(label, [cell, ""]) for label, cell in PUBLISHED.items()]
    arms = [
        ("rigl", "RigL (prunelab, 20 epochs)", dst[dst["schedule"] == "rigl"]),
        ("init", "static random ERK mask (prunelab, 20 epochs)", dst[dst["schedule"] == "init"]),
        ("snip", "SNIP (prunelab, 20 epochs)", snip),
        ("rigl40", "RigL (prunelab, 40 epochs)", long),
    ]
    errors = {}
    for key, label, part in arms:
        if part.empty:
            continue
        err = 1 - part[part["sparsity"] == SPARSE_K].set_index("seed")["test_acc"]
        errors[key] = err.sort_index()
        lines.append(row(label, [pm(errors[key]), per_seed(errors[key])]))
    lines += ["", "Paired by seed (points of test error):", ""]
    for a, b in (("rigl", "init"), ("snip", "init"), ("rigl", "snip"), ("rigl40", "rigl")):
        if a in errors and b in errors:
            lines.append(f"- {a} − {b}: {paired(errors[a] - errors[b])}")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the OUT of scripts/run_results5.sh")
    args = parser.parse_args(argv)
    arms = {
        name: args.root / name
        for name in ("lenet5_han", "lenet5_channels", "lenet5_dst", "lenet5_snip", "rigl_40ep")
    }
    frames = {name: load(path) if path.is_dir() else pd.DataFrame() for name, path in arms.items()}
    lines: list[str] = []
    if not frames["lenet5_han"].empty:
        lines += han_section(frames["lenet5_han"])
    if not frames["lenet5_channels"].empty:
        lines += channels_section(frames["lenet5_channels"])
    if not frames["lenet5_dst"].empty:
        lines += dst_section(frames["lenet5_dst"], frames["lenet5_snip"], frames["rigl_40ep"])
    print("\n".join(lines) if lines else f"no finished runs under {args.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
