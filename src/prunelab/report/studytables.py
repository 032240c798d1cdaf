"""What the studies' tables (``studies/<question>/tables.py``) share, so that each of them is
a few sections on top of the report and not a copy of another's helpers.

A study's arms are folders of sweeps; ``arm_dir`` finds an arm in the first of several roots
that has it (one study's table may quote another's arm: the fine-tuned arm beside the
one-shot one), ``load`` reads every finished job of an arm as the report does (superseded
runs excepted) and ``read_summary`` the report's ``summary.csv`` of one. Cells are means ±
std (ddof=1) over seeds in % (``pm``, on the report's own ``markdown.pm``), and two arms are
compared seed by seed with a two-sided paired t-test (``paired``), written without scipy.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunelab.report import markdown
from prunelab.report.read import job_dirs
from prunelab.results import read_result

EN_DASH = "–"  # an empty cell of the later rounds' tables
EM_DASH = "—"  # an empty cell of the first two rounds' tables (kept: the results pages quote them)


def arm_dir(roots: Sequence[Path], *names: str) -> Path | None:
    """The first ``root/name`` folder that exists, roots in order, then names in order (an
    arm's former name after its current one); None when no root has the arm."""
    for root in roots:
        for name in names:
            if (root / name).is_dir():
                return root / name
    return None


def load(folder: Path | None) -> pd.DataFrame:
    """One row per finished job under ``folder`` (superseded runs excepted, as in the report):
    its result, its figures (``fig:<name>``) and the method settings the tables group by;
    empty when ``folder`` is None or holds no finished job."""
    rows = []
    for r in results_of(folder) if folder is not None else []:
        # what the job recorded, not settings to run with: a key only some strategies or
        # schedules have is absent from the others' records
        recorded = r["config"]
        rows.append(
            {
                **{k: v for k, v in r.items() if not isinstance(v, (dict, list))},
                **{f"fig:{k}": v for k, v in r["figures"].items()},
                "shuffle": bool(recorded["strategy"].get("shuffle", False)),
                "reinit": bool(recorded["schedule"].get("reinit", False)),
                "guard": bool(recorded["finetune_guard"]),
                "threads": r["numerics"]["threads"],
            }
        )
    return pd.DataFrame(rows)


def read_summary(sweep: Path) -> pd.DataFrame | None:
    """The report's ``summary.csv`` of one sweep (numbers copied verbatim from each job's
    result.json), with ``flops/best``, the cheaper of the compact and the sparse inference;
    None when the sweep has no report yet."""
    path = sweep / "report" / "summary.csv"
    if not path.is_file():
        return None
    df = pd.read_csv(path)
    df["flops/best"] = df[["flops/compact", "flops/sparse"]].min(axis=1)
    return df


def pm(
    values: Iterable[float | None],
    *,
    signed: bool = False,
    lone_std: bool = True,
    missing: str = EN_DASH,
) -> str:
    """``mean ± std`` in % of the finite ``values`` (fractions; std with ddof=1), through the
    report's formatter. One value shows ``± 0.00`` unless ``lone_std`` is false (then the
    mean alone, as the report writes it); none shows ``missing``."""
    v = np.asarray([x for x in values if x is not None and not pd.isna(x)], dtype=float)
    if v.size == 0:
        return missing
    std = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
    n = max(v.size, 2) if lone_std else v.size
    return markdown.pm(float(v.mean()), std, n, signed=signed)


def stats(df: pd.DataFrame, strategy: str, col: str = "test_acc") -> pd.DataFrame:
    """Mean, std (ddof=1) and count of ``col`` per k for ``strategy`` (a summary's rows)."""
    g = df[df["strategy"] == strategy].groupby("sparsity")[col]
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.size()})


def stats_cell(table: pd.DataFrame, k: float) -> pd.Series | None:
    """The ``stats`` row at ``k``, or None where that k was not run."""
    return table.loc[k] if k in table.index else None


def pm_stats(row: pd.Series | None) -> str:
    """A ``stats`` row as the first round's tables write it: the mean alone from one seed,
    ``—`` where nothing ran."""
    if row is None or math.isnan(row["mean"]):
        return EM_DASH
    return markdown.pm(float(row["mean"]), float(row["std"]), int(row["n"]))


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) (Lentz's continued fraction, as in
    Numerical Recipes), enough for Student's t without scipy."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - betainc(b, a, 1.0 - x)
    front = math.exp(a * math.log(x) + b * math.log(1 - x) - math.log(a)
                     - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)))  # fmt: skip
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-12:
            break
    return front * (f - 1.0)


def paired(diffs: Iterable[float]) -> str:
    """``mean ± std (t, p, k/n)`` of paired differences (fractions) in points: the two-sided
    p of a paired t-test (Student's t, n − 1 degrees of freedom), and in how many pairs the
    difference has the mean's sign."""
    d = np.asarray(list(diffs), dtype=float) * 100.0
    n = d.size
    if n < 2:
        return EN_DASH
    mean, std = float(d.mean()), float(np.std(d, ddof=1))
    same = int((np.sign(d) == np.sign(mean)).sum())
    if std == 0.0:
        return f"{mean:+.2f} ± 0.00 ({same}/{n})"
    t = mean / (std / math.sqrt(n))
    dof = n - 1
    p = betainc(dof / 2, 0.5, dof / (dof + t * t))
    return f"{mean:+.2f} ± {std:.2f} (t = {t:.1f}, p = {p:.2g}, {same}/{n})"


def interp_on_log_scale(x: float, xs: np.ndarray, ys: np.ndarray) -> float:
    """Linear interpolation in -log10(1 - sparsity), the scale the curves are smooth on."""
    t = -np.log10(1 - np.clip(xs, 0, 0.9999))
    return float(np.interp(-np.log10(1 - min(x, 0.9999)), t, ys))


def rows_of(df: pd.DataFrame, **where: object) -> pd.DataFrame:
    """The rows of ``df`` matching every ``key=value`` of ``where``."""
    mask = np.ones(len(df), dtype=bool)
    for key, value in where.items():
        mask &= (df[key] == value).to_numpy()
    return df[mask]


def by_seed(df: pd.DataFrame, **where: object) -> pd.Series:
    """Test accuracy per seed of the rows matching ``where``."""
    return rows_of(df, **where).set_index("seed")["test_acc"].sort_index()


def seeds_of(df: pd.DataFrame) -> str:
    """The seeds of ``df``'s runs, in order: ``0, 1, 2``."""
    return ", ".join(str(s) for s in sorted(df["seed"].unique()))


def header(first: str, ks: Sequence[float], column: str = "{:g} %") -> list[str]:
    """A markdown table's head: ``first``, then one column per k (in %)."""
    return [f"| {first} | " + " | ".join(column.format(100 * k) for k in ks) + " |",
            "|---|" + "---|" * len(ks)]  # fmt: skip


def row(label: str, cells: Iterable[str]) -> str:
    """One markdown table row."""
    return f"| {label} | " + " | ".join(cells) + " |"


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    """A right-aligned markdown table of ``rows`` under ``head``."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def threads_label(df: pd.DataFrame) -> str:
    """The thread counts the runs of ``df`` used: ``2 threads``, ``1 thread and 2 threads``."""
    counts = sorted(df["threads"].unique())
    return " and ".join(f"{c} thread{'s' if c > 1 else ''}" for c in counts)


def by_threads(roots: Sequence[Path], names: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The finished arms among ``names``, keyed by their thread counts (``threads_label``):
    one protocol run in several numeric settings, each setting a column of its table."""
    runs = {}
    for name in names:
        df = load(arm_dir(roots, name))
        if not df.empty:
            runs[threads_label(df)] = df
    return runs


def difference_row(label: str, ks: Sequence[float], df: pd.DataFrame, a: dict[str, object],
                   b: dict[str, object]) -> str:  # fmt: skip
    """Arm ``a`` minus arm ``b`` (each a ``where`` of ``by_seed``) at every k, paired by seed."""
    return row(label, (paired((by_seed(df, sparsity=k, **a) - by_seed(df, sparsity=k, **b))
                              .dropna()) for k in ks))  # fmt: skip


def profile_row(label: str, ks: Sequence[float], df: pd.DataFrame, layers: Sequence[int],
                **where: object) -> str:  # fmt: skip
    """The per-layer sparsity (%) seed 0's mask ended with at every k, ``a / b / c``."""
    cells = []
    for k in ks:
        found = rows_of(df, sparsity=k, seed=0, **where)
        cells.append("–" if found.empty else " / ".join(
            f"{100 * found.iloc[0][f'fig:sparsity/layer{i}']:.1f}" for i in layers))  # fmt: skip
    return row(label, cells)


def compared_table(df: pd.DataFrame, title: str, first: str, names: Sequence[str],
                   refs: dict[str, str], column: str) -> list[str]:  # fmt: skip
    """Per fine-tune length: test accuracy of each strategy of ``names`` at every k, then each
    one minus each reference strategy of ``refs`` (strategy → its label), paired by seed."""
    ks = sorted(df["sparsity"].unique())
    out = []
    for ft in sorted(df["finetune_epochs"].unique()):
        part = df[df.finetune_epochs == ft]
        what = "no fine-tuning" if ft == 0 else f"{ft} epoch(s) of fine-tuning"
        out += [f"### {title}, {what}: test accuracy %", "", *header(first, ks, column)]
        out += [row(name, (pm(by_seed(part, strategy=name, sparsity=k)) for k in ks))
                for name in names]  # fmt: skip
        for ref in refs:
            out += [
                "",
                f"Minus {refs[ref]} (points, paired by seed):",
                "",
                *header(first, ks, column),
            ]
            out += [difference_row(name, ks, part, {"strategy": name}, {"strategy": ref})
                    for name in names if name != ref]  # fmt: skip
        out.append("")
    return out


def threads_line(frames: list[pd.DataFrame]) -> str:
    """The thread counts of the runs (one thread each, so that two arms share 2 cores)."""
    return f"Threads of the runs: {sorted({t for df in frames if len(df) for t in df['threads']})}."


def results_of(folder: Path) -> list[dict[str, Any]]:
    """Every finished job's result under ``folder`` (superseded runs excepted), whole: for
    what a row of ``load`` flattens away (IMP's levels)."""
    return [r for job in job_dirs(folder) if (r := read_result(job)) is not None]


def tables_main(
    argv: Sequence[str] | None,
    description: str,
    default_roots: Sequence[Path],
    make: Callable[[list[Path]], list[str]],
) -> int:
    """A study's ``tables.py``: markdown on stdout from the arms under the given roots (its
    own folder of arms first, then the studies whose arms it quotes), or one line on stderr
    and exit status 1 when none of them holds a finished arm of it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "roots",
        type=Path,
        nargs="*",
        default=list(default_roots),
        help="folders of arms, searched in order (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    lines = make(args.roots)
    if not lines:
        where = ", ".join(str(r) for r in args.roots)
        print(f"error: no finished arm of this study under {where}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
