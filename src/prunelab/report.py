"""``python -m prunelab.report SWEEP_DIR [--out DIR] [--x AXIS]``: a sweep's files → tables, plots.

Reads only files (each job's ``result.json``, ``metrics.csv``, ``error.txt``, ``.hydra/`` and
the sweep's ``multirun.yaml``), so it works on sweeps run anywhere, copied from a cluster,
or still running. Writes into ``--out`` (default: SWEEP_DIR/report):

- ``summary.csv``: one row per finished job, numbers copied verbatim from its result.json,
  plus ``test_acc_drop`` (vs the dense job of the same seed) and ``compression``;
- ``report.md``: accuracy vs sparsity per strategy (mean ± std over seeds), the dense
  baseline, the accuracy drop vs dense paired per seed, kept weights and dead units per
  layer (as ShrinkBench reports them), and the configs that failed (with their error) or are
  missing;
- the seed's eight plots, under its file names, with mean ± std bands over seeds, x = k or
  (``--x compression``) the compression ratio; the equal-cost plots and the drop plot.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from prunelab.errors import PrunelabError
from prunelab.results import ERROR_FILE, RESULT_FILE, atomic_path, read_result, write_text_atomic

SPLITS = ("train", "val", "test")
SUMMARY_COLUMNS = [
    "strategy",
    "sparsity",
    "seed",
    "schedule",
    "epochs",
    "finetune_epochs",
    *[f"{s}_{m}" for s in SPLITS for m in ("acc", "loss")],
    "wall_time_s",
]
PLOT_NAMES = {
    ("train", "weight"): "Train_Accuracy_Weight_Pruning.png",
    ("train", "neuron"): "Train_Accuracy_Neuron_Pruning.png",
    ("test", "weight"): "Test_Accuracy_Weight_Pruning.png",
    ("test", "neuron"): "Test_Accuracy_Neuron_Pruning.png",
    ("sparsity", "weight"): "Accuracy_vs_Sparsity_for_Weight_Pruning.png",
    ("sparsity", "neuron"): "Accuracy_vs_Sparsity_for_Neuron_Pruning.png",
    ("compare", "train"): "Training_Accuracy_Comparison_for_different_Pruning_Strategies.png",
    ("compare", "test"): "Testing_Accuracy_Comparison_for_different_Pruning_Strategies.png",
}
EQUAL_COST_PLOTS = [
    (
        "Accuracy_vs_Effective_Sparsity.png",
        "sparsity/effective",
        "effective sparsity (% of prunable weights masked or dead)",
    ),
    ("Accuracy_vs_FLOPs.png", "flops/best", "FLOPs per sample of the compact or sparse form"),
]
DROP_PLOT = "Accuracy_Drop_vs_Compression.png"
STRATEGY_LABEL = {"weight": "weight pruning", "neuron": "unit (neuron) pruning"}
X_AXES = ("sparsity", "compression")
COMPRESSION_LABEL = "compression ratio (×, log scale)"
LAYER_FIGURE = re.compile(r"sparsity/layer(\d+)")


class ReportError(PrunelabError):
    """The sweep dir holds nothing to report on."""


@dataclass
class Sweep:
    """What a sweep dir holds: finished jobs, failed jobs, and jobs never finished."""

    root: Path
    results: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ reading


def job_dirs(root: Path) -> list[Path]:
    """Every job folder under ``root``: one with a Hydra record, a result or an error."""
    marks = [
        *root.rglob(".hydra/overrides.yaml"),
        *root.rglob(RESULT_FILE),
        *root.rglob(ERROR_FILE),
    ]
    dirs = {m.parent.parent if m.parent.name == ".hydra" else m.parent for m in marks}
    return sorted(d for d in dirs if "report" not in d.relative_to(root).parts)


def job_overrides(job: Path) -> list[str]:
    path = job / ".hydra" / "overrides.yaml"
    return [str(x) for x in OmegaConf.load(path)] if path.is_file() else []


def expected_jobs(root: Path) -> list[list[str]] | None:
    """The jobs the sweep command asked for, rebuilt from ``multirun.yaml`` as Hydra does."""
    path = root / "multirun.yaml"
    if not path.is_file():
        return None
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        cfg = OmegaConf.load(path)
        params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
        args = [f"{k}={v}" for k, v in params.items()]
        args += list(OmegaConf.select(cfg, "hydra.overrides.task") or [])
        parsed = OverridesParser.create().parse_overrides(args)
        return BasicSweeper.split_arguments(parsed, None)[0]
    except Exception:  # an unfamiliar launcher/sweeper: report what is there, skip the check
        return None


def read_sweep(root: Path) -> Sweep:
    """Classify every job of the sweep at ``root``."""
    if not root.is_dir():
        raise ReportError(f"{root} is not a directory; pass the sweep dir (e.g. outputs/challenge)")
    sweep = Sweep(root)
    seen: list[set[str]] = []
    for job in job_dirs(root):
        seen.append(set(job_overrides(job)))
        result = read_result(job)
        if result is not None:
            sweep.results.append((job, result))
        elif (job / ERROR_FILE).is_file():
            first = (job / ERROR_FILE).read_text().splitlines()[:1]
            sweep.failed.append((job, first[0] if first else "unknown error"))
        else:
            sweep.missing.append(f"{job.relative_to(root)} (started, never finished)")
    for overrides in expected_jobs(root) or []:
        if set(overrides) not in seen:
            sweep.missing.append(f"{' '.join(overrides)} (never started)")
    if not sweep.results and not sweep.failed:
        raise ReportError(
            f"no result.json or error.txt under {root}; run a sweep first "
            "(python -m prunelab.train -m experiment=challenge)"
        )
    return sweep


def summary_table(sweep: Sweep) -> pd.DataFrame:
    """One row per finished job, numbers verbatim from result.json, plus every figure.

    Two derived columns follow: ``test_acc_drop`` (``dense_drop``, same unit as
    ``test_acc``) and ``compression`` (``compression_ratio`` of the job's actual sparsity).
    """
    rows = []
    for job, r in sweep.results:
        row = {c: r.get(c) for c in SUMMARY_COLUMNS}
        row["strategy"] = arm(r)
        row.update(r.get("figures", {}))
        inference = r.get("inference") or {}
        row["inference_speedup"] = inference.get("speedup")
        row["inference_batch_size"] = inference.get("batch_size")
        row["job"] = str(job.relative_to(sweep.root))
        rows.append(row)
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df.sort_values(["strategy", "sparsity", "seed"], kind="stable").reset_index(drop=True)
        df["test_acc_drop"] = dense_drop(df)
        df["compression"] = compression_ratio(actual_sparsity(df))
    return df


def arm(result: dict[str, Any]) -> str:
    """The name a job's rows and curves go under: its strategy, marked ``+reinit`` for the
    lottery's re-initialised control, which has the same strategy (mask) as the ticket but
    must not be averaged with it."""
    schedule = (result.get("config") or {}).get("schedule") or {}
    return f"{result['strategy']}+reinit" if schedule.get("reinit") else str(result["strategy"])


def compression_ratio(s: Any) -> Any:
    """1 / (1 − s): how many times fewer weights are kept, ShrinkBench's x axis.

    Spreads the high sparsities that matter (90 → 10×, 99 → 100×) on a log axis and, unlike k,
    compares strategies by what they really removed. ``inf`` at s = 1 (nothing kept); works
    on a float, an array or a Series (then returns an array).
    """
    import numpy as np

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
    """Per job, test_acc − test_acc of the dense (k = 0) job of the *same seed*; NaN if none.

    Pairing by seed cancels the seed-to-seed spread of the dense model, which a pruned model
    inherits: the std over seeds of these differences is what pruning does, not how lucky
    the seed's initialisation was. The same strategy's k = 0 job is preferred; any other k = 0
    job of the seed is the same dense model (k = 0 prunes nothing), so it serves too.
    """
    dense = summary[summary["sparsity"] == 0.0]
    own = dense.drop_duplicates(["strategy", "seed"]).set_index(["strategy", "seed"])
    keys = pd.MultiIndex.from_frame(summary[["strategy", "seed"]])
    base = pd.Series(own["test_acc"].reindex(keys).to_numpy(), index=summary.index)
    any_dense = dense.drop_duplicates("seed").set_index("seed")["test_acc"]
    base = base.fillna(summary["seed"].map(any_dense))
    return summary["test_acc"].astype(float) - base.astype(float)


def layer_numbers(columns: Any) -> list[int]:
    """1 .. N, N the deepest ``sparsity/layerN`` figure present (none: an empty list)."""
    found = [int(m.group(1)) for c in columns if (m := LAYER_FIGURE.fullmatch(str(c)))]
    return list(range(1, max(found) + 1)) if found else []


def aggregate(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1; 0 with one seed) and seed count per (strategy, sparsity).

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
    g = numbers.groupby([summary["strategy"], summary["sparsity"]])
    out = g.mean().add_suffix("_mean").join(g.std(ddof=1).fillna(0.0).add_suffix("_std"))
    out["n_seeds"] = g.size()
    if "test_acc_drop" in summary:
        out["test_acc_drop_n"] = g["test_acc_drop"].count()
    out["compression"] = compression_ratio(out["sparsity/global_mean"])
    return out.reset_index()


def epoch_curves(sweep: Sweep) -> pd.DataFrame:
    """Per-epoch train/test accuracy of every job, then the pruned model's final figures.

    The final evaluation is placed one epoch after training ends, so a curve shows the
    training, then what pruning did to it.
    """
    frames = []
    for job, r in sweep.results:
        path = job / "metrics.csv"
        if not path.is_file():
            continue
        m = pd.read_csv(path)
        keep = [c for c in ("train/acc", "test/acc") if c in m]
        per_epoch = m.dropna(subset=["epoch"]).groupby("epoch")[keep].first().reset_index()
        last = int(r["epochs"]) + int(r.get("ramp_epochs", 0)) + int(r["finetune_epochs"])
        final = pd.DataFrame(
            [{"epoch": last, "train/acc": r["train_acc"], "test/acc": r["test_acc"]}]
        )
        curve = pd.concat([per_epoch[per_epoch["epoch"] < last], final], ignore_index=True)
        curve["epoch"] = curve["epoch"].astype(int) + 1  # epochs counted from 1 on the plots
        curve[["strategy", "sparsity", "seed"]] = arm(r), r["sparsity"], r["seed"]
        frames.append(curve)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ------------------------------------------------------------------------------ plotting


def _sparsity_axis(ax: Any, right: float = 0.99) -> None:
    """x = k on a -log10(1-k) scale, so 90, 95, 97, 99 % are spread out and readable."""
    import numpy as np

    def fwd(k: Any) -> Any:
        return -np.log10(1.0 - np.clip(k, 0.0, 0.999))

    def inv(x: Any) -> Any:
        return 1.0 - 10.0 ** (-np.asarray(x))

    ax.set_xscale("function", functions=(fwd, inv))
    ticks = [0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]
    ax.set_xticks(ticks, [f"{round(100 * t)}" for t in ticks])
    ax.set_xlim(0, max(0.99, min(right, 0.998)) + 1e-9)
    ax.set_xlabel("sparsity k (% of weights or units removed per hidden layer)")


def _compression_axis(ax: Any, xs: Any, label: str = COMPRESSION_LABEL) -> None:
    """x = compression ratio on a log scale, ticks at 1, 2, 5, 10, … × up to the largest x."""
    import numpy as np
    from matplotlib.ticker import NullFormatter

    finite = np.asarray(xs, dtype=float)
    finite = finite[np.isfinite(finite)]
    right = max(2.0, float(finite.max())) if finite.size else 2.0
    ax.set_xscale("log")
    ticks = [m * 10**e for e in range(6) for m in (1, 2, 5) if m * 10**e <= right * 1.2]
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())  # log axes label minor ticks on short ranges
    ax.set_xlim(0.9, right * 1.2)
    ax.set_xlabel(label)


def _x_axis(ax: Any, x: str, agg: pd.DataFrame) -> None:
    """The x axis of the accuracy-vs-k plots: k, or the compression ratio (``--x``)."""
    if x == "compression":
        _compression_axis(ax, agg["compression"])
    else:
        _sparsity_axis(ax)


def _band(ax: Any, x: Any, mean: Any, std: Any, label: str, color: Any) -> None:
    ax.plot(x, 100 * mean, marker="o", ms=3, label=label, color=color)
    ax.fill_between(x, 100 * (mean - std), 100 * (mean + std), alpha=0.2, color=color, lw=0)


def _finish(fig: Any, ax: Any, path: Path, written: list[str], **labels: Any) -> None:
    """Label, grid, legend; write the PNG atomically; close the figure."""
    import matplotlib.pyplot as plt

    ax.set(**labels)
    ax.grid(alpha=0.3)
    if not ax.get_legend():
        ax.legend()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png")
    plt.close(fig)
    written.append(path.name)


def plot_all(
    summary: pd.DataFrame, curves: pd.DataFrame, out: Path, title: str, x: str = "sparsity"
) -> list[str]:
    """The seed's eight plots (those whose strategy ran), then the equal-cost and drop plots.

    ``x="compression"`` puts the accuracy-vs-k and effective-sparsity plots on the
    compression ratio (``compression_ratio`` of the actual sparsity), same file names.
    Returns the file names written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    agg = aggregate(summary)
    strategies = sorted(summary["strategy"].unique(), key=lambda s: (s != "weight", s))

    for split in ("train", "test"):
        for strategy in ("weight", "neuron"):
            c = curves[curves["strategy"] == strategy] if len(curves) else curves
            if c.empty:
                continue
            fig, ax = plt.subplots(figsize=(7, 4.5))
            ks = sorted(c["sparsity"].unique())
            cmap = plt.get_cmap("viridis")
            for i, k in enumerate(ks):
                g = c[c["sparsity"] == k].groupby("epoch")[f"{split}/acc"]
                color = cmap(i / max(1, len(ks) - 1))
                _band(
                    ax, g.mean().index, g.mean(), g.std(ddof=1).fillna(0), f"{100 * k:g} %", color
                )
            last = int(c["epoch"].max())
            ax.axvline(last - 0.5, color="grey", ls=":", lw=1)
            ax.annotate(
                "pruned →",
                (last - 0.5, 0.02),
                xycoords=("data", "axes fraction"),
                ha="right",
                fontsize=8,
                color="grey",
            )
            what = "training (running, per epoch)" if split == "train" else "test"
            ax.legend(title="sparsity k", fontsize=7, ncol=2)
            _finish(
                fig, ax, out / PLOT_NAMES[(split, strategy)], written,
                xlabel="epoch (last point: pruned model)",
                ylabel=f"{what} accuracy (%)",
                title=f"{split.capitalize()} accuracy, {STRATEGY_LABEL[strategy]} — {title}",
            )  # fmt: skip

    for strategy in ("weight", "neuron"):
        a = agg[agg["strategy"] == strategy].sort_values(x)
        if a.empty:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for split, color in (("train", "C0"), ("test", "C1")):
            _band(ax, a[x], a[f"{split}_acc_mean"], a[f"{split}_acc_std"], split, color)
        _x_axis(ax, x, agg)
        _finish(
            fig, ax, out / PLOT_NAMES[("sparsity", strategy)], written,
            ylabel="accuracy of the pruned model (%)",
            ylim=(0, 101),
            title=f"Accuracy vs {x}, {STRATEGY_LABEL[strategy]} — {title}",
        )  # fmt: skip

    for split in ("train", "test"):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, strategy in enumerate(strategies):
            a = agg[agg["strategy"] == strategy].sort_values(x)
            label = STRATEGY_LABEL.get(strategy, strategy)
            _band(ax, a[x], a[f"{split}_acc_mean"], a[f"{split}_acc_std"], label, f"C{i}")
        _x_axis(ax, x, agg)
        what = "training" if split == "train" else "test"
        _finish(
            fig, ax, out / PLOT_NAMES[("compare", split)], written,
            ylabel=f"{what} accuracy of the pruned model (%)",
            ylim=(0, 101),
            title=f"{what.capitalize()} accuracy: pruning strategies compared — {title}",
        )  # fmt: skip
    written += plot_equal_cost(agg, strategies, out, title, x)
    written += plot_drop(agg, strategies, out, title)
    return written


def plot_equal_cost(
    agg: pd.DataFrame, strategies: list[str], out: Path, title: str, x: str = "sparsity"
) -> list[str]:
    """Test accuracy against what was really removed, not against the nominal k.

    Unit pruning at k also kills the next layer's input columns, so at equal k it removes
    far more weights than weight pruning. These two plots compare the strategies at equal
    *effective* sparsity (``x="compression"``: its compression ratio) and at equal FLOPs per
    sample of the best inference form.
    """
    import matplotlib.pyplot as plt

    written: list[str] = []
    for name, col, xlabel in EQUAL_COST_PLOTS:
        if f"{col}_mean" not in agg:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, strategy in enumerate(strategies):
            a = agg[agg["strategy"] == strategy].sort_values(f"{col}_mean")
            label = STRATEGY_LABEL.get(strategy, strategy)
            xs = a[f"{col}_mean"]
            if col == "sparsity/effective" and x == "compression":
                xs = compression_ratio(xs)
            _band(ax, xs, a["test_acc_mean"], a["test_acc_std"], label, f"C{i}")
        if col == "sparsity/effective" and x == "compression":
            xlabel = "effective " + COMPRESSION_LABEL
            _compression_axis(ax, compression_ratio(agg[f"{col}_mean"]), xlabel)
        elif col == "sparsity/effective":
            _sparsity_axis(ax, right=float(agg[f"{col}_mean"].max()))
            ax.set_xlabel(xlabel)
        else:
            ax.set_xscale("log")
            ax.invert_xaxis()  # cheaper to the right, as sparsity grows on the other plots
        _finish(
            fig, ax, out / name, written,
            xlabel=xlabel, ylabel="test accuracy of the pruned model (%)", ylim=(0, 101),
            title=f"Test accuracy at equal cost — {title}",
        )  # fmt: skip
    return written


def plot_drop(agg: pd.DataFrame, strategies: list[str], out: Path, title: str) -> list[str]:
    """ShrinkBench's headline plot: test accuracy − dense (same seed) vs compression ratio.

    The band is the std over seeds of the *paired* differences (``dense_drop``), so it shows
    how much pruning varies, not how much the dense models do. Not drawn if no seed has a
    dense job.
    """
    import matplotlib.pyplot as plt

    if "test_acc_drop_mean" not in agg or agg["test_acc_drop_mean"].isna().all():
        return []
    written: list[str] = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, strategy in enumerate(strategies):
        a = agg[agg["strategy"] == strategy].dropna(subset=["test_acc_drop_mean"])
        a = a.sort_values("compression")
        if a.empty:
            continue
        label = STRATEGY_LABEL.get(strategy, strategy)
        _band(ax, a["compression"], a["test_acc_drop_mean"], a["test_acc_drop_std"], label, f"C{i}")
    ax.axhline(0.0, color="grey", ls=":", lw=1)
    _compression_axis(ax, agg["compression"])
    _finish(
        fig, ax, out / DROP_PLOT, written,
        ylabel="test accuracy − dense model of the same seed (points)",
        title=f"Accuracy drop vs compression — {title}",
    )  # fmt: skip
    return written


# ------------------------------------------------------------------------------ markdown


def _pm(mean: float, std: float, n: int, signed: bool = False) -> str:
    m = f"{100 * mean:+.2f}" if signed else f"{100 * mean:.2f}"
    return m if n < 2 else f"{m} ± {100 * std:.2f}"


def _times(c: float) -> str:
    """A compression ratio cell: ``10.0``; ``∞`` when nothing is kept, ``—`` when unknown."""
    return "—" if math.isnan(c) else "∞" if math.isinf(c) else f"{c:.1f}"


def _count(v: float) -> str:
    """A mean count (dead units): ``12`` if whole, ``12.3`` if seeds differ, ``—`` if unknown."""
    return "—" if math.isnan(v) else f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def _drop_cell(r: pd.Series) -> str:
    """Mean ± std over the seeds paired with a dense job; says so if that is not all seeds."""
    n, n_seeds = int(r.get("test_acc_drop_n", 0)), int(r["n_seeds"])
    if n == 0:
        return "—"
    cell = _pm(r["test_acc_drop_mean"], r["test_acc_drop_std"], n, signed=True)
    return cell if n == n_seeds else f"{cell} ({n} of {n_seeds} seeds)"


def _k_by_strategy(
    agg: pd.DataFrame, strategies: list[str], cell: Callable[[pd.Series], str]
) -> list[str]:
    """A markdown table, one row per k, one column per strategy, ``cell`` of each agg row."""
    lines = ["| k % | " + " | ".join(STRATEGY_LABEL.get(s, s) for s in strategies) + " |"]
    lines += ["|---:|" + "---:|" * len(strategies)]
    for k in sorted(agg["sparsity"].unique()):
        cells = []
        for s in strategies:
            row = agg[(agg["strategy"] == s) & (agg["sparsity"] == k)]
            cells.append(cell(row.iloc[0]) if len(row) else "—")
        lines.append(f"| {100 * k:g} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def per_layer_table(agg: pd.DataFrame, strategies: list[str]) -> list[str]:
    """Per (strategy, k): % of each layer's weights kept and its dead output units (means).

    Where a global k lands differs by layer (unit pruning spares the output layer, and a dead
    unit kills the next layer's inputs): this is the table that shows it. ``—`` for a figure
    a result lacks (``dead_units`` came later than the sparsities).
    """
    layers = layer_numbers(c.removesuffix("_mean") for c in agg.columns)
    if not layers:
        return []
    head = [f"L{n} kept % | L{n} dead units" for n in layers]
    lines = ["## Per layer", ""]
    lines += [
        "Weights kept per layer (100 · (1 − masked fraction)) and output units that no longer "
        "reach the logits, mean over seeds. L1 is the first layer.",
        "",
    ]
    lines += ["| strategy | k % | compression × | " + " | ".join(head) + " |"]
    lines += ["|---|---:|---:|" + "---:|---:|" * len(layers)]
    for s in strategies:
        for _, r in agg[agg["strategy"] == s].iterrows():
            cells = [STRATEGY_LABEL.get(s, s), f"{100 * r['sparsity']:g}", _times(r["compression"])]
            for n in layers:
                masked = r.get(f"sparsity/layer{n}_mean", float("nan"))
                cells.append("—" if math.isnan(masked) else f"{100 * (1 - masked):.1f}")
                cells.append(_count(r.get(f"dead_units/layer{n}_mean", float("nan"))))
            lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def markdown(sweep: Sweep, summary: pd.DataFrame, plots: list[str], out: Path) -> str:
    """The human-readable report: tables first, then what failed, then the plots."""
    lines = [f"# Pruning report: `{sweep.root}`", ""]
    n_jobs = len(sweep.results) + len(sweep.failed) + len(sweep.missing)
    lines += [
        f"{len(sweep.results)} of {n_jobs} jobs finished, {len(sweep.failed)} failed, "
        f"{len(sweep.missing)} missing.",
        "",
    ]
    if not summary.empty:
        agg = aggregate(summary)
        first = summary.iloc[0]
        lines += [
            f"Schedule `{first['schedule']}`, {first['epochs']} dense epochs, "
            f"{first['finetune_epochs']} fine-tune epochs. Accuracies in %, mean ± std over "
            "seeds; train accuracy is measured on a fixed training subset after pruning. "
            "Inference speedup: the pruned model exported by `prunelab.sparse.export` "
            "(compaction, CSR where it pays) vs the dense model, measured at the end of each "
            "job at the batch size in `summary.csv` (mean over seeds). Compression ×: "
            "1 / (1 − s), s the fraction of prunable weights really masked (mean over seeds).",
            "",
        ]
        dense = summary[summary["sparsity"] == 0.0].drop_duplicates("seed")
        if not dense.empty:
            n = len(dense)

            def stat(col: str) -> str:
                return _pm(dense[col].mean(), dense[col].std(ddof=1), n)

            lines += [
                f"**Dense baseline** (k = 0, {n} seed{'s' if n > 1 else ''}): test "
                f"{stat('test_acc')} %, train {stat('train_acc')} %.",
                "",
            ]
        strategies = sorted(agg["strategy"].unique(), key=lambda s: (s != "weight", s))
        lines += ["## Test accuracy vs sparsity", ""]
        lines += _k_by_strategy(
            agg,
            strategies,
            lambda r: _pm(r["test_acc_mean"], r["test_acc_std"], int(r["n_seeds"])),
        )
        lines += ["## Accuracy drop vs dense (points)", ""]
        lines += [
            "Test accuracy minus that of the dense (k = 0) model of the same seed, in points, "
            "then mean ± std over seeds: the pairing removes the dense models' seed-to-seed "
            "spread. — where no seed has a dense job.",
            "",
        ]
        lines += _k_by_strategy(agg, strategies, _drop_cell)
        for s in strategies:
            a = agg[agg["strategy"] == s]
            lines += [f"## {STRATEGY_LABEL.get(s, s).capitalize()}", ""]
            lines += [
                "| k % | compression × | test | train | val | effective sparsity % "
                "| inference speedup | seeds |"
            ]
            lines += ["|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for _, r in a.iterrows():
                n = int(r["n_seeds"])
                eff = r.get("sparsity/effective_mean", float("nan"))
                accs = [
                    _pm(r[f"{s}_acc_mean"], r[f"{s}_acc_std"], n) for s in ("test", "train", "val")
                ]
                eff_cell = "—" if math.isnan(eff) else f"{100 * eff:.1f}"
                speed = r.get("inference_speedup_mean", float("nan"))
                speed_cell = "—" if math.isnan(speed) else f"{speed:.1f}×"
                cells = " | ".join([_times(r["compression"]), *accs, eff_cell, speed_cell, str(n)])
                lines.append(f"| {100 * r['sparsity']:g} | {cells} |")
            lines.append("")
        lines += per_layer_table(agg, strategies)
    if sweep.failed:
        lines += ["## Failed jobs", ""]
        for job, err in sweep.failed:
            lines.append(f"- `{job.relative_to(sweep.root)}`: {err} (see its `{ERROR_FILE}`)")
        lines.append("")
    if sweep.missing:
        lines += ["## Missing jobs", "", "Re-run the same sweep command to finish them.", ""]
        lines += [f"- `{m}`" for m in sweep.missing]
        lines.append("")
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{p[:-4].replace('_', ' ')}]({p})" for p in plots]
        lines.append("")
    return "\n".join(lines)


def make_report(
    root: Path, out: Path | None = None, title: str | None = None, x: str = "sparsity"
) -> Path:
    """Write summary.csv, report.md and the plots for the sweep at ``root``; return ``out``.

    ``x``: the plots' x axis, ``sparsity`` (k) or ``compression`` (ratio, log scale).
    """
    if x not in X_AXES:
        raise ReportError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    root = Path(root)
    sweep = read_sweep(root)
    out = Path(out) if out else root / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary = summary_table(sweep)
    write_text_atomic(out / "summary.csv", summary.to_csv(index=False))
    curves = epoch_curves(sweep)
    plots = plot_all(summary, curves, out, title or root.name, x) if len(summary) else []
    write_text_atomic(out / "report.md", markdown(sweep, summary, plots, out))
    return out


def main(argv: list[str] | None = None, write: Callable[[str], Any] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prunelab.report",
        description="Turn a sweep's result.json and metrics.csv files into summary.csv, "
        "report.md and the eight plots.",
    )
    parser.add_argument("sweep_dir", type=Path, help="e.g. outputs/challenge")
    parser.add_argument("--out", type=Path, default=None, help="default: SWEEP_DIR/report")
    parser.add_argument("--title", default=None, help="plot title suffix (default: dir name)")
    parser.add_argument(
        "--x",
        choices=X_AXES,
        default="sparsity",
        help="x axis of the accuracy plots: k (default) or the compression ratio 1/(1-s) of "
        "the actual global sparsity s, log scale",
    )
    args = parser.parse_args(argv)
    try:
        out = make_report(args.sweep_dir, args.out, args.title, args.x)
    except PrunelabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    write(f"report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
