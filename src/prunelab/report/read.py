"""Reading a sweep's files: which jobs finished, failed or never ran; one summary row per
finished job; the per-epoch curves; and which settings the sweep varied.

A "sweep" here is any folder of finished runs: one Hydra sweep, single runs side by side,
or a folder of sweeps (each one's ``multirun.yaml`` is checked for jobs never started).

Only files are read (each job's ``result.json``, ``metrics.csv``, ``error.txt``, ``.hydra/``
and the sweep's ``multirun.yaml``), so a sweep run anywhere, copied from a cluster or still
running can be reported. Every setting that differs between the finished jobs, other than
the report's own axes (strategy, k, seed), becomes the job's *group*: the rows, lines and
means of the report never mix two groups, so two experiments are never averaged as one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from prunelab.config.tree import method_name
from prunelab.errors import PrunelabError
from prunelab.identity import identity_settings, show
from prunelab.levels import is_level_dir
from prunelab.report.stats import actual_sparsity, compression_ratio, dense_drop
from prunelab.results import ERROR_FILE, METRICS_FILE, RESULT_FILE, read_result
from prunelab.scans import is_scan_dir

SPLITS = ("train", "val", "test")
# The report's own axes: strategy and k are its rows and columns, seeds are averaged over.
AXES = ("strategy.name", "sparsity", "seed")
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
# Longest group label shown as is in a legend or a column head (else ``group N``).
GROUP_NAME_MAX = 60


class ReportError(PrunelabError):
    """The sweep dir holds nothing to report on."""


@dataclass
class Sweep:
    """What a sweep dir holds: finished jobs, failed jobs, and jobs never finished."""

    root: Path
    results: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def job_dirs(root: Path) -> list[Path]:
    """Every job folder under ``root``: one with a Hydra record, a result or an error; not
    the report's own folder, nor hidden ones (a stack's ``.stacked``, a superseded run's
    ``.superseded-<identity>`` kept inside a job folder), nor the runs of a workflow (IMP's
    levels, a scan's dense run), which their job reports."""
    marks = [
        *root.rglob(".hydra/overrides.yaml"),
        *root.rglob(RESULT_FILE),
        *root.rglob(ERROR_FILE),
    ]
    dirs = {m.parent.parent if m.parent.name == ".hydra" else m.parent for m in marks}
    return sorted(
        d
        for d in dirs
        if not any(p == "report" or p.startswith(".") for p in d.relative_to(root).parts)
        and not is_level_dir(d)
        and not is_scan_dir(d)
    )


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


def sweep_dirs(root: Path) -> list[Path]:
    """Every sweep folder at or under ``root`` (one holding Hydra's ``multirun.yaml``): a
    folder of sweeps is checked sweep by sweep."""
    found = [p.parent for p in root.rglob("multirun.yaml")]
    return sorted(
        d
        for d in found
        if not any(p == "report" or p.startswith(".") for p in d.relative_to(root).parts)
    )


def never_started(root: Path, seen: dict[Path, set[str]]) -> list[str]:
    """The jobs each sweep under ``root`` asked for that have no folder (``seen``: each job
    folder's overrides); those of a nested sweep are prefixed with its folder."""
    missing = []
    for base in sweep_dirs(root):
        ran = [o for job, o in seen.items() if base == job or base in job.parents]
        where = "" if base == root else f"{base.relative_to(root)}: "
        for overrides in expected_jobs(base) or []:
            if set(overrides) not in ran:
                missing.append(f"{where}{' '.join(overrides)} (never started)")
    return missing


def read_sweep(root: Path) -> Sweep:
    """Classify every job under ``root``: a sweep, a folder of single runs, or of sweeps."""
    if not root.is_dir():
        raise ReportError(f"{root} is not a directory; pass the sweep dir (e.g. outputs/challenge)")
    sweep = Sweep(root)
    seen: dict[Path, set[str]] = {}
    for job in job_dirs(root):
        seen[job] = set(job_overrides(job))
        result = read_result(job)
        if result is not None:
            sweep.results.append((job, result))
        elif (job / ERROR_FILE).is_file():
            first = (job / ERROR_FILE).read_text().splitlines()[:1]
            sweep.failed.append((job, first[0] if first else "unknown error"))
        else:
            sweep.missing.append(f"{job.relative_to(root)} (started, never finished)")
    sweep.missing += never_started(root, seen)
    if not sweep.results and not sweep.failed:
        raise ReportError(
            f"no result.json or error.txt under {root}; run a sweep first "
            "(python -m prunelab.train -m experiment=challenge)"
        )
    return sweep


def settings_of(result: dict[str, Any]) -> dict[str, Any]:
    """The flat settings that decide a result's numbers (``identity.identity_settings``)."""
    return identity_settings(result.get("config") or {})


def comparable(value: Any) -> str:
    """A setting's value in a form that compares equal exactly when the values do (lists and
    nested values included)."""
    return json.dumps(value, sort_keys=True, default=str)


def allocation_of(result: dict[str, Any]) -> str:
    """How a result's k was spread over layers (``strategy.allocation``; results from before
    allocations were named: global for global_weight, else uniform)."""
    settings = settings_of(result)
    default = "global" if result.get("strategy") == "global_weight" else "uniform"
    return str(settings.get("strategy.allocation", default))


def varying_keys(results: list[dict[str, Any]]) -> list[str]:
    """The settings that differ between ``results``, the report's axes excepted: each
    distinct combination of their values is a group of its own. A ``strategy.*`` setting
    that only follows the strategy's name (its criterion, its allocation) is part of that
    axis, not a group; it is one where it differs within one strategy name."""
    settings = [settings_of(r) for r in results]
    keys = sorted(set().union(*settings) - set(AXES)) if settings else []

    def values(rows: list[dict[str, Any]], key: str) -> set[str]:
        return {comparable(s.get(key)) for s in rows}

    names = {s.get("strategy.name") for s in settings}
    by_name = [[s for s in settings if s.get("strategy.name") == n] for n in names]
    return [
        k
        for k in keys
        if len(values(settings, k)) > 1
        and (not k.startswith("strategy.") or any(len(values(rows, k)) > 1 for rows in by_name))
    ]


def constant_settings(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The settings every result shares (the report's axes excepted)."""
    settings = [settings_of(r) for r in results]
    if not settings:
        return {}

    def shared(key: str) -> bool:
        return len({comparable(s.get(key)) for s in settings}) == 1

    return {k: v for k, v in settings[0].items() if k not in AXES and shared(k)}


def sort_key(value: Any) -> tuple[int, Any]:
    """Numbers in numeric order, then everything else by its text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value))
    return (1, show(value))


def group_label(settings: dict[str, Any], keys: list[str]) -> str:
    """``key=value, key=value`` for the group a job's ``settings`` put it in ("" if none)."""
    return ", ".join(f"{k}={show(settings.get(k))}" for k in keys)


def group_name(label: str, index: int) -> str:
    """What tables and plots call a group: its label when short enough to read in a legend or
    a column head, else ``group N`` (N = ``index`` + 1), which the report's *Groups* section
    spells out. A folder of runs with different settings can vary a dozen keys at once."""
    return label if len(label) <= GROUP_NAME_MAX else f"group {index + 1}"


def summary_table(sweep: Sweep) -> pd.DataFrame:
    """One row per finished job, numbers verbatim from result.json, plus every figure, its
    group (``group``, ``group_index`` in the groups' sorted order, ``group_name`` as the
    report shows it, one column per varying key), ``test_acc_drop`` (``stats.dense_drop``)
    and ``compression``."""
    keys = varying_keys([r for _, r in sweep.results])
    rows = []
    for job, r in sweep.results:
        row: dict[str, Any] = {c: r.get(c) for c in SUMMARY_COLUMNS}
        settings = settings_of(r)
        # what ran: RigL, not the random mask it started from (config.tree.method_name)
        row["strategy"] = method_name(str(r.get("strategy")), str(settings.get("schedule.name")))
        row["group"] = group_label(settings, keys)
        row["allocation"] = allocation_of(r)
        row["_group_sort"] = tuple(sort_key(settings.get(k)) for k in keys)
        row.update({k: show(settings.get(k)) for k in keys})
        row.update(r.get("figures", {}))
        inference = r.get("inference") or {}
        row["inference_speedup"] = inference.get("speedup")
        row["inference_batch_size"] = inference.get("batch_size")
        row["job"] = str(job.relative_to(sweep.root))
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    order = sorted(df["_group_sort"].unique())
    df["group_index"] = df["_group_sort"].map({g: i for i, g in enumerate(order)})
    pairs = zip(df["group"], df["group_index"], strict=True)
    df["group_name"] = [group_name(g, i) for g, i in pairs]
    df = df.drop(columns="_group_sort")
    df = df.sort_values(["strategy", "group_index", "sparsity", "seed"], kind="stable")
    df = df.reset_index(drop=True)
    df["test_acc_drop"] = dense_drop(df)
    df["compression"] = compression_ratio(actual_sparsity(df))
    return df


def epoch_curves(sweep: Sweep, summary: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch train/test accuracy of every job (``final`` False), then the pruned model's
    final figures (``final`` True), with the job's strategy, k, group and seed.

    Epochs count from 1. The final evaluation sits at the job's last epoch, not one after
    it: it is what that epoch's model scored after pruning, and a plot marks it as such.
    """
    frames = []
    by_job = summary.set_index("job")
    for job, r in sweep.results:
        path = job / METRICS_FILE
        if not path.is_file():
            continue
        m = pd.read_csv(path)
        keep = [c for c in ("train/acc", "test/acc") if c in m]
        per_epoch = m.dropna(subset=["epoch"]).groupby("epoch")[keep].first().reset_index()
        last = int(r["epochs"]) + int(r.get("ramp_epochs", 0)) + int(r["finetune_epochs"])
        per_epoch = per_epoch[per_epoch["epoch"] < last].assign(final=False)
        final = {"epoch": last - 1, "train/acc": r["train_acc"], "test/acc": r["test_acc"]}
        curve = pd.concat([per_epoch, pd.DataFrame([{**final, "final": True}])])
        curve["epoch"] = curve["epoch"].astype(int) + 1
        row = by_job.loc[str(job.relative_to(sweep.root))]
        for col in ("strategy", "sparsity", "seed", "group", "group_index", "group_name"):
            curve[col] = row[col]
        frames.append(curve)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
