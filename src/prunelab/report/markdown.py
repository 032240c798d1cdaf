"""The report as markdown: what was run (the settings every job shares, and those the sweep
varied), then the tables, what failed or is missing, and the plots.

Rows are (strategy, group, k), means ± std over seeds. A sweep of one group gets one table
with a column per strategy; a sweep that varied other settings gets a table with a column
per group (the fine-tune-length table of ``experiment=finetune_length``, for instance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from prunelab.identity import show
from prunelab.report.names import sentence_start, strategy_label
from prunelab.report.read import (
    Sweep,
    comparable,
    constant_settings,
    settings_of,
    sort_key,
    varying_keys,
)
from prunelab.report.stats import aggregate, layer_numbers
from prunelab.results import ERROR_FILE
from prunelab.scans import is_scan_result

# The shared settings a reader needs first; the rest are listed in full below them.
HEADLINE_KEYS = (
    "data.name", "model.sizes", "schedule.name", "schedule.epochs", "schedule.ramp_epochs",
    "schedule.finetune_epochs", "optim.name", "optim.lr", "optim.lr_schedule",
    "optim.average_fraction", "data.batch_size", "data.limit", "trainer.accelerator",
    "trainer.precision",
)  # fmt: skip


def pm(mean: float, std: float, n: int, signed: bool = False) -> str:
    m = f"{100 * mean:+.2f}" if signed else f"{100 * mean:.2f}"
    return m if n < 2 else f"{m} ± {100 * std:.2f}"


def times(c: float) -> str:
    """A compression ratio cell: ``10.0``; ``∞`` when nothing is kept, ``—`` when unknown."""
    return "—" if math.isnan(c) else "∞" if math.isinf(c) else f"{c:.1f}"


def count(v: float) -> str:
    """A mean count (dead units): ``12`` if whole, ``12.3`` if seeds differ, ``—`` if unknown."""
    return "—" if math.isnan(v) else f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def accuracy_cell(r: pd.Series) -> str:
    return pm(r["test_acc_mean"], r["test_acc_std"], int(r["n_seeds"]))


def drop_cell(r: pd.Series) -> str:
    """Mean ± std over the seeds paired with a dense job; says so if that is not all seeds."""
    n, n_seeds = int(r.get("test_acc_drop_n", 0)), int(r["n_seeds"])
    if n == 0:
        return "—"
    cell = pm(r["test_acc_drop_mean"], r["test_acc_drop_std"], n, signed=True)
    return cell if n == n_seeds else f"{cell} ({n} of {n_seeds} seeds)"


def ordered_strategies(agg: pd.DataFrame) -> list[str]:
    return sorted(agg["strategy"].unique(), key=lambda s: (s != "weight", s))


def ordered_groups(agg: pd.DataFrame) -> list[str]:
    return [str(g) for g in agg.sort_values("group_index")["group"].unique()]


def group_names(table: pd.DataFrame) -> dict[str, str]:
    """Each group label → the name the report shows for it (``read.group_name``)."""
    names = table["group_name"] if "group_name" in table else table["group"]
    return {str(g): str(n) for g, n in zip(table["group"], names, strict=True)}


def table(
    agg: pd.DataFrame,
    rows: list[tuple[str, Any]],
    columns: list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame]]],
    cell: Callable[[pd.Series], str],
    row_head: list[str],
) -> list[str]:
    """A markdown table: ``rows`` are (first cells, selector), ``columns`` (head, selector);
    each cell is ``cell`` of the one aggregate row both select, ``—`` if none."""
    lines = ["| " + " | ".join([*row_head, *(c for c, _ in columns)]) + " |"]
    lines.append("|" + "---:|" * (len(row_head) + len(columns)))
    for first, pick_row in rows:
        cells = []
        for _, pick_column in columns:
            hit = pick_column(pick_row(agg))
            cells.append(cell(hit.iloc[0]) if len(hit) else "—")
        lines.append("| " + " | ".join([*first, *cells]) + " |")
    return [*lines, ""]


def by_k_table(agg: pd.DataFrame, cell: Callable[[pd.Series], str]) -> list[str]:
    """One row per k; one column per strategy (one group) or per (strategy, group)."""
    strategies, groups, names = ordered_strategies(agg), ordered_groups(agg), group_names(agg)
    rows = [([f"{100 * k:g}"], lambda a, k=k: a[a["sparsity"] == k])
            for k in sorted(agg["sparsity"].unique())]  # fmt: skip
    columns = [
        (
            strategy_label(s) + (f" · {names[g]}" if g else ""),
            lambda a, s=s, g=g: a[(a["strategy"] == s) & (a["group"] == g)],
        )
        for s in strategies
        for g in groups
        if len(agg[(agg["strategy"] == s) & (agg["group"] == g)])
    ]
    return table(agg, rows, columns, cell, ["k %"])


def by_group_table(agg: pd.DataFrame, cell: Callable[[pd.Series], str]) -> list[str]:
    """One row per (strategy, k); one column per group."""
    rows = [
        ([strategy_label(s), f"{100 * k:g}"],
         lambda a, s=s, k=k: a[(a["strategy"] == s) & (a["sparsity"] == k)])
        for s in ordered_strategies(agg)
        for k in sorted(agg[agg["strategy"] == s]["sparsity"].unique())
    ]  # fmt: skip
    names = group_names(agg)
    columns = [(names[g], lambda a, g=g: a[a["group"] == g]) for g in ordered_groups(agg)]
    return table(agg, rows, columns, cell, ["strategy", "k %"])


def values_taken(results: list[dict[str, Any]], key: str) -> str:
    """The distinct values ``key`` takes in ``results``, sorted, as typed: ``0.001, 0.002``.
    Compared by ``read.comparable``, as a value can be a list (``model.sizes``)."""
    settings = [settings_of(r) for r in results]
    seen = {comparable(s[key]): s[key] for s in settings if key in s}
    return ", ".join(show(v) for v in sorted(seen.values(), key=sort_key))


def settings_section(results: list[dict[str, Any]]) -> list[str]:
    """What every job shares, and what the sweep varied (each combination a group)."""
    shared = constant_settings(results)
    varying = varying_keys(results)
    lines = ["## Settings", ""]
    head = [f"`{k}={show(shared[k])}`" for k in HEADLINE_KEYS if k in shared]
    if head:
        lines += ["Every job: " + ", ".join(head) + ".", ""]
    if varying:
        values = {key: values_taken(results, key) for key in varying}
        lines += [
            "Varied between the jobs, so each combination is reported as a group of its own "
            "(never averaged with another): "
            + "; ".join(f"`{k}` ∈ {{{v}}}" for k, v in values.items())
            + ".",
            "",
        ]
    lines += numerics_lines(results)
    lines += ["<details><summary>Every setting the jobs share</summary>", "", "```"]
    lines += [f"{k}={show(v)}" for k, v in sorted(shared.items())]
    lines += ["```", "", "</details>", ""]
    return lines


NUMERICS = ("device_name", "threads", "torch_version", "dtype", "float32_matmul_precision")


def numerics_lines(results: list[dict[str, Any]]) -> list[str]:
    """Where the numbers were computed (``result.json``'s ``numerics``), and a warning when
    the jobs differ in it: the same config can give other bits on another device, thread
    count or torch version, so such a sweep's means mix numeric settings."""
    seen: dict[str, set[str]] = {key: set() for key in NUMERICS}
    for r in results:
        env = r.get("numerics") or {}
        for key in NUMERICS:
            if key in env:
                seen[key].add(show(env[key]))
    if not any(seen.values()):
        return []
    differ = {k: v for k, v in seen.items() if len(v) > 1}
    text = "; ".join(f"{k} ∈ {{{', '.join(sorted(v))}}}" for k, v in differ.items())
    if differ:
        return [f"**The jobs ran in different numeric environments** ({text}): their bits, and "
                "possibly a claim, can differ between them.", ""]  # fmt: skip
    same = ", ".join(f"{k} {next(iter(v))}" for k, v in seen.items() if v)
    return [f"Computed with: {same}.", ""]


def dense_baseline(summary: pd.DataFrame) -> list[str]:
    """The dense (k = 0) models' accuracy, per group: one line, or a table per group."""
    dense = summary[summary["sparsity"] == 0.0].drop_duplicates(["group", "seed"])
    if dense.empty:
        return []
    lines, names = [], group_names(dense)
    for group, d in dense.groupby("group", sort=False):
        n = len(d)

        def stat(col: str, d: pd.DataFrame = d, n: int = n) -> str:
            return pm(d[col].mean(), d[col].std(ddof=1), n)

        where = f", {names[str(group)]}" if group else ""
        lines.append(
            f"**Dense baseline** (k = 0{where}, {n} seed{'s' if n > 1 else ''}): test "
            f"{stat('test_acc')} %, train {stat('train_acc')} %."
        )
        lines.append("")
    return lines


def arm_tables(agg: pd.DataFrame) -> list[str]:
    """Per (strategy, group): compression, test/train/val, effective sparsity, speedup."""
    lines, names = [], group_names(agg)
    for s in ordered_strategies(agg):
        for g in ordered_groups(agg):
            a = agg[(agg["strategy"] == s) & (agg["group"] == g)].sort_values("sparsity")
            if a.empty:
                continue
            lines += [f"## {sentence_start(strategy_label(s))}" + (f" · {names[g]}" if g else ""),
                      ""]  # fmt: skip
            lines += [
                "| k % | compression × | test | train | val | effective sparsity % "
                "| inference speedup | seeds |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for _, r in a.iterrows():
                n = int(r["n_seeds"])
                eff = r.get("sparsity/effective_mean", float("nan"))
                accs = [
                    pm(r[f"{x}_acc_mean"], r[f"{x}_acc_std"], n) for x in ("test", "train", "val")
                ]
                eff_cell = "—" if math.isnan(eff) else f"{100 * eff:.1f}"
                speed = r.get("inference_speedup_mean", float("nan"))
                speed_cell = "—" if math.isnan(speed) else f"{speed:.1f}×"
                cells = " | ".join([times(r["compression"]), *accs, eff_cell, speed_cell, str(n)])
                lines.append(f"| {100 * r['sparsity']:g} | {cells} |")
            lines.append("")
    return lines


def per_layer_table(agg: pd.DataFrame) -> list[str]:
    """Per (strategy, group, k): % of each layer's weights kept and its dead output units.

    Where a global k lands differs by layer (unit pruning spares the output layer, and a dead
    unit kills the next layer's inputs): this is the table that shows it. ``—`` for a figure
    a result lacks.
    """
    layers = layer_numbers(c.removesuffix("_mean") for c in agg.columns)
    if not layers:
        return []
    grouped = any(agg["group"] != "")
    head = [f"L{n} kept % | L{n} dead units" for n in layers]
    lines = ["## Per layer", ""]
    lines += [
        "Weights kept per layer (100 · (1 − masked fraction)) and output units that no longer "
        "reach the logits, mean over seeds. L1 is the first layer.",
        "",
    ]
    first = "| strategy | " + ("group | " if grouped else "") + "k % | compression × | "
    lines += [first + " | ".join(head) + " |"]
    lines += ["|---|" + ("---|" if grouped else "") + "---:|---:|" + "---:|---:|" * len(layers)]
    for s in ordered_strategies(agg):
        for _, r in agg[agg["strategy"] == s].sort_values(["group_index", "sparsity"]).iterrows():
            cells = [strategy_label(s), *([r.get("group_name", r["group"])] if grouped else [])]
            cells += [f"{100 * r['sparsity']:g}", times(r["compression"])]
            for n in layers:
                masked = r.get(f"sparsity/layer{n}_mean", float("nan"))
                cells.append("—" if math.isnan(masked) else f"{100 * (1 - masked):.1f}")
                cells.append(count(r.get(f"dead_units/layer{n}_mean", float("nan"))))
            lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def groups_section(summary: pd.DataFrame, keys: list[str]) -> list[str]:
    """Each group (``keys``: the settings varied) with the name the tables and plots give it,
    its strategies, jobs and settings; nothing for a sweep of one group."""
    groups = summary.sort_values("group_index").drop_duplicates("group")
    if len(groups) < 2:
        return []
    lines = [
        "## Groups",
        "",
        "Each group is one combination of the settings that differ between the jobs; the "
        "tables and plots name it as below and never average two groups together.",
        "",
    ]
    for _, g in groups.iterrows():
        jobs = summary[summary["group"] == g["group"]]
        strategies = ", ".join(strategy_label(s) for s in ordered_strategies(jobs))
        settings = ", ".join(f"`{k}={g[k]}`" for k in keys if k in g)
        lines.append(f"- **{g['group_name']}** ({len(jobs)} job{'s' * (len(jobs) > 1)}: "
                     f"{strategies}): {settings}")  # fmt: skip
    return [*lines, ""]


def drop_section(
    summary: pd.DataFrame, agg: pd.DataFrame, grouped: bool, layout: Callable[..., list[str]]
) -> list[str]:
    """The accuracy drop vs the dense job of the same seed; where no job has k = 0, a plain
    sentence instead of a table of dashes."""
    lines = ["## Accuracy drop vs dense (points)", ""]
    if not (summary["sparsity"] == 0.0).any():
        return [
            *lines,
            "No dense (k = 0) job here, so there is no dense model to compare with and no "
            "drop to report. To get this table and its plot, run the same settings with "
            "`sparsity=0` for each seed (and group).",
            "",
        ]
    lines += [
        "Test accuracy minus that of the dense (k = 0) model of the same seed"
        + (" and group" if grouped else "")
        + ", in points, then mean ± std over seeds: the pairing removes the dense models' "
        "seed-to-seed spread. A dash (—) marks a cell with no dense job of the same seed"
        + (" and group" if grouped else "")
        + " to compare with.",
        "",
    ]
    return lines + layout(agg, drop_cell)


def markdown(
    sweep: Sweep, summary: pd.DataFrame, plots: list[str], extra: Sequence[str] = ()
) -> str:
    """The human-readable report: settings and tables first (``extra``: sections of their
    own, such as IMP's levels), then what failed, the plots."""
    lines = [f"# Pruning report: `{sweep.root}`", ""]
    n_jobs = len(sweep.results) + len(sweep.failed) + len(sweep.missing)
    lines += [
        f"{len(sweep.results)} of {n_jobs} jobs finished, {len(sweep.failed)} failed, "
        f"{len(sweep.missing)} missing.",
        "",
    ]
    if not summary.empty:
        agg = aggregate(summary)
        grouped = any(agg["group"] != "")
        results = [r for _, r in sweep.results if not is_scan_result(r)]
        lines += settings_section(results)
        lines += groups_section(summary, varying_keys(results))
        lines += ["## Test accuracy vs sparsity", ""]
        lines += [
            "Accuracies in %, mean ± std over seeds; train accuracy is measured on a fixed "
            "training subset after pruning. Inference speedup: the pruned model exported by "
            "`prunelab.sparse.export` (compaction, CSR where it measures faster) vs the dense "
            "model, measured at the end of each job at the batch size in `summary.csv` (mean "
            "over seeds). Compression ×: 1 / (1 − s), s the fraction of prunable weights "
            "really masked (mean over seeds).",
            "",
        ]
        lines += dense_baseline(summary)
        layout = by_group_table if grouped else by_k_table
        lines += layout(agg, accuracy_cell)
        lines += drop_section(summary, agg, grouped, layout)
        lines += arm_tables(agg)
        lines += per_layer_table(agg)
    lines += list(extra)
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
